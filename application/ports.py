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


class Clock(Protocol):
    def now(self) -> datetime: ...
