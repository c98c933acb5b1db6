"""Opaque cursors for newest-first lists."""

from __future__ import annotations

import base64
import binascii

import msgspec


class InvalidCursor(ValueError):
    pass


def encode_cursor(*parts: object) -> str:
    return base64.urlsafe_b64encode(msgspec.json.encode([str(p) for p in parts])).decode().rstrip("=")


def decode_cursor(cursor: str, arity: int) -> list[str]:
    try:
        parts = msgspec.json.decode(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)), type=list[str])
    except (binascii.Error, msgspec.DecodeError, ValueError):
        raise InvalidCursor("This cursor is not one this API gave out.") from None
    if len(parts) != arity:
        raise InvalidCursor("This cursor is not one this API gave out.")
    return parts
