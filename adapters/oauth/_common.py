"""What every OAuth 2.0 provider shares: state and PKCE values, the token endpoint's answers and errors.

Token endpoint errors (RFC 6749 §5.2, 400/401 with `{"error", "error_description"}`) become:

    refresh grant, invalid_grant / invalid_request → refresh_rejected (not retryable: reconnect the account)
    code grant, invalid_grant / invalid_request    → code_rejected (expired, used, wrong PKCE verifier)
    invalid_client / unauthorized_client           → oauth_client_rejected (our client id or secret)
    anything else 4xx                              → provider_rejected

X answers a used or revoked refresh token with `invalid_request`, not `invalid_grant`, hence both.
429, 5xx, timeouts and connection errors stay as `outbound_http` maps them: retryable. Retries follow
the OutboundOptions; a retried refresh whose first try reached the provider meets a rotated token and
ends as refresh_rejected, which is what that token has become.
"""

from __future__ import annotations

import base64
from abc import ABC, abstractmethod
from datetime import UTC, datetime, timedelta
from typing import Any, Literal, TypeVar
from urllib.parse import urlencode

import httpx
import msgspec

from adapters.outbound_http import Outbound, OutboundOptions, decode, provider_message
from application.oauth_connections import hash_state, new_pkce, new_state, pkce_challenge
from application.ports import Clock, Profile, ProviderError

T = TypeVar("T")

Grant = Literal["authorization_code", "refresh_token"]
REJECTED_GRANT = frozenset({"invalid_grant", "invalid_request"})
REJECTED_CLIENT = frozenset({"invalid_client", "unauthorized_client"})


class Tokens(msgspec.Struct, frozen=True, kw_only=True):
    """What a token endpoint granted. `refresh_token` is None only when the provider never gave one."""

    access_token: str
    refresh_token: str | None
    expires_at: datetime | None
    scope: str | None


# --- state and PKCE ------------------------------------------------------------------------------


# One implementation for the application and the clients; re-exported here for the adapters.
__all__ = ["hash_state", "new_pkce", "new_state", "pkce_challenge"]


# --- the shared client -----------------------------------------------------------------------------


class _TokenAnswer(msgspec.Struct):
    access_token: str
    expires_in: float | None = None
    refresh_token: str | None = None
    scope: str | None = None


class _Refusal(Exception):
    """A 400/401 from the token endpoint, raised inside the request so `send` neither retries nor swallows its body."""

    def __init__(self, status: int, error: str, description: str) -> None:
        super().__init__(error)
        self.status = status
        self.error = error
        self.description = description


class _SystemClock:
    def now(self) -> datetime:
        return datetime.now(UTC)


