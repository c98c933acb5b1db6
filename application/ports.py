"""Ports: what the application needs from the outside world, as Protocols."""

from __future__ import annotations

from contextlib import AbstractContextManager
from datetime import datetime
from typing import Annotated, Literal, Protocol
from uuid import UUID

import msgspec
from msgspec import Meta

Platform = Literal["meta", "tiktok", "google", "linkedin", "pinterest", "x", "universal"]
CopyFormat = Literal["short", "long", "hook", "story"]
Tone = Literal["professional", "casual", "urgent", "luxe", "playful", "bold"]


class Product(msgspec.Struct, frozen=True, kw_only=True, rename="camel", forbid_unknown_fields=True):
    name: Annotated[str, Meta(min_length=1, max_length=200)]
    description: Annotated[str, Meta(max_length=5000)] | None = None
    url: Annotated[str, Meta(max_length=2048, pattern=r"^https?://")] | None = None


class CopyBrief(msgspec.Struct, frozen=True, kw_only=True, rename="camel", forbid_unknown_fields=True):
    """What a copy job asks for: the `input` of a `copy` job."""

    product: Product
    platform: Platform = "universal"
    format: CopyFormat = "short"
    tone: Tone = "professional"
    count: Annotated[int, Meta(ge=1, le=10)] = 5
    language: Annotated[str, Meta(pattern=r"^[a-z]{2}(-[A-Z]{2})?$")] = "en"
    custom_instructions: Annotated[str, Meta(max_length=500)] | None = None


ImageStyle = Literal["product_hero", "lifestyle", "minimal", "bold", "seasonal"]
ImageAspect = Literal["1:1", "9:16", "4:5", "16:9"]
VideoAspect = Literal["9:16", "1:1", "16:9"]


class ImageBrief(msgspec.Struct, frozen=True, kw_only=True, rename="camel", forbid_unknown_fields=True):
    """What an image job asks for: the `input` of an `image` job."""

    prompt: Annotated[str, Meta(min_length=5, max_length=1000)]
    style: ImageStyle = "product_hero"
    aspect_ratio: ImageAspect = "1:1"
    count: Annotated[int, Meta(ge=1, le=4)] = 1
    headline: Annotated[str, Meta(max_length=120)] | None = None


class VideoBrief(msgspec.Struct, frozen=True, kw_only=True, rename="camel", forbid_unknown_fields=True):
    """What a video job asks for: the `input` of a `video` job."""

    script: Annotated[str, Meta(min_length=10, max_length=2000)]
    avatar_url: Annotated[str, Meta(max_length=2048, pattern=r"^https?://")] | None = None
    voice_id: Annotated[str, Meta(max_length=64)] = "male-1"
    aspect_ratio: VideoAspect = "9:16"


class MediaFile(msgspec.Struct, frozen=True, kw_only=True):
    """One produced file: its bytes and what a client needs to show it."""

    content: bytes
    mime: str
    width: int
    height: int
    duration_seconds: float | None = None


class CopyVariant(msgspec.Struct, frozen=True, kw_only=True, rename="camel"):
    hook: str
    body: str
    cta: str
    hashtags: list[str]


class ProviderError(Exception):
    """A provider could not produce the output; `retryable` says whether trying again may help."""

    def __init__(self, code: str, message: str, *, retryable: bool) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.retryable = retryable


class CopyWriter(Protocol):
    def write(self, brief: CopyBrief) -> list[CopyVariant]: ...


class ImageMaker(Protocol):
    def make(self, brief: ImageBrief, index: int) -> MediaFile:
        """The `index`-th image (0-based) of the brief; one call per image, so a job reports progress
        and keeps what it made when a later image fails."""
        ...


class VideoMaker(Protocol):
    def make(self, brief: VideoBrief) -> MediaFile: ...


class MediaStore(Protocol):
    def put(self, key: str, content: bytes) -> None: ...

    def read(self, key: str) -> bytes:
        """The bytes stored under `key`."""
        ...

    def inspect(self, content: bytes) -> tuple[str, int, int] | None:
        """(mime, width, height) read from the bytes themselves; None when it is no media we take."""
        ...


class Clock(Protocol):
    def now(self) -> datetime: ...


# --- publishing ----------------------------------------------------------------------------------


class Attachment(msgspec.Struct, frozen=True, kw_only=True):
    """One media file of an outgoing post: its bytes, and a signed public URL for platforms that fetch media themselves."""

    content: bytes
    mime: str
    url: str
    filename: str


class Outgoing(msgspec.Struct, frozen=True, kw_only=True):
    """A post as a publisher sends it. `idempotency_key` is stable for the post across every attempt."""

    post_id: str
    idempotency_key: str
    text: str
    media: tuple[Attachment, ...] = ()


