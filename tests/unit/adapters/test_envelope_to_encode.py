"""The envelope made for encoding encodes to exactly the JSON of the envelope, for any event of any class."""

from __future__ import annotations

import dataclasses
from datetime import UTC, timedelta, timezone
from typing import Any

import msgspec
from hypothesis import given
from hypothesis import strategies as st

from application.event_catalogue import event_classes
from application.integration_events import ENVELOPE_FIELDS, PRIVATE_FIELDS, camel, envelope, envelope_to_encode
from application.metadata import META_FIELD

INT64 = st.integers(min_value=-(2**63), max_value=2**63 - 1)
ZONES = st.none() | st.just(UTC) | st.just(timezone(timedelta(hours=5, minutes=30)))
HASHABLE = st.none() | st.booleans() | INT64 | st.text() | st.uuids() | st.decimals(allow_nan=False) | st.dates()
SCALARS = HASHABLE | st.floats() | st.decimals() | st.binary() | st.datetimes(timezones=ZONES)
VALUES = st.recursive(
    SCALARS,
    lambda inner: (
        st.lists(inner, max_size=3)
        | st.tuples(inner, inner)
        | st.frozensets(HASHABLE, max_size=3)
        | st.sets(HASHABLE, max_size=3)
        | st.dictionaries(st.text() | INT64 | st.uuids(), inner, max_size=3)
    ),
    max_leaves=8,
)
CLASSES = [event_class for _, event_class in event_classes()]
OWN = {
    "originator_id": st.uuids(),
    "workspace_id": st.uuids(),
    "originator_version": st.integers(min_value=1, max_value=2**31),
    "timestamp": st.datetimes(timezones=st.just(UTC)),
    META_FIELD: st.dictionaries(st.text(), st.text(), max_size=3),
}


@st.composite
def events(draw: st.DrawFn) -> Any:
    """An event of any recorded class, its fields in any order, with or without metadata, as the mapper
    makes one: the class's own fields valid, the others any value stored JSON can hold."""
    event_class = draw(st.sampled_from(CLASSES))
    fields = [field.name for field in dataclasses.fields(event_class)] + draw(st.sampled_from([[], [META_FIELD]]))
    event = object.__new__(event_class)
    event.__dict__.update({field: draw(OWN.get(field, VALUES)) for field in draw(st.permutations(fields))})
    return event


def data_as_it_was(event: Any) -> Any:
    """How `data` was made before envelopes were made for encoding: a dict, converted to builtins."""
    return msgspec.to_builtins(
        {camel(field): value for field, value in vars(event).items() if field not in ENVELOPE_FIELDS and field not in PRIVATE_FIELDS}
    )


@given(events())
def test_any_event_when_enveloped_for_encoding_then_it_encodes_to_the_envelopes_json(event: Any) -> None:
    assert msgspec.json.encode(envelope_to_encode(event)) == msgspec.json.encode(envelope(event))


@given(events())
def test_any_event_when_enveloped_then_data_is_the_same_builtins_in_the_same_order(event: Any) -> None:
    data = envelope(event).data

    assert type(data) is dict
    assert msgspec.json.encode(data) == msgspec.json.encode(data_as_it_was(event))
