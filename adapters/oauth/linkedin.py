"""LinkedIn OAuth 2.0 (3-legged, OpenID Connect scopes), no PKCE.

Authorize at {auth}/oauth/v2/authorization; tokens at POST {auth}/oauth/v2/accessToken, form-encoded
with `client_id` and `client_secret` in the form. A refresh may answer no new refresh token (LinkedIn
keeps the old one valid): `refresh` then keeps the one it was given. The profile is
GET {api}/v2/userinfo → `sub` (the member id posts are made as, `urn:li:person:<sub>`) and `name`.
"""

from __future__ import annotations

import msgspec

from adapters.oauth._common import OAuthBase
from application.ports import Profile


class _UserInfo(msgspec.Struct):
    sub: str
    name: str | None = None
    given_name: str | None = None
    family_name: str | None = None


class LinkedInOAuth(OAuthBase):
    provider = "linkedin"
    uses_pkce = False
    authorize_path = "/oauth/v2/authorization"
    scopes = ("openid", "profile", "w_member_social")
    default_auth_base = "https://www.linkedin.com"
    default_api_base = "https://api.linkedin.com"

    @property
    def token_url(self) -> str:
        return f"{self.auth_base}/oauth/v2/accessToken"

    def profile(self, access_token: str) -> Profile:
        info = self._get("/v2/userinfo", access_token, _UserInfo)
        full_name = " ".join(part for part in (info.given_name, info.family_name) if part)
        return Profile(name=info.sub, display_name=info.name or full_name or info.sub)

    def _client_auth(self, form: dict[str, str]) -> dict[str, str]:
        form["client_id"] = self.client_id
        form["client_secret"] = self.client_secret or ""
        return {}
