"""Connection: OAuth connections wait for a callback with their own unexpired state; manual ones connect at once;
credentials stay sealed and an account that stops working needs reconnecting."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from uuid import uuid4

import pytest
from eventsourcing.application import project_aggregate

from domain.connection import STATE_LIFETIME, Connection
from domain.errors import InvalidState, MissingCredentials, OAuthStateExpired, OAuthStateInvalid

NOW = datetime(2026, 3, 15, 9, 30, tzinfo=UTC)
STATE = "a3f1" * 16
EXPIRES = NOW + timedelta(hours=2)


def pending(flow_sealed: str | None = "sealed-verifier") -> Connection:
    connection = Connection.request_oauth(
        uuid4(), uuid4(), "x", state_hash=STATE, now=NOW, redirect_uri="https://pressroom.test/oauth/x/callback", flow_sealed=flow_sealed
    )
    connection.collect_events()
    return connection


def connected() -> Connection:
    connection = pending()
    connection.complete(STATE, NOW, name="acme", display_name="Acme", credentials_sealed="sealed-1", token_expires_at=EXPIRES)
    connection.collect_events()
    return connection


def manual() -> Connection:
    connection = Connection.connect_manual(
        uuid4(), uuid4(), "discord", name="launches", display_name="#launches", credentials_sealed="sealed-webhook"
    )
    connection.collect_events()
    return connection


def in_status(status: str) -> Connection:
    connection = pending() if status in ("pending", "failed") else connected()
    if status == "failed":
        connection.fail_authorization("access_denied")
    elif status == "reconnect_required":
        connection.require_reconnect("refresh failed")
    elif status == "disconnected":
        connection.disconnect()
    connection.collect_events()
    return connection


# Requesting


def test_oauth_request_when_made_then_it_is_pending_with_its_state_for_ten_minutes() -> None:
    connection = pending()

    assert (connection.status, connection.auth, connection.state_hash) == ("pending", "oauth", STATE)
    assert connection.state_expires_at == NOW + STATE_LIFETIME == NOW + timedelta(minutes=10)
    assert (connection.handle, connection.credentials_sealed, connection.is_connected) == (None, None, False)


def test_oauth_request_when_made_then_event_holds_the_state_hash_and_flow_sealed() -> None:
    connection = Connection.request_oauth(
        uuid4(), uuid4(), "linkedin", state_hash=STATE, now=NOW, redirect_uri="https://r", flow_sealed="ct"
    )

    (requested,) = connection.collect_events()

    assert isinstance(requested, Connection.Requested)
    assert (requested.provider, requested.state_hash, requested.flow_sealed, requested.redirect_uri) == (
        "linkedin",
        STATE,
        "ct",
        "https://r",
    )


# Completing


def test_pending_connection_when_completed_with_its_state_then_it_is_connected() -> None:
    connection = pending()

    connection.complete(
        STATE, NOW + timedelta(minutes=9), name="acme", display_name="Acme", credentials_sealed="s1", token_expires_at=EXPIRES
    )

    assert (connection.status, connection.handle, connection.display_name) == ("connected", "x:acme", "Acme")
    assert (connection.credentials_sealed, connection.token_expires_at, connection.error) == ("s1", EXPIRES, None)
    assert connection.connected_at is not None


def test_pending_connection_when_completed_then_its_state_cannot_be_used_again() -> None:
    connection = connected()

    assert (connection.state_hash, connection.state_expires_at, connection.flow_sealed) == (None, None, None)
    with pytest.raises(InvalidState):
        connection.complete(STATE, NOW, name="acme", display_name="Acme", credentials_sealed="s2", token_expires_at=None)
    assert connection.collect_events() == []


def test_pending_connection_when_completed_with_another_state_then_raises_and_records_nothing() -> None:
    connection = pending()

    with pytest.raises(OAuthStateInvalid):
        connection.complete("b" * 64, NOW, name="acme", display_name="Acme", credentials_sealed="s1", token_expires_at=None)
    assert (connection.collect_events(), connection.status) == ([], "pending")


def test_pending_connection_when_completed_at_its_expiry_then_raises_state_expired() -> None:
    connection = pending()

    with pytest.raises(OAuthStateExpired):
        connection.complete(STATE, NOW + STATE_LIFETIME, name="acme", display_name="Acme", credentials_sealed="s1", token_expires_at=None)
    assert (connection.collect_events(), connection.status) == ([], "pending")


def test_state_expired_when_raised_then_it_is_an_invalid_oauth_state() -> None:
    assert issubclass(OAuthStateExpired, OAuthStateInvalid)


def test_pending_connection_when_completed_without_credentials_then_raises_missing_credentials() -> None:
    connection = pending()

    with pytest.raises(MissingCredentials):
        connection.complete(STATE, NOW, name="acme", display_name="Acme", credentials_sealed="", token_expires_at=None)
    assert connection.collect_events() == []


def test_pending_connection_when_its_state_is_checked_in_time_then_nothing_happens() -> None:
    connection = pending()

    connection.check_state(STATE, NOW + STATE_LIFETIME - timedelta(seconds=1))

    assert connection.collect_events() == []


@pytest.mark.parametrize("status", ["connected", "failed", "reconnect_required", "disconnected"])
def test_connection_not_pending_when_state_checked_then_raises_invalid_state(status: str) -> None:
    with pytest.raises(InvalidState):
        in_status(status).check_state(STATE, NOW)


def test_manual_connection_when_state_checked_then_raises_invalid_state() -> None:
    with pytest.raises(InvalidState):
        manual().check_state(STATE, NOW)


# Failing an authorization


def test_pending_connection_when_authorization_fails_then_it_is_failed_with_the_error() -> None:
    connection = pending()

    connection.fail_authorization("access_denied")

    assert (connection.status, connection.error, connection.state_hash) == ("failed", "access_denied", None)


@pytest.mark.parametrize("status", ["connected", "failed", "reconnect_required", "disconnected"])
def test_connection_not_pending_when_authorization_fails_then_raises_invalid_state(status: str) -> None:
    connection = in_status(status)

    with pytest.raises(InvalidState):
        connection.fail_authorization("access_denied")
    assert (connection.collect_events(), connection.status) == ([], status)


# Manual connections


def test_manual_connection_when_made_then_it_is_connected_at_once() -> None:
    connection = Connection.connect_manual(uuid4(), uuid4(), "telegram", name="@acme_news", display_name="Acme", credentials_sealed="ct")

    events = connection.collect_events()

    assert [type(e) for e in events] == [Connection.Requested, Connection.Connected]
    assert (connection.status, connection.auth, connection.handle, connection.state_hash) == (
        "connected",
        "manual",
        "telegram:@acme_news",
        None,
    )


def test_manual_connection_when_made_without_credentials_then_raises_missing_credentials() -> None:
    with pytest.raises(MissingCredentials):
        Connection.connect_manual(uuid4(), uuid4(), "webhook", name="hooks", display_name="Hooks", credentials_sealed="")


# Refreshing


def test_connected_account_when_refreshed_then_it_keeps_the_new_sealed_credentials() -> None:
    connection = connected()
    later = EXPIRES + timedelta(hours=2)

    connection.refresh("sealed-2", later)

    assert (connection.status, connection.credentials_sealed, connection.token_expires_at) == ("connected", "sealed-2", later)


def test_connected_account_when_refreshed_without_credentials_then_raises_and_keeps_the_old_ones() -> None:
    connection = connected()

    with pytest.raises(MissingCredentials):
        connection.refresh("", EXPIRES)
    assert (connection.collect_events(), connection.credentials_sealed) == ([], "sealed-1")


@pytest.mark.parametrize("status", ["pending", "failed", "reconnect_required", "disconnected"])
def test_connection_not_connected_when_refreshed_then_raises_invalid_state(status: str) -> None:
    connection = in_status(status)

    with pytest.raises(InvalidState):
        connection.refresh("sealed-2", EXPIRES)
    assert connection.collect_events() == []


def test_connected_account_when_token_expires_within_margin_then_it_needs_refresh() -> None:
    connection = connected()

    assert connection.needs_refresh(EXPIRES - timedelta(minutes=5), margin=timedelta(minutes=5)) is True
    assert connection.needs_refresh(EXPIRES - timedelta(minutes=6), margin=timedelta(minutes=5)) is False


def test_account_without_expiry_or_not_connected_when_asked_then_it_needs_no_refresh() -> None:
    assert manual().needs_refresh(NOW + timedelta(days=365), timedelta(minutes=5)) is False
    assert in_status("reconnect_required").needs_refresh(EXPIRES, timedelta(minutes=5)) is False


# Reconnecting


def test_connected_account_when_reconnect_required_then_it_says_why() -> None:
    connection = connected()

    connection.require_reconnect("refresh failed: invalid_grant")

    assert (connection.status, connection.error) == ("reconnect_required", "refresh failed: invalid_grant")


def test_account_needing_reconnect_when_required_again_then_nothing_is_recorded() -> None:
    connection = in_status("reconnect_required")

    connection.require_reconnect("refresh failed again")

    assert (connection.collect_events(), connection.error) == ([], "refresh failed")


@pytest.mark.parametrize("status", ["pending", "failed", "disconnected"])
def test_connection_never_connected_or_gone_when_reconnect_required_then_raises_invalid_state(status: str) -> None:
    with pytest.raises(InvalidState):
        in_status(status).require_reconnect("refresh failed")


# Disconnecting


@pytest.mark.parametrize("status", ["pending", "connected", "failed", "reconnect_required"])
def test_connection_when_disconnected_then_it_is_disconnected_and_forgets_its_credentials(status: str) -> None:
    connection = in_status(status)

    connection.disconnect()

    assert (connection.status, connection.credentials_sealed, connection.token_expires_at, connection.state_hash) == (
        "disconnected",
        None,
        None,
        None,
    )


def test_disconnected_connection_when_disconnected_again_then_raises_invalid_state_and_records_nothing() -> None:
    connection = in_status("disconnected")

    with pytest.raises(InvalidState):
        connection.disconnect()
    assert connection.collect_events() == []


# Replay


def test_connection_history_when_replayed_then_gives_the_same_connection() -> None:
    connection = Connection.request_oauth(uuid4(), uuid4(), "x", state_hash=STATE, now=NOW, redirect_uri="https://r")
    connection.complete(STATE, NOW, name="acme", display_name="Acme", credentials_sealed="s1", token_expires_at=EXPIRES)
    connection.refresh("s2", EXPIRES + timedelta(hours=2))
    connection.require_reconnect("refresh failed")
    connection.disconnect()

    assert project_aggregate(None, connection.collect_events()) == connection
