"""HeyGen avatar videos.

POST {base}/v2/video/generate (`X-Api-Key`) with one scene: the configured avatar speaking the
brief's script in a voice, at a dimension mapped from the aspect ratio → `{"data": {"video_id"}}`.
GET {base}/v1/video_status.get?video_id=… is polled while `data.status` is pending, waiting or
processing; `failed` is ProviderError("provider_failed", HeyGen's message, retryable=False), and a
video not completed within `deadline` seconds is ProviderError("provider_timeout", retryable=True).
`data.video_url` (a presigned URL) is then downloaded without the key.

`brief.voice_id` is looked up in `voices` (house names such as "male-1" → HeyGen voice ids); an id
not in the map is sent as it is, so HeyGen's own voice ids work too. HeyGen animates avatars
registered in the account, not pictures at a URL: a brief with `avatar_url` fails with
ProviderError("unsupported_input") rather than silently using the default avatar.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Self

import msgspec
import structlog

from adapters.outbound_http import Outbound, OutboundOptions, poll
from application.ports import MediaFile, ProviderError, VideoAspect, VideoBrief

log = structlog.get_logger()

DIMENSIONS_720P: dict[VideoAspect, tuple[int, int]] = {"9:16": (720, 1280), "1:1": (720, 720), "16:9": (1280, 720)}
RUNNING = frozenset({"pending", "waiting", "processing"})


class _VideoId(msgspec.Struct):
    video_id: str


class _Failure(msgspec.Struct):
    message: str | None = None
    detail: str | None = None
    code: int | str | None = None


class _Generated(msgspec.Struct):
    data: _VideoId | None = None
    error: _Failure | None = None


class _Video(msgspec.Struct):
    status: str
    video_url: str | None = None
    duration: float | None = None
    error: _Failure | None = None


class _Status(msgspec.Struct):
    data: _Video


class HeyGenVideoMaker:
    """`VideoMaker` on HeyGen's v2 video generation with one avatar scene."""

    def __init__(
        self,
        api_key: str,
        avatar_id: str,
        *,
        base_url: str = "https://api.heygen.com",
        voices: Mapping[str, str] | None = None,
        dimensions: Mapping[VideoAspect, tuple[int, int]] | None = None,
        poll_interval: float = 10.0,
        deadline: float = 1200.0,
        max_bytes: int = 500 * 1024 * 1024,
        options: OutboundOptions | None = None,
    ) -> None:
        self.avatar_id = avatar_id
        self.base_url = base_url.rstrip("/")
        self.voices = dict(voices or {})
        self.dimensions = dict(dimensions or DIMENSIONS_720P)
        self.poll_interval = poll_interval
        self.deadline = deadline
        self.max_bytes = max_bytes
        self._headers = {"X-Api-Key": api_key}
        self._http = Outbound(options or OutboundOptions(), provider="heygen")

    def make(self, brief: VideoBrief) -> MediaFile:
        if brief.avatar_url:
            raise ProviderError("unsupported_input", "HeyGen videos use the configured avatar; avatarUrl is not supported", retryable=False)
        width, height = self.dimensions[brief.aspect_ratio]
        payload = {
            "video_inputs": [
                {
                    "character": {"type": "avatar", "avatar_id": self.avatar_id, "avatar_style": "normal"},
                    "voice": {"type": "text", "input_text": brief.script, "voice_id": self.voices.get(brief.voice_id, brief.voice_id)},
                }
            ],
            "dimension": {"width": width, "height": height},
        }
        generated = self._http.call("POST", f"{self.base_url}/v2/video/generate", _Generated, headers=self._headers, json=payload)
        if generated.data is None:
            message = (generated.error and (generated.error.message or generated.error.detail)) or "no video_id in the answer"
            raise ProviderError("provider_rejected", f"heygen: {message[:300]}", retryable=False)
        video_id = generated.data.video_id
        video = poll(lambda: self._finished(video_id), interval=self.poll_interval, timeout=self.deadline, provider="heygen")
        if not video.video_url:
            raise ProviderError("provider_malformed_response", "heygen completed a video without a video_url", retryable=False)
        content, _ = self._http.download(video.video_url, max_bytes=self.max_bytes)
        if content[4:8] != b"ftyp":
            raise ProviderError("provider_malformed_response", "heygen's video is not an MP4 file", retryable=False)
        return MediaFile(content=content, mime="video/mp4", width=width, height=height, duration_seconds=video.duration)

    def _finished(self, video_id: str) -> _Video | None:
        status = self._http.call(
            "GET", f"{self.base_url}/v1/video_status.get", _Status, headers=self._headers, params={"video_id": video_id}
        )
        video = status.data
        if video.status == "completed":
            return video
        if video.status == "failed":
            error = video.error or _Failure()
            message = error.message or error.detail or "the video failed to render"
            raise ProviderError("provider_failed", f"heygen: {message[:300]}", retryable=False)
        if video.status not in RUNNING:
            log.warning("heygen_unknown_status", status=video.status[:40], video_id=video_id)
        return None

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
