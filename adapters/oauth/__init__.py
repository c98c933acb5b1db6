"""OAuth 2.0 clients of the publishing providers: authorize URL, code exchange, refresh, profile.

One module per provider (`x`, `linkedin`) on the shared `_common.OAuthBase`. Every URL base is a
constructor argument so tests point the clients at loopback fakes. Failures are `ProviderError`s;
see `_common` for the codes (`refresh_rejected` means reconnect, a retryable one means try later).
"""

from __future__ import annotations

from typing import Protocol

import msgspec

from adapters.oauth._common import OAuthBase, Tokens, hash_state, new_pkce, new_state, pkce_challenge
from adapters.oauth.linkedin import LinkedInOAuth
from adapters.oauth.x import XOAuth
from adapters.outbound_http import OutboundOptions
from application.ports import Clock, Profile, ProviderError

__all__ = [
    "CLIENTS",
    "OAUTH_PROVIDERS",
    "LinkedInOAuth",
    "OAuthApp",
    "OAuthClient",
    "Tokens",
    "XOAuth",
    "hash_state",
    "new_pkce",
    "new_state",
    "oauth_client_for",
    "pkce_challenge",
]

CLIENTS: dict[str, type[OAuthBase]] = {"x": XOAuth, "linkedin": LinkedInOAuth}
OAUTH_PROVIDERS = tuple(CLIENTS)


class OAuthClient(Protocol):
    provider: str
    uses_pkce: bool  # whether authorize_url needs a code_challenge and exchange its code_verifier

    def authorize_url(self, state: str, code_challenge: str | None, redirect_uri: str) -> str: ...

    def exchange(self, code: str, code_verifier: str | None, redirect_uri: str) -> Tokens: ...

    def refresh(self, refresh_token: str) -> Tokens: ...

    def profile(self, access_token: str) -> Profile: ...

    def close(self) -> None: ...


class OAuthApp(msgspec.Struct, frozen=True, kw_only=True):
    """Our registered app at one provider; a base left None is the provider's own."""

    client_id: str
    client_secret: str | None = None
    auth_base: str | None = None
    api_base: str | None = None


def oauth_client_for(
    provider: str, config: OAuthApp | object, *, options: OutboundOptions | None = None, clock: Clock | None = None
) -> OAuthClient:
    """The client of `provider` for an OAuthApp, or for settings read as `<provider>_client_id`,
    `<provider>_client_secret`, `<provider>_auth_base_url`, `<provider>_api_base_url` (None: the
    provider's own); without `options`, outbound options come from the settings' provider timeouts.
    ProviderError("provider_not_supported") or ("provider_not_configured"), neither retryable."""
    if provider not in CLIENTS:
        raise ProviderError("provider_not_supported", f"OAuth is not available for {provider!r}", retryable=False)
    app = config if isinstance(config, OAuthApp) else _app_from_settings(provider, config)
    if not app.client_id or (provider == "linkedin" and not app.client_secret):
        needed = "CLIENT_ID and CLIENT_SECRET" if provider == "linkedin" else "CLIENT_ID"
        raise ProviderError(
            "provider_not_configured", f"PRESSROOM_{provider.upper()}_{needed} must be set to connect {provider}", retryable=False
        )
    return CLIENTS[provider](
        app.client_id,
        app.client_secret,
        auth_base=app.auth_base,
        api_base=app.api_base,
        options=options or _options_from_settings(config),
        clock=clock,
    )


def _app_from_settings(provider: str, settings: object) -> OAuthApp:
    def setting(name: str) -> str | None:
        value = getattr(settings, f"{provider}_{name}", None)
        return str(value) if value else None

    return OAuthApp(
        client_id=setting("client_id") or "",
        client_secret=setting("client_secret"),
        auth_base=setting("auth_base_url"),
        api_base=setting("api_base_url"),
    )


def _options_from_settings(settings: object) -> OutboundOptions:
    defaults = OutboundOptions()
    return OutboundOptions(
        read_timeout=float(getattr(settings, "provider_read_timeout_seconds", defaults.read_timeout)),
        attempts=int(getattr(settings, "provider_attempts", defaults.attempts)),
        allow_private=bool(getattr(settings, "allow_private_urls", defaults.allow_private)),
    )
