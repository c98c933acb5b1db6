"""A fake HeyGen: POST /v2/video/generate, GET /v1/video_status.get (waiting → processing → completed), the MP4."""

from __future__ import annotations

import uuid
from typing import Any

from tests.fakes.servers import FakeServer, Reply, Seen, tiny_mp4


def _invalid(message: str, status: int = 400) -> Reply:
    return Reply.json({"error": {"code": "invalid_parameter", "message": message}, "data": None}, status)


class FakeHeyGen(FakeServer):
    """Base URL for adapters: `fake.url`. A video completes on its `polls_to_finish`-th status poll."""

    def __init__(self, api_key: str = "heygen-test-key") -> None:
        super().__init__()
        self.api_key = api_key
        self.polls_to_finish = 2
        self.never_finish = False
        self.fail_with: str | None = None  # render failure message
        self.duration = 7.25
        self.videos: dict[str, dict[str, Any]] = {}

    def route(self, request: Seen) -> Reply:
        if request.method == "GET" and request.path.startswith("/media/"):
            return Reply(200, tiny_mp4(), {"Content-Type": "video/mp4"})
        if request.headers.get("x-api-key") != self.api_key:
            return Reply.json({"error": {"code": "authentication_failed", "message": "Invalid API key"}, "data": None}, 401)
        if (request.method, request.path) == ("POST", "/v2/video/generate"):
            return self._generate(request.json())
        if (request.method, request.path) == ("GET", "/v1/video_status.get"):
            return self._status(request.query.get("video_id", ""))
        return Reply.json({"error": {"code": "not_found", "message": "Not found"}, "data": None}, 404)

    def _generate(self, body: dict[str, Any]) -> Reply:
        inputs = body.get("video_inputs")
        if not isinstance(inputs, list) or not 1 <= len(inputs) <= 50:
            return _invalid("video_inputs must hold 1 to 50 scenes")
        scene = inputs[0]
        character, voice = scene.get("character", {}), scene.get("voice", {})
        if character.get("type") != "avatar" or not character.get("avatar_id"):
            return _invalid("character.avatar_id is required")
        if voice.get("type") != "text" or not voice.get("input_text") or not voice.get("voice_id"):
            return _invalid("voice.input_text and voice.voice_id are required")
        dimension = body.get("dimension", {})
        if not all(isinstance(dimension.get(k), int) and 128 <= dimension[k] <= 4096 for k in ("width", "height")):
            return _invalid("dimension.width and dimension.height must be integers")
        video_id = uuid.uuid4().hex
        self.videos[video_id] = {"polls": 0, "input": body}
        return Reply.json({"error": None, "data": {"video_id": video_id}})

    def _status(self, video_id: str) -> Reply:
        video = self.videos.get(video_id)
        if video is None:
            return Reply.json({"code": 400, "message": "Video not found", "data": None}, 404)
        video["polls"] += 1
        data: dict[str, Any] = {
            "id": video_id,
            "status": "waiting" if video["polls"] == 1 else "processing",
            "video_url": None,
            "error": None,
        }
        if not self.never_finish and video["polls"] >= self.polls_to_finish:
            if self.fail_with:
                data |= {"status": "failed", "error": {"code": 40119, "message": self.fail_with, "detail": "render failed"}}
            else:
                data |= {
                    "status": "completed",
                    "video_url": f"{self.url}/media/{video_id}.mp4?Expires=1700000000&Signature=abc",
                    "thumbnail_url": f"{self.url}/media/{video_id}.jpg",
                    "duration": self.duration,
                    "callback_id": None,
                }
        return Reply.json({"code": 100, "data": data, "message": "Success"})
