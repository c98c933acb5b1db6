"""Asset: one stored media file, made by a job or uploaded by a client."""

from __future__ import annotations

from typing import Any, Literal
from uuid import UUID

from domain.base import WorkspaceAggregate
from domain.errors import DomainError

AssetType = Literal["image", "video"]
UPLOAD_LIMIT_BYTES = 10 * 1024 * 1024
MIME_TYPES: dict[str, AssetType] = {"image/png": "image", "image/jpeg": "image", "image/webp": "image", "video/mp4": "video"}


class Asset(WorkspaceAggregate):
    FAMILY = "jobs"
    EVENT_PREFIX = "asset"

    class Stored(WorkspaceAggregate.Created):
        job_id: UUID | None
        campaign_id: UUID | None
        kind: str
        mime: str
        width: int
        height: int
        size: int
        filename: str
        storage_key: str
        duration_seconds: float | None

    def __init__(
        self,
        workspace_id: UUID,
        job_id: UUID | None,
        campaign_id: UUID | None,
        kind: str,
        mime: str,
        width: int,
        height: int,
        size: int,
        filename: str,
        storage_key: str,
        duration_seconds: float | None,
    ) -> None:
        self.workspace_id = workspace_id
        self.job_id = job_id
        self.campaign_id = campaign_id
        self.kind = kind
        self.mime = mime
        self.width = width
        self.height = height
        self.size = size
        self.filename = filename
        self.storage_key = storage_key
        self.duration_seconds = duration_seconds

    @classmethod
    def store(
        cls,
        asset_id: UUID,
        workspace_id: UUID,
        *,
        mime: str,
        width: int,
        height: int,
        size: int,
        filename: str,
        storage_key: str,
        job_id: UUID | None = None,
        campaign_id: UUID | None = None,
        duration_seconds: float | None = None,
    ) -> Asset:
        kind = MIME_TYPES.get(mime)
        if kind is None:
            raise UnsupportedMedia(f"{mime} is not a supported media type; use one of {', '.join(MIME_TYPES)}.")
        if size > UPLOAD_LIMIT_BYTES:
            raise MediaTooLarge(f"Media files are at most {UPLOAD_LIMIT_BYTES // (1024 * 1024)} MB.")
        return cls._create(
            cls.Stored,
            id=asset_id,
            workspace_id=workspace_id,
            job_id=job_id,
            campaign_id=campaign_id,
            kind=kind,
            mime=mime,
            width=width,
            height=height,
            size=size,
            filename=filename,
            storage_key=storage_key,
            duration_seconds=duration_seconds,
        )

    def summary(self) -> dict[str, Any]:
        """What a job keeps of each output it produced."""
        return {
            "id": str(self.id),
            "type": self.kind,
            "mime": self.mime,
            "width": self.width,
            "height": self.height,
            "bytes": self.size,
            "filename": self.filename,
        }


class UnsupportedMedia(DomainError):
    code = "unsupported_media"


class MediaTooLarge(DomainError):
    code = "too_large"
