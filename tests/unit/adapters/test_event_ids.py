"""Ids made from an event's aggregate and version are exactly uuid.uuid5's."""

from __future__ import annotations

from uuid import NAMESPACE_URL, UUID, uuid4, uuid5

from hypothesis import given
from hypothesis import strategies as st

from application.integration_events import envelope, event_ids
from domain.workspace import Workspace


@given(st.uuids(), st.uuids(), st.integers(min_value=0, max_value=2**63))
def test_any_aggregate_and_version_when_given_an_id_then_it_is_their_uuid5(namespace: UUID, aggregate_id: UUID, version: int) -> None:
    made = event_ids(namespace)(aggregate_id, version)

    assert made == uuid5(namespace, f"{aggregate_id}:{version}")
    assert (type(made), made.version, str(made)) == (UUID, 5, str(uuid5(namespace, f"{aggregate_id}:{version}")))


def test_event_when_enveloped_then_its_id_is_the_uuid5_of_its_aggregate_and_version() -> None:
    (created,) = Workspace.open(uuid4(), "Acme").collect_events()

    expected = uuid5(uuid5(NAMESPACE_URL, "pressroom:event"), f"{created.originator_id}:{created.originator_version}")
    assert envelope(created).id == expected
