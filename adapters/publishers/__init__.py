"""Publishers of the manual providers, each over its platform's documented HTTP API (see each module)."""

from __future__ import annotations

from collections.abc import Callable, Mapping

from adapters.outbound_http import OutboundOptions
from adapters.publishers.bluesky import BlueskyPublisher
from adapters.publishers.discord import DiscordPublisher
from adapters.publishers.mastodon import MastodonPublisher
from adapters.publishers.telegram import TelegramPublisher
from adapters.publishers.webhook import WebhookPublisher
from application.ports import Publisher

PUBLISHERS: dict[str, Callable[[OutboundOptions], Publisher]] = {
    "webhook": WebhookPublisher,
    "discord": DiscordPublisher,
    "telegram": TelegramPublisher,
    "mastodon": MastodonPublisher,
    "bluesky": BlueskyPublisher,
}
MANUAL_PROVIDERS = tuple(PUBLISHERS)


# Platforms with one fixed API address; self-hosted ones (Mastodon, Discord, webhooks) take theirs from the account.
FIXED_BASES: dict[str, type[TelegramPublisher] | type[BlueskyPublisher]] = {"telegram": TelegramPublisher, "bluesky": BlueskyPublisher}


def publisher_for(provider: str, options: OutboundOptions, api_bases: Mapping[str, str | None] | None = None) -> Publisher:
    """A new publisher for `provider` (one of MANUAL_PROVIDERS), at the platform's public address unless
    `api_bases` names another (a PDS of one's own for Bluesky, a local Bot API server for Telegram, a test fake)."""
    base = (api_bases or {}).get(provider)
    if base and provider in FIXED_BASES:
        return FIXED_BASES[provider](options, api_base=base)
    try:
        make = PUBLISHERS[provider]
    except KeyError:
        raise ValueError(f"no publisher for provider {provider!r}; manual providers are {', '.join(MANUAL_PROVIDERS)}") from None
    return make(options)


__all__ = [
    "MANUAL_PROVIDERS",
    "BlueskyPublisher",
    "DiscordPublisher",
    "MastodonPublisher",
    "TelegramPublisher",
    "WebhookPublisher",
    "publisher_for",
]
