"""Fakes of X's and LinkedIn's OAuth 2.0 servers: consent, token endpoint and the profile each client reads.

Both serve their authorize and token paths and their profile API from one base URL, so a test passes
`fake.url` as both the auth and the API base. `issue_code(redirect_uri, code_challenge)` stands in
for a user who consented (a GET of the authorize URL does the same and redirects to the callback).
The token endpoint checks client authentication, the code (single use, bound to its redirect URI and,
for X, its S256 PKCE challenge) and refresh tokens: X rotates them on every refresh and refuses a
used one; LinkedIn keeps its refresh token unless `rotate_refresh_tokens` is set. Refusals answer
400 `{"error": refused_error, "error_description"}`, `invalid_grant` unless a test picks X's
real-world `invalid_request`.
"""

from __future__ import annotations

import base64
import hashlib
import secrets
import threading
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qsl, unquote, urlencode

from tests.fakes.servers import FakeServer, Reply, Seen


@dataclass(frozen=True)
class FakeUser:
    id: str
    username: str
    name: str


@dataclass
class _Code:
    redirect_uri: str
    challenge: str | None
    scope: str
    user: FakeUser
    used: bool = False


def s256(verifier: str) -> str:
    return base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()


class _FakeOAuthServer(FakeServer):
    authorize_path: str
    token_path: str
    profile_path: str
    scope: str
    requires_pkce: bool
    rotates: bool

    def __init__(self, client_id: str, client_secret: str | None, user: FakeUser) -> None:
        super().__init__()
        self.client_id = client_id
        self.client_secret = client_secret
        self.user = user
        self.expires_in = 7200
        self.refused_error = "invalid_grant"
        self.codes: dict[str, _Code] = {}
        self.refresh_tokens: dict[str, bool] = {}  # token → still usable
        self.access_tokens: dict[str, FakeUser] = {}
        self._grants = threading.Lock()

    # --- for tests -----------------------------------------------------------------------------

    def issue_code(self, redirect_uri: str, code_challenge: str | None = None, *, user: FakeUser | None = None) -> str:
        """The code the provider would send to the callback after the user consents."""
        code = secrets.token_urlsafe(24)
        with self._grants:
            self.codes[code] = _Code(redirect_uri, code_challenge, self.scope, user or self.user)
        return code

    def issue_refresh_token(self) -> str:
        """A live refresh token, as if granted earlier."""
        token = f"rt-{secrets.token_urlsafe(24)}"
        with self._grants:
            self.refresh_tokens[token] = True
        return token

    def token_requests(self, grant_type: str | None = None) -> list[Seen]:
        seen = self.seen("POST", self.token_path)
        return [r for r in seen if grant_type is None or dict(parse_qsl(r.body.decode())).get("grant_type") == grant_type]

    # --- the provider --------------------------------------------------------------------------

    def route(self, request: Seen) -> Reply:
        if (request.method, request.path) == ("GET", self.authorize_path):
            return self._authorize(request.query)
        if (request.method, request.path) == ("POST", self.token_path):
            form = dict(parse_qsl(request.body.decode()))
            refused = self._client_refused(request, form)
            return refused or self._token(form)
        if (request.method, request.path) == ("GET", self.profile_path):
            user = self.access_tokens.get(request.headers.get("authorization", "").removeprefix("Bearer "))
            return self._profile(user) if user else self._unauthorized()
        return Reply.json({"error": "not_found"}, 404)

    def _authorize(self, query: dict[str, str]) -> Reply:
        if query.get("client_id") != self.client_id or query.get("response_type") != "code" or not query.get("redirect_uri"):
            return Reply.json({"error": "invalid_request", "error_description": "client_id, response_type or redirect_uri"}, 400)
        challenge = query.get("code_challenge")
        if self.requires_pkce and (not challenge or query.get("code_challenge_method") != "S256"):
            return Reply.json({"error": "invalid_request", "error_description": "code_challenge (S256) is required"}, 400)
        code = self.issue_code(query["redirect_uri"], challenge)
        location = f"{query['redirect_uri']}?{urlencode({'state': query.get('state', ''), 'code': code})}"
        return Reply(302, b"", {"Location": location})

    def _token(self, form: dict[str, str]) -> Reply:
        grant = form.get("grant_type")
        with self._grants:
            if grant == "authorization_code":
                return self._code_grant(form)
            if grant == "refresh_token":
                return self._refresh_grant(form.get("refresh_token", ""))
        return Reply.json({"error": "unsupported_grant_type", "error_description": f"grant_type {grant!r}"}, 400)

    def _code_grant(self, form: dict[str, str]) -> Reply:
        code = self.codes.get(form.get("code", ""))
        if code is None or code.used or code.redirect_uri != form.get("redirect_uri"):
            return self._refuse("The authorization code is invalid, expired, used, or for another redirect_uri.")
        if self.requires_pkce:
            verifier = form.get("code_verifier")
            if not verifier:
                return Reply.json({"error": "invalid_request", "error_description": "Missing required parameter [code_verifier]."}, 400)
            if code.challenge is None or s256(verifier) != code.challenge:
                return self._refuse("The code_verifier does not match the code_challenge.")
        code.used = True
        return self._grant(code.user, new_refresh=True)

    def _refresh_grant(self, token: str) -> Reply:
        if not self.refresh_tokens.get(token):
            return self._refuse("Value passed for the token was invalid.")
        if self.rotates:
            self.refresh_tokens[token] = False
        return self._grant(self.user, new_refresh=self.rotates)

    def _grant(self, user: FakeUser, *, new_refresh: bool) -> Reply:
        access = f"at-{secrets.token_urlsafe(24)}"
        self.access_tokens[access] = user
        body: dict[str, Any] = {"access_token": access, "expires_in": self.expires_in, "scope": self.scope}
        if new_refresh:
            refresh = f"rt-{secrets.token_urlsafe(24)}"
            self.refresh_tokens[refresh] = True
            body["refresh_token"] = refresh
        return Reply.json(self._token_body(body))

    def _refuse(self, description: str) -> Reply:
        return Reply.json({"error": self.refused_error, "error_description": description}, 400)

    # --- where the providers differ ------------------------------------------------------------

    def _client_refused(self, request: Seen, form: dict[str, str]) -> Reply | None:
        raise NotImplementedError

    def _token_body(self, body: dict[str, Any]) -> dict[str, Any]:
        return body

    def _profile(self, user: FakeUser) -> Reply:
        raise NotImplementedError

    def _unauthorized(self) -> Reply:
        raise NotImplementedError


