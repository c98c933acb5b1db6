"""The connections row: what `evolve` makes of a connection's events; it agrees with the aggregate and holds no secret."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from functools import reduce
from typing import Any
from uuid import UUID, uuid4

import msgspec
import pytest
from eventsourcing.persistence import DatetimeAsISO, JSONTranscoder, Mapper, UUIDAsHex

from domain.connection import Connection
from domain.workspace import Workspace
from projections.connections import ConnectionRow, evolve

NOW = datetime(2026, 3, 15, 9, 30, tzinfo=UTC)
STATE = "a3f1" * 16
EXPIRES = NOW + timedelta(hours=2)


def pending() -> Connection:
    """An OAuth connection waiting for its callback, its Requested event still pending."""
    return Connection.request_oauth(
        uuid4(),
        uuid4(),
        "x",
        state_hash=STATE,
        now=NOW,
        redirect_uri="https://pressroom.test/oauth/x/callback",
        flow_sealed="sealed-verifier",
    )


def connected() -> Connection:
    connection = pending()
    connection.complete(STATE, NOW, name="acme", display_name="Acme", credentials_sealed="sealed-1", token_expires_at=EXPIRES)
    return connection


def through_the_store(events: list[Any]) -> list[Any]:
    """The events as a read model gets them: through the event store's JSON."""
    transcoder = JSONTranscoder()
    transcoder.register(UUIDAsHex())
    transcoder.register(DatetimeAsISO())
    mapper: Mapper[UUID] = Mapper(transcoder=transcoder)
    return [mapper.to_domain_event(mapper.to_stored_event(event)) for event in events]


def fold(events: Any, row: ConnectionRow | None = None) -> ConnectionRow | None:
    return reduce(evolve, through_the_store(list(events)), row)


def assert_agrees(row: ConnectionRow | None, connection: Connection) -> None:
    assert row is not None
    assert (row.id, row.workspace_id, row.provider, row.auth, row.status) == (
        connection.id,
        connection.workspace_id,
        connection.provider,
        connection.auth,
        connection.status,
    )
    assert (row.handle, row.display_name, row.error, row.token_expires_at, row.connected_at) == (
        connection.handle,
        connection.display_name,
        connection.error,
        connection.token_expires_at,
        connection.connected_at,
    )


def test_oauth_request_when_evolved_from_nothing_then_row_is_pending_without_its_state() -> None:
    connection = pending()
    (requested,) = connection.collect_events()

    row = evolve(None, requested)

    assert row == ConnectionRow(
        id=connection.id,
        workspace_id=connection.workspace_id,
        provider="x",
        auth="oauth",
        status="pending",
        created_at=requested.timestamp,
        updated_at=requested.timestamp,
    )


def test_oauth_callback_when_completed_then_row_is_the_connected_account() -> None:
    connection = connected()
    events = connection.collect_events()

    row = fold(events)

    assert row is not None
    assert (row.status, row.handle, row.display_name, row.token_expires_at, row.connected_at) == (
        "connected",
        "x:acme",
        "Acme",
        EXPIRES,
        events[-1].timestamp,
    )
    assert (row.created_at, row.updated_at) == (events[0].timestamp, events[-1].timestamp)
    assert_agrees(row, connection)


def test_manual_connection_when_made_then_row_is_connected_at_once() -> None:
    connection = Connection.connect_manual(
        uuid4(), uuid4(), "discord", name="launches", display_name="#launches", credentials_sealed="sealed-webhook"
    )

    row = fold(connection.collect_events())

    assert row is not None
    assert (row.auth, row.status, row.handle, row.token_expires_at) == ("manual", "connected", "discord:launches", None)
    assert_agrees(row, connection)


def test_pending_connection_when_authorization_fails_then_row_is_failed_with_the_error() -> None:
    connection = pending()
    connection.fail_authorization("access_denied")

    row = fold(connection.collect_events())

    assert row is not None
    assert (row.status, row.error, row.handle) == ("failed", "access_denied", None)
    assert_agrees(row, connection)


def test_connected_account_when_tokens_are_refreshed_then_row_has_the_new_expiry() -> None:
    connection = connected()
    connection.refresh("sealed-2", EXPIRES + timedelta(hours=2))

    row = fold(connection.collect_events())

    assert row is not None
    assert (row.status, row.token_expires_at) == ("connected", EXPIRES + timedelta(hours=2))
    assert_agrees(row, connection)


def test_connected_account_when_reconnect_is_required_then_row_says_why() -> None:
    connection = connected()
    connection.require_reconnect("refresh failed")

    row = fold(connection.collect_events())

    assert row is not None
    assert (row.status, row.error, row.token_expires_at) == ("reconnect_required", "refresh failed", EXPIRES)
    assert_agrees(row, connection)


@pytest.mark.parametrize("make", [pending, connected])
def test_connection_when_disconnected_then_row_is_disconnected_without_token_expiry(make: Any) -> None:
    connection = make()
    connection.disconnect()

    row = fold(connection.collect_events())

    assert row is not None
    assert (row.status, row.token_expires_at) == ("disconnected", None)
    assert_agrees(row, connection)


def test_row_when_made_then_it_holds_no_secret() -> None:
    connection = connected()
    connection.refresh("sealed-2", EXPIRES)

    row = fold(connection.collect_events())

    assert row is not None
    values = [str(value) for value in msgspec.structs.astuple(row)]
    assert not {"sealed-1", "sealed-2", "sealed-verifier", STATE} & set(values)
    assert not {"credentials_sealed", "flow_sealed", "state_hash", "redirect_uri"} & set(ConnectionRow.__struct_fields__)


def test_row_when_evolved_with_another_aggregates_event_then_row_is_unchanged() -> None:
    connection = connected()
    row = fold(connection.collect_events())
    workspace = Workspace.open(connection.workspace_id, "Acme")

    assert fold(workspace.collect_events(), row) == row


def test_nothing_when_evolved_with_a_later_connection_event_then_stays_nothing() -> None:
    connection = connected()
    _requested, completed = connection.collect_events()

    assert evolve(None, completed) is None
