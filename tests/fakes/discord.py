"""A fake Discord API for channel webhooks: get, execute (JSON or multipart, `?wait=true`), delete a message.

Errors have Discord's shape `{"message", "code"}`: a wrong token is 401 code 50027, an unknown
webhook 404 code 10015, an unknown message 404 code 10008, an empty or too long message 400. A 429
carries the exact wait in the body's `retry_after` and a rounded-up `Retry-After` header.
"""

from __future__ import annotations

import itertools
import json
import math
import re
from datetime import UTC, datetime
from typing import Any

from tests.fakes.servers import FakeServer, Part, Reply, Seen

_ROUTE = re.compile(r"/api(?:/v\d+)?/webhooks/(\d+)/([^/]+)(?:/messages/(\d+))?")
CONTENT_LIMIT = 2000
ATTACHMENT_LIMIT = 10


def _error(message: str, code: int, status: int) -> Reply:
    return Reply.json({"message": message, "code": code}, status)


class FakeDiscord(FakeServer):
    """`webhook_url` is the URL a customer copies from the channel settings. `posts` holds the live messages."""

    def __init__(
        self, *, webhook_id: str = "1234567890123456789", token: str = "fake-webhook-token-abcdef", name: str = "Pressroom"
    ) -> None:
        super().__init__()
        self.webhook_id = webhook_id
        self.token = token
        self.name = name
        self.channel_id = "223456789012345678"
        self.guild_id = "323456789012345678"
        self.posts: list[dict[str, Any]] = []
        self.uploads: list[Part] = []
        self._ids = itertools.count(1_100_000_000_000_000_000)

    @property
    def webhook_url(self) -> str:
        return f"{self.url}/api/webhooks/{self.webhook_id}/{self.token}"

    def rate_limited_reply(self, retry_after: str) -> Reply:
        seconds = float(retry_after)
        body = {"message": "You are being rate limited.", "retry_after": seconds, "global": False}
        return Reply.json(body, 429, {"Retry-After": str(math.ceil(seconds)), "X-RateLimit-Scope": "shared"})

    def failure_reply(self, status: int) -> Reply:
        return _error(f"{status}: Internal Server Error", 0, status)

    def route(self, request: Seen) -> Reply:
        match = _ROUTE.fullmatch(request.path)
        if match is None:
            return _error("404: Not Found", 0, 404)
        webhook_id, token, message_id = match.groups()
        if webhook_id != self.webhook_id:
            return _error("Unknown Webhook", 10015, 404)
        if token != self.token:
            return _error("Invalid Webhook Token", 50027, 401)
        if message_id is None and request.method == "GET":
            return Reply.json(self._webhook())
        if message_id is None and request.method == "POST":
            return self._execute(request)
        if message_id is not None and request.method == "DELETE":
            return self._delete(message_id)
        return _error("405: Method Not Allowed", 0, 405)

    def _webhook(self) -> dict[str, Any]:
        return {
            "type": 1,
            "id": self.webhook_id,
            "name": self.name,
            "avatar": None,
            "channel_id": self.channel_id,
            "guild_id": self.guild_id,
            "application_id": None,
            "token": self.token,
        }

    def _execute(self, request: Seen) -> Reply:
        form = request.form()
        if form:
            if "payload_json" not in form:
                return _error("Cannot send an empty message", 50006, 400)
            payload = json.loads(form["payload_json"].text)
            files = [part for name, part in form.items() if re.fullmatch(r"files\[\d+\]", name)]
        else:
            payload, files = request.json(), []
        content = payload.get("content") or ""
        if len(content) > CONTENT_LIMIT:
            errors = {"content": {"_errors": [{"code": "BASE_TYPE_MAX_LENGTH", "message": f"Must be {CONTENT_LIMIT} or fewer in length."}]}}
            return Reply.json({"message": "Invalid Form Body", "code": 50035, "errors": errors}, 400)
        if len(files) > ATTACHMENT_LIMIT:
            return _error("Maximum number of attachments exceeded", 50013, 400)
        if not content and not files:
            return _error("Cannot send an empty message", 50006, 400)
        message_id = str(next(self._ids))
        attachments = [
            {
                "id": str(next(self._ids)),
                "filename": part.filename,
                "size": len(part.content),
                "content_type": part.content_type,
                "url": f"{self.url}/attachments/{self.channel_id}/{message_id}/{part.filename}",
            }
            for part in files
        ]
        message = {
            "id": message_id,
            "type": 0,
            "content": content,
            "channel_id": self.channel_id,
            "author": {"id": self.webhook_id, "username": self.name, "bot": True},
            "attachments": attachments,
            "embeds": [],
            "mentions": [],
            "timestamp": datetime.now(UTC).isoformat(),
            "webhook_id": self.webhook_id,
            "flags": 0,
        }
        with self._lock:
            self.posts.append(message)
            self.uploads.extend(files)
        return Reply.json(message) if request.query.get("wait") == "true" else Reply(204)

    def _delete(self, message_id: str) -> Reply:
        with self._lock:
            found = next((m for m in self.posts if m["id"] == message_id), None)
            if found is None:
                return _error("Unknown Message", 10008, 404)
            self.posts.remove(found)
        return Reply(204)
