"""OAuth connections end to end: authorize URL, the provider's consent and callback, token refresh,
against loopback fakes of X's and LinkedIn's OAuth servers and a real PostgreSQL."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from datetime import timedelta
from typing import Any
from urllib.parse import parse_qs, urlsplit
from uuid import UUID

import httpx
import pytest
from litestar.testing import TestClient

from adapters.bootstrap import Container
from api.app import create_app
from application.oauth_connections import REFRESH_MARGIN, AuthorizationRefused, ProviderUnavailable
from domain.connection import Connection
from domain.errors import InvalidState, OAuthStateExpired, OAuthStateInvalid
from tests.conftest import ManualClock, catch_up_all
from tests.fakes import FakeLinkedIn, FakeX

Fake = FakeX | FakeLinkedIn


@pytest.fixture
def x_fake() -> Iterator[FakeX]:
    with FakeX() as fake:
        yield fake


@pytest.fixture
def linkedin_fake() -> Iterator[FakeLinkedIn]:
    with FakeLinkedIn() as fake:
        yield fake


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock()


@pytest.fixture
def container(make_container: Callable[..., Container], clock: ManualClock, x_fake: FakeX, linkedin_fake: FakeLinkedIn) -> Container:
    return make_container(
        clock=clock,
        provider_attempts=1,
        provider_read_timeout_seconds=5,
        x_client_id=x_fake.client_id,
        x_client_secret=x_fake.client_secret,
        x_auth_base_url=x_fake.url,
        x_api_base_url=x_fake.url,
        linkedin_client_id=linkedin_fake.client_id,
        linkedin_client_secret=linkedin_fake.client_secret,
        linkedin_auth_base_url=linkedin_fake.url,
        linkedin_api_base_url=linkedin_fake.url,
    )


@pytest.fixture
def workspace(container: Container) -> UUID:
    summary, _ = container.app.create_workspace("Acme")
    return summary.id


def consent(authorize_url: str) -> dict[str, str]:
    """The user consents at the provider, which redirects to the callback: its query (state, code)."""
    answer = httpx.get(authorize_url, follow_redirects=False)
    assert answer.status_code == 302, answer.text
    return {key: values[0] for key, values in parse_qs(urlsplit(answer.headers["location"]).query).items()}


def callback_path(authorize_url: str) -> str:
    answer = httpx.get(authorize_url, follow_redirects=False)
    location = urlsplit(answer.headers["location"])
    return f"{location.path}?{location.query}"


def connect(container: Container, workspace: UUID, provider: str) -> Connection:
    _, authorize_url = container.oauth.start(workspace, provider)
    query = consent(authorize_url)
    return container.oauth.complete(provider, query["state"], query["code"])


def credentials(container: Container, connection_id: UUID) -> dict[str, str]:
    connection = container.app._get(Connection, connection_id)
    assert connection.credentials_sealed is not None
    return container.sealer.open(connection.credentials_sealed, context=str(connection_id))


def due(clock: ManualClock, fake: Fake) -> None:
    """Moves the clock to one minute before the tokens the fake grants run out."""
    clock.advance(seconds=fake.expires_in - 60)


# --- the flow ------------------------------------------------------------------------------------


def test_x_connection_when_authorized_through_the_api_then_the_callback_connects_the_account(container: Container, x_fake: FakeX) -> None:
    _, key = container.app.create_workspace("Acme")
    auth = {"Authorization": f"Bearer {key.secret}"}
    with TestClient(create_app(container.settings, container)) as client:
        started = client.post("/v1/connections", json={"provider": "x"}, headers=auth)
        pending = started.json()["connection"]
        done = client.get(callback_path(pending["authorizeUrl"]))
        catch_up_all(container)
        accounts = client.get("/v1/accounts", headers=auth).json()["accounts"]

    assert started.status_code == 201, started.text
    assert (pending["provider"], pending["status"]) == ("x", "pending")
    assert done.status_code == 200, done.text
    assert done.json()["connection"]["status"] == "connected"
    assert done.json()["connection"]["handle"] == "x:pressroom_demo"
    assert [(a["id"], a["handle"], a["displayName"]) for a in accounts] == [(pending["id"], "x:pressroom_demo", "Pressroom Demo")]


def test_authorize_url_when_made_for_x_then_it_carries_the_state_and_an_s256_challenge(container: Container, workspace: UUID) -> None:
    connection, authorize_url = container.oauth.start(workspace, "x")

    query = parse_qs(urlsplit(authorize_url).query)
    assert query["redirect_uri"] == [f"{container.settings.base_url()}/oauth/x/callback"]
    assert query["code_challenge_method"] == ["S256"]
    assert connection.id == container.oauth.connection_id_for(connection.state_hash or "")


def test_pending_connection_when_read_then_it_shows_its_authorize_url_until_it_completes(container: Container) -> None:
    _, key = container.app.create_workspace("Acme")
    auth = {"Authorization": f"Bearer {key.secret}"}
    with TestClient(create_app(container.settings, container)) as client:
        pending = client.post("/v1/connections", json={"provider": "linkedin"}, headers=auth).json()["connection"]
        while_pending = client.get(f"/v1/connections/{pending['id']}", headers=auth).json()["connection"]
        client.get(callback_path(pending["authorizeUrl"]))
        after = client.get(f"/v1/connections/{pending['id']}", headers=auth).json()["connection"]

    assert (while_pending["status"], while_pending["authorizeUrl"]) == ("pending", pending["authorizeUrl"])
    assert (after["status"], after["authorizeUrl"], after["handle"]) == ("connected", None, "linkedin:782bbtaQ")


def test_linkedin_connection_when_completed_then_the_account_is_the_member(container: Container, workspace: UUID) -> None:
    connection = connect(container, workspace, "linkedin")

    assert (connection.status, connection.handle, connection.display_name) == ("connected", "linkedin:782bbtaQ", "Ada Lovelace")
    assert set(credentials(container, connection.id)) == {"accessToken", "refreshToken"}


def test_callback_when_it_comes_to_another_replica_then_that_replica_completes_it(
    container: Container, workspace: UUID, clock: ManualClock
) -> None:
    _, authorize_url = container.oauth.start(workspace, "x")
    query = consent(authorize_url)
    other = Container(container.settings, clock=clock)
    try:
        connection = other.oauth.complete("x", query["state"], query["code"])
    finally:
        other.close()

    assert connection.handle == "x:pressroom_demo"


def test_callback_when_repeated_with_the_same_state_then_it_is_refused(container: Container, workspace: UUID) -> None:
    _, authorize_url = container.oauth.start(workspace, "x")
    query = consent(authorize_url)
    container.oauth.complete("x", query["state"], query["code"])

    with TestClient(create_app(container.settings, container)) as client:
        again = client.get("/oauth/x/callback", params=query)

    assert again.status_code == 409, again.text
    assert again.json()["code"] == "invalid_state"


def test_callback_when_the_state_expired_then_it_is_refused_and_the_code_is_not_spent(
    container: Container, workspace: UUID, clock: ManualClock, x_fake: FakeX
) -> None:
    _, authorize_url = container.oauth.start(workspace, "x")
    query = consent(authorize_url)
    clock.advance(minutes=10, seconds=1)

    with pytest.raises(OAuthStateExpired):
        container.oauth.complete("x", query["state"], query["code"])
    assert x_fake.token_requests() == []


def test_callback_when_its_state_is_unknown_then_it_is_refused(container: Container) -> None:
    with TestClient(create_app(container.settings, container)) as client:
        answer = client.get("/oauth/x/callback", params={"state": "forged", "code": "anything"})

    assert answer.status_code == 422, answer.text
    assert answer.json()["code"] == "oauth_state_invalid"


def test_callback_when_it_names_another_provider_then_it_is_refused(container: Container, workspace: UUID) -> None:
    _, authorize_url = container.oauth.start(workspace, "x")
    query = consent(authorize_url)

    with pytest.raises(OAuthStateInvalid):
        container.oauth.complete("linkedin", query["state"], query["code"])


def test_callback_when_the_user_denied_access_then_the_connection_fails(container: Container, workspace: UUID) -> None:
    connection, authorize_url = container.oauth.start(workspace, "linkedin")
    state = parse_qs(urlsplit(authorize_url).query)["state"][0]

    with TestClient(create_app(container.settings, container)) as client:
        answer = client.get(
            "/oauth/linkedin/callback",
            params={"state": state, "error": "user_cancelled_authorize", "error_description": "The user cancelled"},
        )
        flow_sealed = container.app._get(Connection, connection.id).flow_sealed

    assert answer.status_code == 200, answer.text
    assert answer.json()["connection"]["status"] == "failed"
    assert answer.json()["connection"]["error"] == "user_cancelled_authorize: The user cancelled"
    assert flow_sealed is None


def test_callback_when_the_provider_refuses_the_code_then_the_connection_fails(container: Container, workspace: UUID) -> None:
    connection, authorize_url = container.oauth.start(workspace, "x")
    query = consent(authorize_url)

    with pytest.raises(AuthorizationRefused):
        container.oauth.complete("x", query["state"], "not-the-code")

    failed = container.app._get(Connection, connection.id)
    assert failed.status == "failed"
    assert (failed.error or "").startswith("code_rejected")


def test_oauth_provider_when_no_client_is_configured_then_connecting_is_refused(make_container: Callable[..., Container]) -> None:
    bare = make_container()
    _, key = bare.app.create_workspace("Acme")
    with TestClient(create_app(bare.settings, bare)) as client:
        answers = [
            client.post("/v1/connections", json={"provider": name}, headers={"Authorization": f"Bearer {key.secret}"})
            for name in ("x", "facebook")
        ]

    assert [a.status_code for a in answers] == [422, 422]
    assert all("not been configured" in a.json()["detail"] for a in answers)


# --- refresh -------------------------------------------------------------------------------------


def test_x_tokens_when_refreshed_then_the_rotated_tokens_are_stored(
    container: Container, workspace: UUID, clock: ManualClock, x_fake: FakeX
) -> None:
    connection = connect(container, workspace, "x")
    before = credentials(container, connection.id)
    due(clock, x_fake)

    refreshed = container.oauth.refresh_due(connection.id)

    after = credentials(container, connection.id)
    assert refreshed is True
    assert after["accessToken"] != before["accessToken"]
    assert after["refreshToken"] != before["refreshToken"]
    assert x_fake.refresh_tokens[after["refreshToken"]] is True
    assert x_fake.refresh_tokens[before["refreshToken"]] is False
    stored = container.app._get(Connection, connection.id)
    assert stored.token_expires_at is not None and stored.token_expires_at > clock.now()
    assert container.oauth.access_token(stored) == after["accessToken"]


def test_linkedin_tokens_when_refreshed_without_a_new_refresh_token_then_the_old_one_is_kept(
    container: Container, workspace: UUID, clock: ManualClock, linkedin_fake: FakeLinkedIn
) -> None:
    connection = connect(container, workspace, "linkedin")
    before = credentials(container, connection.id)
    due(clock, linkedin_fake)

    container.oauth.refresh_due(connection.id)

    after = credentials(container, connection.id)
    assert after["accessToken"] != before["accessToken"]
    assert after["refreshToken"] == before["refreshToken"]


def test_tokens_when_not_due_then_nothing_is_asked_of_the_provider(container: Container, workspace: UUID, x_fake: FakeX) -> None:
    connection = connect(container, workspace, "x")

    assert container.oauth.refresh_due(connection.id) is False
    assert x_fake.token_requests("refresh_token") == []


def test_refresh_when_the_provider_refuses_it_then_the_account_needs_reconnecting(
    container: Container, workspace: UUID, clock: ManualClock, x_fake: FakeX
) -> None:
    connection = connect(container, workspace, "x")
    x_fake.refused_error = "invalid_request"  # what X answers for a revoked refresh token
    x_fake.refresh_tokens.clear()
    due(clock, x_fake)

    refreshed = container.oauth.refresh_due(connection.id)

    stored = container.app._get(Connection, connection.id)
    assert refreshed is False
    assert stored.status == "reconnect_required"
    assert (stored.error or "").startswith("refresh_rejected: ")
    with pytest.raises(InvalidState):
        container.oauth.access_token(stored)


def test_refresh_when_the_provider_fails_then_the_tokens_stay_for_the_next_try(
    container: Container, workspace: UUID, clock: ManualClock, x_fake: FakeX
) -> None:
    connection = connect(container, workspace, "x")
    before = credentials(container, connection.id)
    x_fake.fail("POST", "/2/oauth2/token", status=503, times=1)
    due(clock, x_fake)

    with pytest.raises(ProviderUnavailable):
        container.oauth.refresh_due(connection.id)

    assert container.app._get(Connection, connection.id).status == "connected"
    assert credentials(container, connection.id) == before
    assert container.oauth.refresh_due(connection.id) is True


def test_refresh_when_asked_by_many_threads_at_once_then_the_provider_sees_one_request(
    container: Container, workspace: UUID, clock: ManualClock, x_fake: FakeX
) -> None:
    connection = connect(container, workspace, "x")
    due(clock, x_fake)
    x_fake.stall("POST", "/2/oauth2/token", seconds=0.5, times=1)

    outcomes = run_together([lambda: container.oauth.refresh_due(connection.id)] * 4)

    assert sorted(outcomes) == [False, False, False, True]
    assert len(x_fake.token_requests("refresh_token")) == 1
    assert x_fake.refresh_tokens[credentials(container, connection.id)["refreshToken"]] is True


def test_refresh_when_two_replicas_refresh_at_once_then_the_provider_sees_one_request(
    container: Container, workspace: UUID, clock: ManualClock, x_fake: FakeX
) -> None:
    other = Container(container.settings, clock=clock)
    try:
        connection = connect(container, workspace, "x")
        due(clock, x_fake)
        other.oauth.refresh_due(connection.id, margin=timedelta(0))  # builds the replica's parts; not due yet
        x_fake.stall("POST", "/2/oauth2/token", seconds=1.0, times=1)

        outcomes = run_together([lambda: container.oauth.refresh_due(connection.id), lambda: other.oauth.refresh_due(connection.id)])
    finally:
        other.close()

    assert sorted(outcomes) == [False, True]
    assert len(x_fake.token_requests("refresh_token")) == 1
    stored = container.app._get(Connection, connection.id)
    assert stored.status == "connected"
    assert x_fake.refresh_tokens[credentials(container, connection.id)["refreshToken"]] is True


def test_sweeper_when_a_token_runs_out_soon_then_it_refreshes_it(
    container: Container, workspace: UUID, clock: ManualClock, x_fake: FakeX, linkedin_fake: FakeLinkedIn
) -> None:
    soon = connect(container, workspace, "x")
    later = connect(container, workspace, "linkedin")
    linkedin_before = credentials(container, later.id)
    due(clock, x_fake)
    catch_up_all(container)

    refreshed = container.refresh_tokens_once()

    assert refreshed == 1
    assert len(x_fake.token_requests("refresh_token")) == 1
    assert linkedin_fake.token_requests("refresh_token") == []
    expires_at = container.app._get(Connection, soon.id).token_expires_at
    assert expires_at is not None and expires_at > clock.now() + REFRESH_MARGIN
    assert credentials(container, later.id) == linkedin_before


def test_credentials_when_stored_then_no_event_holds_a_token_or_the_state_in_clear(
    container: Container, workspace: UUID, clock: ManualClock, x_fake: FakeX
) -> None:
    _, authorize_url = container.oauth.start(workspace, "x")
    query = consent(authorize_url)
    connection = container.oauth.complete("x", query["state"], query["code"])
    due(clock, x_fake)
    container.oauth.refresh_due(connection.id)
    secrets_seen = [*x_fake.access_tokens, *x_fake.refresh_tokens, query["state"], query["code"]]

    with container.pool.connection() as conn:
        stored: list[Any] = [bytes(row[0]) for row in conn.execute("SELECT state FROM pressroom_events").fetchall()]
    blob = b"\n".join(stored)

    assert len(secrets_seen) >= 6
    assert b"connection" in blob.lower()  # the scan reads the events themselves
    assert [secret for secret in secrets_seen if secret.encode() in blob] == []


def run_together(calls: list[Callable[[], bool]]) -> list[bool]:
    barrier = threading.Barrier(len(calls))
    outcomes: list[bool] = []
    lock = threading.Lock()

    def run(call: Callable[[], bool]) -> None:
        barrier.wait()
        outcome = call()
        with lock:
            outcomes.append(outcome)

    threads = [threading.Thread(target=run, args=(call,)) for call in calls]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    return outcomes
