"""A campaign as a ZIP: its media files, `copy.csv` and `manifest.json`, produced as a stream of chunks.

`zipfile` writes to any object with `write` (no seeking needed: it then puts each entry's sizes in a
data descriptor after the entry), so the archive is handed out chunk by chunk as it is written and
never held whole in memory; one media file at a time is.
"""

from __future__ import annotations

import csv
import hashlib
import io
import zipfile
from collections.abc import Iterator
from typing import Any

import msgspec

from application.ports import MediaStore
from domain.campaign import Campaign

CHUNK = 64 * 1024
COPY_COLUMNS = ("variant_id", "platform", "hook", "body", "cta", "hashtags", "edited", "job_id")


class _Pipe(io.RawIOBase):
    """A write-only, non-seekable sink whose bytes are taken out as they come."""

    def __init__(self) -> None:
        super().__init__()
        self._chunks: list[bytes] = []
        self._written = 0

    def writable(self) -> bool:
        return True

    def write(self, data: Any) -> int:
        chunk = bytes(data)
        self._chunks.append(chunk)
        self._written += len(chunk)
        return len(chunk)

    def tell(self) -> int:
        return self._written

    def take(self) -> bytes:
        taken, self._chunks = b"".join(self._chunks), []
        return taken


def copy_csv(variants: list[dict[str, Any]]) -> bytes:
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(COPY_COLUMNS)
    for v in variants:
        writer.writerow(
            [v["id"], v["platform"] or "", v["hook"], v["body"], v["cta"], " ".join(v["hashtags"]), str(v["edited"]).lower(), v["jobId"]]
        )
    return out.getvalue().encode()


def media_path(asset: dict[str, Any]) -> str:
    return f"media/{asset['id']}-{asset['filename']}"


def export_chunks(campaign: Campaign, storage_keys: dict[str, str], media: MediaStore) -> Iterator[bytes]:
    """The ZIP's bytes, in pieces. `storage_keys` maps each asset id to where the media store keeps it."""
    pipe = _Pipe()
    files: list[dict[str, Any]] = []
    with zipfile.ZipFile(pipe, mode="w", compression=zipfile.ZIP_DEFLATED) as archive:  # type: ignore[arg-type]
        for asset in campaign.assets:
            content = media.read(storage_keys[asset["id"]])
            path = media_path(asset)
            # Already compressed images and videos are stored as they are.
            with archive.open(zipfile.ZipInfo(path), mode="w") as entry:
                for start in range(0, len(content), CHUNK):
                    entry.write(content[start : start + CHUNK])
                    yield pipe.take()
            files.append(
                {
                    "path": path,
                    "assetId": asset["id"],
                    "mime": asset["mime"],
                    "bytes": len(content),
                    "sha256": hashlib.sha256(content).hexdigest(),
                }
            )
        table = copy_csv(campaign.variants)
        archive.writestr("copy.csv", table)
        files.append({"path": "copy.csv", "mime": "text/csv", "bytes": len(table), "sha256": hashlib.sha256(table).hexdigest()})
        yield pipe.take()
        archive.writestr("manifest.json", msgspec.json.format(msgspec.json.encode(manifest(campaign, files)), indent=2))
    yield pipe.take()


def manifest(campaign: Campaign, files: list[dict[str, Any]]) -> dict[str, Any]:
    return {
        "campaign": {
            "id": str(campaign.id),
            "title": campaign.title,
            "productUrl": campaign.product_url,
            "platforms": campaign.platforms,
            "status": campaign.status,
            "contentHash": campaign.content_hash,
            "approvedHash": campaign.approved_hash,
        },
        "product": campaign.product,
        "variants": campaign.variants,
        "assets": [{k: v for k, v in a.items()} | {"path": media_path(a)} for a in campaign.assets],
        "files": files,
    }
