"""X (Twitter) OAuth 2.0 with PKCE.

Authorize at {auth}/i/oauth2/authorize (S256 challenge required); tokens at POST {api}/2/oauth2/token,
form-encoded, HTTP Basic client auth for confidential clients (a client secret) or `client_id` in the
form for public ones. X rotates refresh tokens: each refresh answers a new one and revokes the old.
The profile is GET {api}/2/users/me → `data.username` (the handle) and `data.name`.
"""

from __future__ import annotations

import msgspec

from adapters.oauth._common import OAuthBase
from application.ports import Profile


class _User(msgspec.Struct):
    username: str
    name: str = ""


class _Me(msgspec.Struct):
    data: _User


class XOAuth(OAuthBase):
    provider = "x"
    uses_pkce = True
    authorize_path = "/i/oauth2/authorize"
    scopes = ("tweet.read", "tweet.write", "users.read", "offline.access")
    default_auth_base = "https://x.com"
    default_api_base = "https://api.x.com"

    @property
    def token_url(self) -> str:
        return f"{self.api_base}/2/oauth2/token"

    def profile(self, access_token: str) -> Profile:
        user = self._get("/2/users/me", access_token, _Me).data
        return Profile(name=user.username, display_name=user.name or user.username)

    def _client_auth(self, form: dict[str, str]) -> dict[str, str]:
        if self.client_secret is None:
            form["client_id"] = self.client_id
            return {}
        return self._basic_auth()
