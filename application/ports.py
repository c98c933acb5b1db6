"""Ports: what the application needs from the outside world, as Protocols."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal, Protocol

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
