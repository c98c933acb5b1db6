"""The X and LinkedIn OAuth clients against loopback fakes of their OAuth servers."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest

from adapters.oauth import LinkedInOAuth, OAuthApp, Tokens, XOAuth, hash_state, new_pkce, new_state, oauth_client_for
from adapters.oauth.refresh import SingleFlight
from application.ports import Profile, ProviderError
from tests.fakes import FakeLinkedIn, FakeX
from tests.integration.providers.conftest import fast_options

REDIRECT = "https://pressroom.example/oauth/x/callback"
NOW = datetime(2030, 1, 1, 12, 0, tzinfo=UTC)


class FixedClock:
    def now(self) -> datetime:
        return NOW


@pytest.fixture
def x_fake() -> Iterator[FakeX]:
    with FakeX() as fake:
        yield fake


@pytest.fixture
def linkedin_fake() -> Iterator[FakeLinkedIn]:
    with FakeLinkedIn() as fake:
        yield fake


@pytest.fixture
def x(x_fake: FakeX) -> Iterator[XOAuth]:
    client = XOAuth(
        x_fake.client_id, x_fake.client_secret, auth_base=x_fake.url, api_base=x_fake.url, options=fast_options(), clock=FixedClock()
    )
    yield client
    client.close()


@pytest.fixture
def linkedin(linkedin_fake: FakeLinkedIn) -> Iterator[LinkedInOAuth]:
    client = LinkedInOAuth(
        linkedin_fake.client_id,
        linkedin_fake.client_secret,
        auth_base=linkedin_fake.url,
        api_base=linkedin_fake.url,
        options=fast_options(),
        clock=FixedClock(),
    )
    yield client
    client.close()


def query_of(url: str) -> dict[str, list[str]]:
    return parse_qs(urlsplit(url).query)


def connect_x(x: XOAuth, fake: FakeX) -> Tokens:
    verifier, challenge = new_pkce()
    return x.exchange(fake.issue_code(REDIRECT, challenge), verifier, REDIRECT)


# --- state and PKCE ------------------------------------------------------------------------------


def test_a_new_state_when_made_then_it_is_random_and_its_hash_is_the_sha256_hex() -> None:
    state, digest = new_state()

    assert len(state) >= 43
    assert digest == hash_state(state)
    assert len(digest) == 64
    assert new_state()[0] != state


# --- authorize URLs ------------------------------------------------------------------------------


def test_x_authorize_url_when_built_then_it_carries_code_client_scopes_state_and_an_s256_challenge(x: XOAuth, x_fake: FakeX) -> None:
    state, _ = new_state()
    _, challenge = new_pkce()

    url = x.authorize_url(state, challenge, REDIRECT)

    assert url.startswith(f"{x_fake.url}/i/oauth2/authorize?")
    assert query_of(url) == {
        "response_type": ["code"],
        "client_id": [x_fake.client_id],
        "redirect_uri": [REDIRECT],
        "scope": ["tweet.read tweet.write users.read offline.access"],
        "state": [state],
        "code_challenge": [challenge],
        "code_challenge_method": ["S256"],
    }


def test_x_authorize_url_when_followed_then_the_fake_redirects_to_the_callback_with_state_and_a_code_that_exchanges(
    x: XOAuth, x_fake: FakeX
) -> None:
    state, _ = new_state()
    verifier, challenge = new_pkce()

    consent = httpx.get(x.authorize_url(state, challenge, REDIRECT))

    assert consent.status_code == 302
    callback = query_of(consent.headers["Location"])
    assert consent.headers["Location"].startswith(REDIRECT)
    assert callback["state"] == [state]
    assert x.exchange(callback["code"][0], verifier, REDIRECT).access_token


def test_linkedin_authorize_url_when_built_then_it_asks_openid_profile_and_w_member_social_without_pkce(
    linkedin: LinkedInOAuth, linkedin_fake: FakeLinkedIn
) -> None:
    url = linkedin.authorize_url("the-state", None, REDIRECT)

    assert url.startswith(f"{linkedin_fake.url}/oauth/v2/authorization?")
    assert query_of(url) == {
        "response_type": ["code"],
        "client_id": [linkedin_fake.client_id],
        "redirect_uri": [REDIRECT],
        "scope": ["openid profile w_member_social"],
        "state": ["the-state"],
    }


# --- code exchange -------------------------------------------------------------------------------


def test_an_x_code_when_exchanged_with_the_right_verifier_then_tokens_arrive_with_their_expiry(x: XOAuth, x_fake: FakeX) -> None:
    tokens = connect_x(x, x_fake)

    assert tokens.access_token in x_fake.access_tokens
    assert tokens.refresh_token in x_fake.refresh_tokens
    assert tokens.expires_at == NOW + timedelta(seconds=7200)
    assert tokens.scope == "tweet.read tweet.write users.read offline.access"
    sent = x_fake.token_requests("authorization_code")[0]
    assert sent.headers["authorization"].startswith("Basic ")
    assert sent.headers["content-type"] == "application/x-www-form-urlencoded"


def test_an_x_code_when_exchanged_with_a_wrong_verifier_then_it_is_code_rejected_and_not_retried(x: XOAuth, x_fake: FakeX) -> None:
    _, challenge = new_pkce()
    other_verifier, _ = new_pkce()

    with pytest.raises(ProviderError) as caught:
        x.exchange(x_fake.issue_code(REDIRECT, challenge), other_verifier, REDIRECT)

    assert (caught.value.code, caught.value.retryable) == ("code_rejected", False)
    assert "code_verifier" in caught.value.message
    assert len(x_fake.token_requests()) == 1


def test_an_x_code_when_exchanged_twice_then_the_second_exchange_is_code_rejected(x: XOAuth, x_fake: FakeX) -> None:
    verifier, challenge = new_pkce()
    code = x_fake.issue_code(REDIRECT, challenge)
    x.exchange(code, verifier, REDIRECT)

    with pytest.raises(ProviderError) as caught:
        x.exchange(code, verifier, REDIRECT)

    assert caught.value.code == "code_rejected"


def test_an_x_public_client_when_exchanging_then_it_sends_its_client_id_in_the_form_and_no_basic_auth() -> None:
    with FakeX(client_secret=None) as fake:
        client = XOAuth(fake.client_id, None, auth_base=fake.url, api_base=fake.url, options=fast_options())
        try:
            tokens = connect_x(client, fake)
        finally:
            client.close()

    assert tokens.access_token
    assert "authorization" not in fake.token_requests()[0].headers


def test_an_x_client_with_a_wrong_secret_when_exchanging_then_it_is_oauth_client_rejected(x_fake: FakeX) -> None:
    client = XOAuth(x_fake.client_id, "not-the-secret", auth_base=x_fake.url, api_base=x_fake.url, options=fast_options())
    verifier, challenge = new_pkce()

    with pytest.raises(ProviderError) as caught:
        client.exchange(x_fake.issue_code(REDIRECT, challenge), verifier, REDIRECT)
    client.close()

    assert (caught.value.code, caught.value.retryable) == ("oauth_client_rejected", False)


def test_a_linkedin_code_when_exchanged_then_client_credentials_travel_in_the_form(
    linkedin: LinkedInOAuth, linkedin_fake: FakeLinkedIn
) -> None:
    tokens = linkedin.exchange(linkedin_fake.issue_code(REDIRECT), None, REDIRECT)

    assert tokens.access_token in linkedin_fake.access_tokens
    assert tokens.refresh_token is not None
    assert tokens.expires_at == NOW + timedelta(seconds=5184000)
    form = parse_qs(linkedin_fake.token_requests()[0].body.decode())
    assert form["client_id"] == [linkedin_fake.client_id]
    assert form["client_secret"] == [linkedin_fake.client_secret]
    assert "code_verifier" not in form


# --- refresh -------------------------------------------------------------------------------------


def test_an_x_refresh_when_it_succeeds_then_the_refresh_token_rotates_and_the_old_one_is_dead(x: XOAuth, x_fake: FakeX) -> None:
    first = connect_x(x, x_fake)
    assert first.refresh_token is not None

    second = x.refresh(first.refresh_token)

    assert second.refresh_token not in (None, first.refresh_token)
    assert second.access_token != first.access_token
    assert x_fake.refresh_tokens[first.refresh_token] is False


def test_an_x_refresh_token_when_used_twice_then_the_second_refresh_is_refresh_rejected_and_not_retryable(x: XOAuth, x_fake: FakeX) -> None:
    token = x_fake.issue_refresh_token()
    x.refresh(token)

    with pytest.raises(ProviderError) as caught:
        x.refresh(token)

    assert (caught.value.code, caught.value.retryable) == ("refresh_rejected", False)
    assert len(x_fake.token_requests("refresh_token")) == 2


def test_an_x_used_refresh_token_when_x_answers_invalid_request_as_it_does_live_then_it_is_still_refresh_rejected(
    x: XOAuth, x_fake: FakeX
) -> None:
    x_fake.refused_error = "invalid_request"

    with pytest.raises(ProviderError) as caught:
        x.refresh("rt-never-issued")

    assert (caught.value.code, caught.value.retryable) == ("refresh_rejected", False)


def test_a_linkedin_refresh_when_no_new_refresh_token_comes_back_then_the_old_one_is_kept(
    linkedin: LinkedInOAuth, linkedin_fake: FakeLinkedIn
) -> None:
    token = linkedin_fake.issue_refresh_token()

    refreshed = linkedin.refresh(token)
    again = linkedin.refresh(refreshed.refresh_token or "")

    assert refreshed.refresh_token == token
    assert again.refresh_token == token
    assert linkedin_fake.refresh_tokens == {token: True}  # LinkedIn issued no new one
    assert refreshed.access_token in linkedin_fake.access_tokens


def test_a_linkedin_refresh_when_linkedin_rotates_then_the_new_refresh_token_is_returned() -> None:
    with FakeLinkedIn(rotate_refresh_tokens=True) as fake:
        client = LinkedInOAuth(fake.client_id, fake.client_secret, auth_base=fake.url, api_base=fake.url, options=fast_options())
        token = fake.issue_refresh_token()
        try:
            refreshed = client.refresh(token)
        finally:
            client.close()

    assert refreshed.refresh_token not in (None, token)


def test_a_refresh_when_the_token_endpoint_answers_5xx_then_it_is_a_retryable_provider_error_after_the_attempts(
    x: XOAuth, x_fake: FakeX
) -> None:
    token = x_fake.issue_refresh_token()
    x_fake.fail("POST", "/2/oauth2/token", status=503)

    with pytest.raises(ProviderError) as caught:
        x.refresh(token)

    assert (caught.value.code, caught.value.retryable) == ("provider_unavailable", True)
    assert len(x_fake.token_requests("refresh_token")) == 3
    assert x_fake.refresh_tokens[token] is True


def test_a_refresh_when_the_token_endpoint_fails_once_then_the_retry_succeeds(x: XOAuth, x_fake: FakeX) -> None:
    token = x_fake.issue_refresh_token()
    x_fake.fail("POST", "/2/oauth2/token", status=500, times=1)

    assert x.refresh(token).refresh_token not in (None, token)


def test_a_refresh_when_there_is_no_refresh_token_then_it_is_refresh_rejected_without_a_request(x: XOAuth, x_fake: FakeX) -> None:
    with pytest.raises(ProviderError) as caught:
        x.refresh("")

    assert caught.value.code == "refresh_rejected"
    assert x_fake.token_requests() == []


# --- single flight -------------------------------------------------------------------------------


def test_ten_threads_when_refreshing_the_same_connection_at_once_then_the_provider_sees_one_refresh_and_all_get_its_tokens(
    x: XOAuth, x_fake: FakeX
) -> None:
    token = x_fake.issue_refresh_token()
    x_fake.stall("POST", "/2/oauth2/token", seconds=0.3)
    flights: SingleFlight[Tokens] = SingleFlight()
    start = threading.Barrier(10)
    results: list[Tokens] = []
    errors: list[BaseException] = []

    def refresh() -> None:
        start.wait()
        try:
            results.append(flights.run("connection-1", lambda: x.refresh(token)))
        except BaseException as error:
            errors.append(error)

    threads = [threading.Thread(target=refresh) for _ in range(10)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=10)

    assert errors == []
    assert len(x_fake.token_requests("refresh_token")) == 1
    assert len(results) == 10
    assert len({tokens.refresh_token for tokens in results}) == 1
    assert not flights.in_flight("connection-1")


def test_a_single_flight_when_the_call_fails_then_every_waiter_gets_the_error_and_the_next_call_runs_anew() -> None:
    flights: SingleFlight[str] = SingleFlight()
    release = threading.Event()
    calls: list[int] = []
    outcomes: list[object] = []

    def failing() -> str:
        calls.append(1)
        release.wait(5)
        raise ProviderError("provider_unavailable", "down", retryable=True)

    def waiter() -> None:
        try:
            outcomes.append(flights.run("k", failing))
        except ProviderError as error:
            outcomes.append(error.code)

    threads = [threading.Thread(target=waiter) for _ in range(5)]
    threads[0].start()
    while not flights.in_flight("k"):
        time.sleep(0.001)
    for thread in threads[1:]:
        thread.start()
    release.set()
    for thread in threads:
        thread.join(timeout=5)

    assert outcomes == ["provider_unavailable"] * 5
    assert flights.run("k", lambda: "fresh") == "fresh"


def test_a_single_flight_when_keys_differ_then_their_calls_run_separately() -> None:
    flights: SingleFlight[str] = SingleFlight()

    assert flights.run("a", lambda: "A") == "A"
    assert flights.run("b", lambda: "B") == "B"


# --- profile -------------------------------------------------------------------------------------


def test_an_x_access_token_when_asked_for_the_profile_then_it_is_the_username_and_name(x: XOAuth, x_fake: FakeX) -> None:
    tokens = connect_x(x, x_fake)

    assert x.profile(tokens.access_token) == Profile(name="pressroom_demo", display_name="Pressroom Demo")
    assert x_fake.seen("GET", "/2/users/me")[0].headers["authorization"] == f"Bearer {tokens.access_token}"


def test_a_linkedin_access_token_when_asked_for_the_profile_then_it_is_the_member_sub_and_name(
    linkedin: LinkedInOAuth, linkedin_fake: FakeLinkedIn
) -> None:
    tokens = linkedin.exchange(linkedin_fake.issue_code(REDIRECT), None, REDIRECT)

    assert linkedin.profile(tokens.access_token) == Profile(name="782bbtaQ", display_name="Ada Lovelace")


@pytest.mark.parametrize("provider", ["x", "linkedin"])
def test_an_unknown_access_token_when_asked_for_the_profile_then_it_is_token_rejected(
    provider: str, x: XOAuth, linkedin: LinkedInOAuth
) -> None:
    client = x if provider == "x" else linkedin

    with pytest.raises(ProviderError) as caught:
        client.profile("at-revoked")

    assert (caught.value.code, caught.value.retryable) == ("token_rejected", False)


# --- the factory ---------------------------------------------------------------------------------


class SettingsLike:
    x_client_id = "x-client-id"
    x_client_secret = "x-client-secret"
    x_auth_base_url: str | None = None
    x_api_base_url: str | None = None
    linkedin_client_id = ""
    allow_private_urls = True


def test_settings_when_they_name_an_x_app_then_the_factory_builds_an_x_client_on_their_base_urls(x_fake: FakeX) -> None:
    settings = SettingsLike()
    settings.x_auth_base_url = settings.x_api_base_url = x_fake.url
    client = oauth_client_for("x", settings)

    try:
        assert isinstance(client, XOAuth)
        assert client.uses_pkce
        assert connect_x(client, x_fake).access_token
    finally:
        client.close()


def test_an_oauth_app_when_given_then_the_factory_uses_the_providers_own_urls_by_default() -> None:
    client = oauth_client_for("linkedin", OAuthApp(client_id="id", client_secret="secret"), options=fast_options())

    assert client.authorize_url("s", None, REDIRECT).startswith("https://www.linkedin.com/oauth/v2/authorization?")
    client.close()


@pytest.mark.parametrize(("provider", "code"), [("linkedin", "provider_not_configured"), ("myspace", "provider_not_supported")])
def test_a_provider_without_an_app_or_support_when_asked_for_then_the_factory_refuses(provider: str, code: str) -> None:
    with pytest.raises(ProviderError) as caught:
        oauth_client_for(provider, SettingsLike())

    assert (caught.value.code, caught.value.retryable) == (code, False)
