"""fal.ai images through its queue API.

POST {queue_base}/{model_id} (`Authorization: Key <key>`) queues a request and answers its
`request_id`, `status_url`, `response_url` and `cancel_url`; GET status_url says IN_QUEUE,
IN_PROGRESS or COMPLETED; GET response_url then gives the model's output,
`{"images": [{"url", "width", "height", "content_type"}], …}`, and the image itself is downloaded
from its URL without the key. A request not COMPLETED within `deadline` seconds is cancelled (best
effort) and fails as ProviderError("provider_timeout", retryable=True). The sizes are fal's named
`image_size` presets, understood by the FLUX family and most text-to-image models; `extra_input`
adds model-specific fields (guidance, steps, safety checker…).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Annotated, Any, Self

import msgspec
import structlog
from msgspec import Meta

from adapters.imaging import image_prompt, png_size
from adapters.outbound_http import Outbound, OutboundOptions, poll
from application.ports import ImageAspect, ImageBrief, MediaFile, ProviderError

log = structlog.get_logger()

FAL_IMAGE_SIZES: dict[ImageAspect, str] = {
    "1:1": "square_hd",  # 1024x1024
    "9:16": "portrait_16_9",  # 576x1024
    "16:9": "landscape_16_9",  # 1024x576
    "4:5": "portrait_4_3",  # 768x1024, the nearest preset
}
RUNNING = frozenset({"IN_QUEUE", "IN_PROGRESS"})
ENDED_BADLY = frozenset({"FAILED", "CANCELED", "CANCELLED", "ERROR"})


class _Queued(msgspec.Struct):
    request_id: str
    status_url: str
    response_url: str
    cancel_url: str | None = None


class _Status(msgspec.Struct):
    status: str
    error: str | None = None


class _Image(msgspec.Struct):
    url: str
    width: int | None = None
    height: int | None = None
    content_type: str | None = None


class _Result(msgspec.Struct):
    images: Annotated[list[_Image], Meta(min_length=1)]
    has_nsfw_concepts: list[bool] | None = None


class FalImageMaker:
    """`ImageMaker` on a fal text-to-image model, one queued request per image."""

    def __init__(
        self,
        api_key: str,
        model_id: str = "fal-ai/flux/dev",
        *,
        queue_base: str = "https://queue.fal.run",
        image_sizes: Mapping[ImageAspect, str | dict[str, int]] | None = None,
        extra_input: Mapping[str, Any] | None = None,
        poll_interval: float = 1.0,
        deadline: float = 300.0,
        max_bytes: int = 25 * 1024 * 1024,
        options: OutboundOptions | None = None,
    ) -> None:
        self.model_id = model_id.strip("/")
        self.queue_base = queue_base.rstrip("/")
        self.image_sizes: dict[ImageAspect, str | dict[str, int]] = dict(image_sizes or FAL_IMAGE_SIZES)
        self.extra_input = dict(extra_input or {})
        self.poll_interval = poll_interval
        self.deadline = deadline
        self.max_bytes = max_bytes
        self._headers = {"Authorization": f"Key {api_key}"}
        self._http = Outbound(options or OutboundOptions(), provider="fal")

    def make(self, brief: ImageBrief, index: int) -> MediaFile:
        payload = {**self.extra_input, "prompt": image_prompt(brief), "image_size": self.image_sizes[brief.aspect_ratio], "num_images": 1}
        queued = self._http.call("POST", f"{self.queue_base}/{self.model_id}", _Queued, headers=self._headers, json=payload)
        try:
            poll(lambda: self._finished(queued), interval=self.poll_interval, timeout=self.deadline, provider="fal")
        except ProviderError:
            self._cancel(queued)
            raise
        result = self._http.call("GET", queued.response_url, _Result, headers=self._headers)
        if result.has_nsfw_concepts and result.has_nsfw_concepts[0]:
            raise ProviderError("content_filtered", "fal's safety checker blanked the image", retryable=False)
        return self._fetch(result.images[0])

    def _finished(self, queued: _Queued) -> bool | None:
        state = self._http.call("GET", queued.status_url, _Status, headers=self._headers)
        if state.status == "COMPLETED":
            if state.error:
                raise ProviderError("provider_failed", f"fal: {state.error[:300]}", retryable=False)
            return True
        if state.status in ENDED_BADLY:
            raise ProviderError("provider_failed", f"fal request {queued.request_id} ended {state.status}", retryable=False)
        if state.status not in RUNNING:
            log.warning("fal_unknown_status", status=state.status[:40], request_id=queued.request_id)
        return None

    def _cancel(self, queued: _Queued) -> None:
        """Stop paying for a request we gave up on; best effort, one attempt."""
        if not queued.cancel_url:
            return
        url = queued.cancel_url
        try:
            self._http.send(lambda c: c.put(url, headers=self._headers), attempts=1)
        except ProviderError as error:
            log.info("fal_cancel_failed", request_id=queued.request_id, code=error.code)

    def _fetch(self, image: _Image) -> MediaFile:
        content, header_type = self._http.download(image.url, max_bytes=self.max_bytes)
        mime = (image.content_type or header_type.split(";")[0]).strip().lower()
        width, height = image.width, image.height
        if width is None or height is None:
            try:
                width, height = png_size(content)
                mime = mime or "image/png"
            except ValueError:
                width = height = None
        if not mime.startswith("image/") or not width or not height or not content:
            raise ProviderError("provider_malformed_response", "fal's image has no image type, size or bytes", retryable=False)
        return MediaFile(content=content, mime=mime, width=width, height=height)

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