class FakeX(_FakeOAuthServer):
    """X's OAuth 2.0: PKCE required, HTTP Basic for a confidential client (`client_secret`), else
    `client_id` in the form; refresh tokens rotate."""

    authorize_path = "/i/oauth2/authorize"
    token_path = "/2/oauth2/token"
    profile_path = "/2/users/me"
    scope = "tweet.read tweet.write users.read offline.access"
    requires_pkce = True
    rotates = True

    def __init__(
        self,
        client_id: str = "x-client-id",
        client_secret: str | None = "x-client-secret",
        user: FakeUser = FakeUser("1460000000000000001", "pressroom_demo", "Pressroom Demo"),
    ) -> None:
        super().__init__(client_id, client_secret, user)

    def _client_refused(self, request: Seen, form: dict[str, str]) -> Reply | None:
        if self.client_secret is None:
            if form.get("client_id") == self.client_id:
                return None
        elif _basic(request) == (self.client_id, self.client_secret):
            return None
        return Reply.json({"error": "unauthorized_client", "error_description": "Missing valid authorization header"}, 401)

    def _token_body(self, body: dict[str, Any]) -> dict[str, Any]:
        return {"token_type": "bearer", **body}

    def _profile(self, user: FakeUser) -> Reply:
        return Reply.json({"data": {"id": user.id, "name": user.name, "username": user.username}})

    def _unauthorized(self) -> Reply:
        return Reply.json({"title": "Unauthorized", "type": "about:blank", "status": 401, "detail": "Unauthorized"}, 401)


class FakeLinkedIn(_FakeOAuthServer):
    """LinkedIn's OAuth 2.0: `client_id` and `client_secret` in the form, no PKCE; a refresh answers
    no refresh token (the old one stays valid) unless `rotate_refresh_tokens`."""

    authorize_path = "/oauth/v2/authorization"
    token_path = "/oauth/v2/accessToken"
    profile_path = "/v2/userinfo"
    scope = "openid,profile,w_member_social"
    requires_pkce = False

    def __init__(
        self,
        client_id: str = "linkedin-client-id",
        client_secret: str = "linkedin-client-secret",
        user: FakeUser = FakeUser("782bbtaQ", "782bbtaQ", "Ada Lovelace"),
        *,
        rotate_refresh_tokens: bool = False,
    ) -> None:
        super().__init__(client_id, client_secret, user)
        self.rotates = rotate_refresh_tokens
        self.expires_in = 5184000

    def _client_refused(self, request: Seen, form: dict[str, str]) -> Reply | None:
        if (form.get("client_id"), form.get("client_secret")) == (self.client_id, self.client_secret):
            return None
        return Reply.json({"error": "invalid_client", "error_description": "Client authentication failed"}, 401)

    def _token_body(self, body: dict[str, Any]) -> dict[str, Any]:
        if "refresh_token" in body:
            body["refresh_token_expires_in"] = 31536000
        return body

    def _profile(self, user: FakeUser) -> Reply:
        given, _, family = user.name.partition(" ")
        return Reply.json({"sub": user.id, "name": user.name, "given_name": given, "family_name": family, "locale": "en_US"})

    def _unauthorized(self) -> Reply:
        return Reply.json({"serviceErrorCode": 65600, "message": "Invalid access token", "status": 401}, 401)


def _basic(request: Seen) -> tuple[str, str] | None:
    scheme, _, encoded = request.headers.get("authorization", "").partition(" ")
    if scheme.lower() != "basic":
        return None
    try:
        user, _, password = base64.b64decode(encoded).decode().partition(":")
    except ValueError:
        return None
    return unquote(user.replace("+", " ")), unquote(password.replace("+", " "))