class Receipt(msgspec.Struct, frozen=True, kw_only=True):
    """What the platform answered for a published post."""

    provider_post_id: str
    url: str | None = None


class Profile(msgspec.Struct, frozen=True, kw_only=True):
    """Who a connection posts as: `name` becomes the account handle `provider:name`."""

    name: str
    display_name: str


class PublishError(ProviderError):
    """A publish call that failed. `sent` is True when the request may have reached the platform (a timeout
    after the body was written, a dropped connection mid-answer): such a post is never retried blindly.
    `retry_after` is the platform's Retry-After in seconds, when it gave one."""

    def __init__(
        self,
        code: str,
        message: str,
        *,
        retryable: bool,
        sent: bool = False,
        retry_after: float | None = None,
        http_status: int | None = None,
    ) -> None:
        super().__init__(code, message, retryable=retryable)
        self.sent = sent
        self.retry_after = retry_after
        self.http_status = http_status


class Publisher(Protocol):
    """One social platform. Credentials are the connection's decrypted secrets (for example `{"botToken", "chatId"}`).

    Calls make one HTTP attempt each (the publishing worker owns retries and their schedule) and raise
    PublishError: retryable for 429/5xx/connection failures before sending, `sent=True` with code
    `outcome_unknown` when the outcome cannot be known, `account_unauthorized` for rejected credentials."""

    def verify(self, credentials: dict[str, str]) -> Profile:
        """Check the credentials with the platform and say who they post as."""
        ...

    def publish(self, credentials: dict[str, str], post: Outgoing) -> Receipt: ...

    def find(self, credentials: dict[str, str], post: Outgoing) -> Receipt | None:
        """Ask the platform whether `post` was published (for reconcile); None if it was not.
        Raises PublishError("reconcile_unsupported") where the platform cannot be asked."""
        ...

    def delete(self, credentials: dict[str, str], receipt: Receipt) -> None:
        """Delete a published post; PublishError("delete_unsupported") where the platform cannot."""
        ...


PageSource = Literal["json-ld", "opengraph", "html"]


class ProductPage(msgspec.Struct, frozen=True, kw_only=True):
    """What a product page says about its product. `url` is the final URL after redirects; `images` are
    absolute, deduplicated and at most 10; `source` lists where the fields came from, best first."""

    url: str
    title: str = ""
    description: str = ""
    price: str | None = None  # as the page writes it, e.g. "19.99"
    currency: str | None = None  # e.g. "EUR"
    brand: str | None = None
    images: tuple[str, ...] = ()
    source: tuple[PageSource, ...] = ()


class PageAnalyzer(Protocol):
    def analyze(self, url: str) -> ProductPage:
        """Fetch and read a product page. Raises ProviderError: `url_not_allowed`, `too_many_redirects`,
        `page_not_found`, `page_not_html`, `page_too_large`, or `page_unreachable` (retryable when a later
        try may succeed: timeouts, connection errors, 429 and 5xx)."""
        ...


class Sealer(Protocol):
    """Encrypts credentials at rest: what it seals for one `context` (a connection id) opens only there."""

    def seal(self, secrets: dict[str, str], *, context: str = "") -> str: ...

    def open(self, sealed: str, *, context: str = "") -> dict[str, str]: ...


# --- OAuth connections ---------------------------------------------------------------------------


class OAuthTokens(Protocol):
    """What a provider's token endpoint granted; `refresh_token` is None when it gave none."""

    @property
    def access_token(self) -> str: ...

    @property
    def refresh_token(self) -> str | None: ...

    @property
    def expires_at(self) -> datetime | None: ...


class OAuthClientPort(Protocol):
    """One provider's OAuth 2.0 client. Failures are ProviderErrors: `refresh_rejected` means the account
    must be reconnected, a retryable one that a later try may succeed."""

    @property
    def uses_pkce(self) -> bool:
        """Whether authorize_url needs a code_challenge and exchange its code_verifier."""
        ...

    def authorize_url(self, state: str, code_challenge: str | None, redirect_uri: str) -> str: ...

    def exchange(self, code: str, code_verifier: str | None, redirect_uri: str) -> OAuthTokens: ...

    def refresh(self, refresh_token: str) -> OAuthTokens:
        """New tokens; when the provider sends no new refresh token, the one given is kept."""
        ...

    def profile(self, access_token: str) -> Profile: ...


class KeyedLock(Protocol):
    """Mutual exclusion across processes: `hold(key)` yields True to the one holder, False to anyone else meanwhile."""

    def hold(self, key: UUID) -> AbstractContextManager[bool]: ...
