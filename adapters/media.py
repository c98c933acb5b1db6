"""Media files: where they are kept (the local filesystem by default) and the signed URLs that serve them."""

from __future__ import annotations

import hashlib
import hmac
import os
import struct
import tempfile
from pathlib import Path
from uuid import UUID


class LocalMediaStore:
    """Files under one directory, written atomically, so a reader never sees half a file."""

    def __init__(self, root: Path) -> None:
        self.root = root

    def inspect(self, content: bytes) -> tuple[str, int, int] | None:
        return sniff(content)

    def put(self, key: str, content: bytes) -> None:
        path = self.path(key)
        path.parent.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=path.parent, delete=False) as partial:
            partial.write(content)
        os.replace(partial.name, path)

    def read(self, key: str) -> bytes:
        return self.path(key).read_bytes()

    def path(self, key: str) -> Path:
        path = (self.root / key).resolve()
        if not path.is_relative_to(self.root.resolve()):
            raise ValueError(f"media key {key!r} leaves the media directory")
        return path


class MediaSigner:
    """Unguessable tokens in media URLs, so a URL can be handed to a social platform without a key."""

    def __init__(self, secret: str) -> None:
        self.secret = secret.encode()

    def token(self, asset_id: UUID) -> str:
        return hmac.new(self.secret, f"media:{asset_id}".encode(), hashlib.sha256).hexdigest()[:40]

    def url(self, asset_id: UUID, filename: str) -> str:
        return f"/media/{asset_id}/{self.token(asset_id)}/{filename}"

    def verify(self, asset_id: UUID, token: str) -> bool:
        return hmac.compare_digest(self.token(asset_id).encode(), token.encode())


def sniff(content: bytes) -> tuple[str, int, int] | None:
    """What a file really is, read from its bytes, never from what the client claims:
    (mime, width, height) for PNG, JPEG, WebP and MP4 (size unknown: 0×0); None for anything else."""
    if content.startswith(b"\x89PNG\r\n\x1a\n") and len(content) >= 24:
        width, height = struct.unpack(">II", content[16:24])
        return "image/png", width, height
    if content.startswith(b"\xff\xd8\xff"):
        return ("image/jpeg", *_jpeg_size(content))
    if content[:4] == b"RIFF" and content[8:12] == b"WEBP":
        return ("image/webp", *_webp_size(content))
    if content[4:8] == b"ftyp":
        return "video/mp4", 0, 0
    return None


def _jpeg_size(content: bytes) -> tuple[int, int]:
    index = 2
    while index + 9 < len(content):
        if content[index] != 0xFF:
            index += 1
            continue
        marker, length = content[index + 1], struct.unpack(">H", content[index + 2 : index + 4])[0]
        if 0xC0 <= marker <= 0xCF and marker not in (0xC4, 0xC8, 0xCC):
            height, width = struct.unpack(">HH", content[index + 5 : index + 9])
            return width, height
        index += 2 + length
    return 0, 0


def _webp_size(content: bytes) -> tuple[int, int]:
    chunk = content[12:16]
    if chunk == b"VP8X" and len(content) >= 30:
        return 1 + int.from_bytes(content[24:27], "little"), 1 + int.from_bytes(content[27:30], "little")
    if chunk == b"VP8 " and len(content) >= 30:
        width, height = struct.unpack("<HH", content[26:30])
        return width & 0x3FFF, height & 0x3FFF
    if chunk == b"VP8L" and len(content) >= 25:
        bits = int.from_bytes(content[21:25], "little")
        return (bits & 0x3FFF) + 1, ((bits >> 14) & 0x3FFF) + 1
    return 0, 0