class OAuthBase(ABC):
    """The token endpoint and bearer GETs for one provider; subclasses say where, and how the client authenticates."""

    provider: str
    uses_pkce: bool
    authorize_path: str  # on auth_base
    scopes: tuple[str, ...]
    default_auth_base: str  # where users consent
    default_api_base: str

    def __init__(
        self,
        client_id: str,
        client_secret: str | None = None,
        *,
        auth_base: str | None = None,
        api_base: str | None = None,
        options: OutboundOptions | None = None,
        clock: Clock | None = None,
    ) -> None:
        self.client_id = client_id
        self.client_secret = client_secret or None
        self.auth_base = (auth_base or self.default_auth_base).rstrip("/")
        self.api_base = (api_base or self.default_api_base).rstrip("/")
        self.clock: Clock = clock or _SystemClock()
        self.outbound = Outbound(options or OutboundOptions(), provider=self.provider)

    def close(self) -> None:
        self.outbound.close()

    # --- the flow ------------------------------------------------------------------------------

    def authorize_url(self, state: str, code_challenge: str | None, redirect_uri: str) -> str:
        params = {
            "response_type": "code",
            "client_id": self.client_id,
            "redirect_uri": redirect_uri,
            "scope": " ".join(self.scopes),
            "state": state,
            **self._challenge_params(code_challenge),
        }
        return f"{self.auth_base}{self.authorize_path}?{urlencode(params)}"

    def exchange(self, code: str, code_verifier: str | None, redirect_uri: str) -> Tokens:
        form = {"grant_type": "authorization_code", "code": code, "redirect_uri": redirect_uri}
        if self.uses_pkce:
            if not code_verifier:
                raise ValueError(f"{self.provider} needs the PKCE code_verifier of the authorize request")
            form["code_verifier"] = code_verifier
        return self._grant("authorization_code", form)

    def refresh(self, refresh_token: str) -> Tokens:
        """New tokens; when the provider sends no new refresh token, the one given stays (never an empty one)."""
        if not refresh_token:
            raise ProviderError("refresh_rejected", f"{self.provider}: there is no refresh token to use", retryable=False)
        tokens = self._grant("refresh_token", {"grant_type": "refresh_token", "refresh_token": refresh_token})
        if tokens.refresh_token:
            return tokens
        return msgspec.structs.replace(tokens, refresh_token=refresh_token)

    @abstractmethod
    def profile(self, access_token: str) -> Profile:
        """Who the access token belongs to, at this provider."""

    @property
    @abstractmethod
    def token_url(self) -> str:
        """This provider's token endpoint."""

    # --- for subclasses ------------------------------------------------------------------------

    def _challenge_params(self, code_challenge: str | None) -> dict[str, str]:
        if not self.uses_pkce:
            return {}
        if not code_challenge:
            raise ValueError(f"{self.provider} needs a PKCE code_challenge")
        return {"code_challenge": code_challenge, "code_challenge_method": "S256"}

    @abstractmethod
    def _client_auth(self, form: dict[str, str]) -> dict[str, str]:
        """Adds this provider's client authentication to `form`; returns extra headers."""

    def _basic_auth(self) -> dict[str, str]:
        """RFC 6749 §2.3.1: id and secret form-encoded, then HTTP Basic."""
        user = urlencode({"": self.client_id})[1:]
        password = urlencode({"": self.client_secret or ""})[1:]
        return {"Authorization": "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()}

    def _grant(self, grant: Grant, form: dict[str, str]) -> Tokens:
        form = dict(form)
        headers = {"Accept": "application/json", **self._client_auth(form)}
        url = self.token_url

        def post(client: httpx.Client) -> httpx.Response:
            response = client.post(url, data=form, headers=headers)
            if response.status_code in (400, 401):
                raise _refusal(response)
            return response

        try:
            response = self.outbound.send(post)
        except _Refusal as refusal:
            raise self._refused(grant, refusal) from None
        answer = decode(response.content, _TokenAnswer, provider=self.provider)
        if not answer.access_token:
            raise ProviderError("provider_malformed_response", f"{self.provider} granted an empty access token", retryable=False)
        return self._tokens(answer)

    def _tokens(self, answer: _TokenAnswer) -> Tokens:
        expires_at = None
        if answer.expires_in is not None and answer.expires_in > 0:
            expires_at = self.clock.now() + timedelta(seconds=answer.expires_in)
        return Tokens(
            access_token=answer.access_token,
            refresh_token=answer.refresh_token or None,
            expires_at=expires_at,
            scope=answer.scope,
        )

    def _refused(self, grant: Grant, refusal: _Refusal) -> ProviderError:
        said = f"{self.provider} refused the {grant.replace('_', ' ')} (HTTP {refusal.status} {refusal.error or 'no OAuth error'})"
        if refusal.description:
            said += f": {refusal.description}"
        if refusal.error in REJECTED_CLIENT:
            return ProviderError("oauth_client_rejected", said, retryable=False)
        if refusal.error in REJECTED_GRANT or (grant == "refresh_token" and not refusal.error):
            return ProviderError("refresh_rejected" if grant == "refresh_token" else "code_rejected", said, retryable=False)
        return ProviderError("provider_rejected", said, retryable=False)

    def _get(self, path: str, access_token: str, into: type[T]) -> T:
        """A bearer GET on the API; a 401 is ProviderError("token_rejected"): the access token no longer works."""
        url = f"{self.api_base}{path}"

        def get(client: httpx.Client) -> httpx.Response:
            response = client.get(url, headers={"Authorization": f"Bearer {access_token}", "Accept": "application/json"})
            if response.status_code == 401:
                raise _Refusal(401, "invalid_token", provider_message(response.content, "Unauthorized"))
            return response

        try:
            response = self.outbound.send(get)
        except _Refusal as refusal:
            raise ProviderError(
                "token_rejected", f"{self.provider} refused the access token: {refusal.description}", retryable=False
            ) from None
        return decode(response.content, into, provider=self.provider)


def _refusal(response: httpx.Response) -> _Refusal:
    try:
        body: Any = msgspec.json.decode(response.content)
    except msgspec.DecodeError:
        body = None
    error, description = "", ""
    if isinstance(body, dict):
        raw_error = body.get("error")
        if isinstance(raw_error, str):
            error = raw_error
            description = str(body.get("error_description") or "")
        else:
            description = provider_message(response.content)
    else:
        description = provider_message(response.content, response.reason_phrase)
    return _Refusal(response.status_code, error, description[:300])
