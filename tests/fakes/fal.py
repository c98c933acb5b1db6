"""A fake fal queue: submit, status (IN_QUEUE → IN_PROGRESS → COMPLETED), result, cancel, and the image file."""

from __future__ import annotations

import uuid
from typing import Any

from tests.fakes.servers import FakeServer, Reply, Seen, tiny_png

IMAGE_SIZES = {
    "square_hd": (1024, 1024),
    "square": (512, 512),
    "portrait_4_3": (768, 1024),
    "portrait_16_9": (576, 1024),
    "landscape_4_3": (1024, 768),
    "landscape_16_9": (1024, 576),
}


class FakeFal(FakeServer):
    """Queue base for adapters: `fake.url`. A request completes on its `polls_to_finish`-th status poll."""

    def __init__(self, api_key: str = "fal-test-key") -> None:
        super().__init__()
        self.api_key = api_key
        self.polls_to_finish = 2
        self.never_finish = False
        self.nsfw = False
        self.jobs: dict[str, dict[str, Any]] = {}  # request id → {"app", "input", "polls", "cancelled"}

    def route(self, request: Seen) -> Reply:
        parts = request.path.strip("/").split("/")
        if parts[0] == "files" and request.method == "GET":
            return self._file(parts[-1])
        if request.headers.get("authorization") != f"Key {self.api_key}":
            return Reply.json({"detail": "Authentication is required to perform this action."}, 401)
        if "requests" in parts:
            job = self.jobs.get(parts[parts.index("requests") + 1])
            if job is None:
                return Reply.json({"detail": "Request not found"}, 404)
            if request.method == "GET" and parts[-1] == "status":
                return self._status(job)
            if request.method == "PUT" and parts[-1] == "cancel":
                job["cancelled"] = True
                return Reply.json({"status": "CANCELLATION_REQUESTED"}, 202)
            if request.method == "GET":
                return self._result(job)
        if request.method == "POST" and len(parts) >= 2:
            return self._submit("/".join(parts[:2]), request.json())
        return Reply.json({"detail": "Not Found"}, 404)

    def _submit(self, app: str, body: dict[str, Any]) -> Reply:
        if not isinstance(body.get("prompt"), str) or not body["prompt"]:
            return Reply.json({"detail": [{"loc": ["body", "prompt"], "msg": "field required", "type": "value_error.missing"}]}, 422)
        request_id = str(uuid.uuid4())
        self.jobs[request_id] = {"app": app, "input": body, "polls": 0, "cancelled": False}
        base = f"{self.url}/{app}/requests/{request_id}"
        return Reply.json(
            {
                "request_id": request_id,
                "status_url": f"{base}/status",
                "response_url": base,
                "cancel_url": f"{base}/cancel",
                "queue_position": 0,
            }
        )

    def _status(self, job: dict[str, Any]) -> Reply:
        job["polls"] += 1
        if not self.never_finish and job["polls"] >= self.polls_to_finish:
            return Reply.json({"status": "COMPLETED", "logs": None, "metrics": {"inference_time": 0.5}}, 200)
        if job["polls"] == 1:
            return Reply.json({"status": "IN_QUEUE", "queue_position": 0}, 202)
        return Reply.json({"status": "IN_PROGRESS", "logs": None}, 202)

    def _result(self, job: dict[str, Any]) -> Reply:
        size = job["input"].get("image_size", "landscape_4_3")
        width, height = (size["width"], size["height"]) if isinstance(size, dict) else IMAGE_SIZES[size]
        request_id = next(k for k, v in self.jobs.items() if v is job)
        image = {
            "url": f"{self.url}/files/{request_id}-{width}x{height}.png",
            "width": width,
            "height": height,
            "content_type": "image/png",
        }
        return Reply.json(
            {
                "images": [image],
                "timings": {"inference": 0.5},
                "seed": 42,
                "has_nsfw_concepts": [self.nsfw],
                "prompt": job["input"]["prompt"],
            }
        )

    def _file(self, name: str) -> Reply:
        width, height = (int(x) for x in name.rsplit("-", 1)[1].removesuffix(".png").split("x"))
        return Reply(200, tiny_png(width, height), {"Content-Type": "image/png"})
