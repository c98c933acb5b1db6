"""Fakes of the five manual platforms, and each platform's publisher pointed at its fake.

`platform` runs a test once per provider; the `*_fake` fixtures serve the tests of one provider.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any
from uuid import uuid4

import pytest

from adapters.outbound_http import OutboundOptions
from adapters.publishers import (
    MANUAL_PROVIDERS,
    BlueskyPublisher,
    DiscordPublisher,
    MastodonPublisher,
    TelegramPublisher,
    WebhookPublisher,
)
from application.ports import Attachment, Outgoing, Profile
from tests.fakes import FakeBluesky, FakeDiscord, FakeMastodon, FakeServer, FakeTelegram, FakeWebhookReceiver, tiny_png
from tests.integration.providers.conftest import fast_options

WEBHOOK_SECRET = "whsec_test_secret"


def outgoing(text: str = "Cold water for 24 hours.", *, media: tuple[Attachment, ...] = (), key: str | None = None) -> Outgoing:
    post_id = str(uuid4())
    return Outgoing(post_id=post_id, idempotency_key=key or f"post:{post_id}", text=text, media=media)


def image(name: str = "bottle.png", size: tuple[int, int] = (4, 3)) -> Attachment:
    return Attachment(content=tiny_png(*size), mime="image/png", url=f"https://media.example.com/{name}?sig=abc", filename=name)


@dataclass
class Platform:
    """One provider's fake and how its publisher reaches it."""

    name: str
    fake: Any  # the provider's fake; every one has `posts`
    make: Callable[[OutboundOptions], Any]
    credentials: dict[str, str]
    bad_credentials: dict[str, str]
    create: tuple[str, str]  # method and path pattern of the request that creates the post
    profile: Profile
    post_id: Callable[[dict[str, Any]], str]  # the receipt id of one of the fake's posts
    _made: list[Any] = field(default_factory=list)

    def publisher(self, **options: object) -> Any:
        publisher = self.make(fast_options(**options))
        self._made.append(publisher)
        return publisher

    @property
    def posts(self) -> list[dict[str, Any]]:
        return self.fake.posts  # type: ignore[no-any-return]

    def close(self) -> None:
        for publisher in self._made:
            publisher.close()


def platform_for(name: str, fake: FakeServer) -> Platform:
    if isinstance(fake, FakeWebhookReceiver):
        return Platform(
            name,
            fake,
            WebhookPublisher,
            {"url": fake.hook_url, "secret": WEBHOOK_SECRET},
            {"url": fake.hook_url, "secret": "whsec_wrong"},
            ("POST", "/hooks/pressroom"),
            Profile(name="127.0.0.1", display_name=fake.hook_url),
            lambda post: post["id"],
        )
    if isinstance(fake, FakeDiscord):
        return Platform(
            name,
            fake,
            DiscordPublisher,
            {"webhookUrl": fake.webhook_url},
            {"webhookUrl": fake.webhook_url.replace(fake.token, "not-the-token")},
            ("POST", "/api/webhooks/*"),
            Profile(name="Pressroom", display_name="Pressroom"),
            lambda post: post["id"],
        )
    if isinstance(fake, FakeTelegram):
        base = fake.api_base
        return Platform(
            name,
            fake,
            lambda options: TelegramPublisher(options, api_base=base),
            {"botToken": fake.bot_token, "chatId": fake.chat_id},
            {"botToken": "123456789:AAWrongTokenWrongTokenWrongToken", "chatId": fake.chat_id},
            ("POST", "/bot*/sendMessage"),
            Profile(name="pressroom_bot", display_name="Pressroom"),
            lambda post: str(post["message_id"]),
        )
    if isinstance(fake, FakeMastodon):
        return Platform(
            name,
            fake,
            lambda options: MastodonPublisher(options, media_poll_interval=0.01),
            {"instanceUrl": fake.instance_url, "accessToken": fake.access_token},
            {"instanceUrl": fake.instance_url, "accessToken": "revoked-token"},
            ("POST", "/api/v1/statuses"),
            Profile(name="alice@127.0.0.1", display_name="Alice Example"),
            lambda post: post["id"],
        )
    if isinstance(fake, FakeBluesky):
        base = fake.api_base
        return Platform(
            name,
            fake,
            lambda options: BlueskyPublisher(options, api_base=base),
            {"identifier": fake.handle, "appPassword": fake.app_password},
            {"identifier": fake.handle, "appPassword": "wrong-wrong-wrong-wrong"},
            ("POST", "/xrpc/com.atproto.repo.createRecord"),
            Profile(name=fake.handle, display_name=fake.handle),
            lambda post: post["uri"],
        )
    raise AssertionError(f"no fake for {name}")


FAKES: dict[str, Callable[[], FakeServer]] = {
    "webhook": lambda: FakeWebhookReceiver(secret=WEBHOOK_SECRET),
    "discord": FakeDiscord,
    "telegram": FakeTelegram,
    "mastodon": FakeMastodon,
    "bluesky": FakeBluesky,
}
RECONCILING = ("webhook", "mastodon", "bluesky")
DELETING = ("discord", "telegram", "mastodon", "bluesky")


def _platform(name: str) -> Iterator[Platform]:
    with FAKES[name]() as fake:
        platform = platform_for(name, fake)
        yield platform
        platform.close()


@pytest.fixture(params=MANUAL_PROVIDERS)
def platform(request: pytest.FixtureRequest) -> Iterator[Platform]:
    yield from _platform(request.param)


@pytest.fixture(params=RECONCILING)
def reconciling_platform(request: pytest.FixtureRequest) -> Iterator[Platform]:
    yield from _platform(request.param)


@pytest.fixture(params=[p for p in MANUAL_PROVIDERS if p not in RECONCILING])
def unreconcilable_platform(request: pytest.FixtureRequest) -> Iterator[Platform]:
    yield from _platform(request.param)


@pytest.fixture(params=DELETING)
def deleting_platform(request: pytest.FixtureRequest) -> Iterator[Platform]:
    yield from _platform(request.param)


@pytest.fixture
def webhook() -> Iterator[Platform]:
    yield from _platform("webhook")


@pytest.fixture
def discord() -> Iterator[Platform]:
    yield from _platform("discord")


@pytest.fixture
def telegram() -> Iterator[Platform]:
    yield from _platform("telegram")


@pytest.fixture
def mastodon() -> Iterator[Platform]:
    yield from _platform("mastodon")


@pytest.fixture
def bluesky() -> Iterator[Platform]:
    yield from _platform("bluesky")
