"""A fake Mastodon instance: statuses (with Idempotency-Key), media v2 (async processing), verify_credentials.

`POST /api/v1/statuses` remembers each `Idempotency-Key` for `idempotency_ttl` seconds (an hour, as
Mastodon does) and answers a repeat with the status the key made, never a second one. Images are
processed at once (200); videos answer 202 and `GET /api/v1/media/{id}` answers 206 for
`processing_polls` polls, then 200; a status with unprocessed media is refused with 422. A wrong
token is 401 `{"error": "The access token is invalid"}`. A 429 carries `X-RateLimit-Reset` (ISO 8601)
and no Retry-After, like Mastodon's rate limiter.
"""

from __future__ import annotations

import html
import itertools
import re
import time
from datetime import UTC, datetime, timedelta
from typing import Any

from tests.fakes.servers import FakeServer, Reply, Seen

TEXT_LIMIT = 500
MEDIA_LIMIT = 4


def _error(message: str, status: int) -> Reply:
    return Reply.json({"error": message}, status)


class FakeMastodon(FakeServer):
    """`instance_url` is the base URL for the adapter. `posts` holds the live statuses."""

    def __init__(self, *, access_token: str = "mastodon-test-token", idempotency_ttl: float = 3600.0, processing_polls: int = 1) -> None:
        super().__init__()
        self.access_token = access_token
        self.idempotency_ttl = idempotency_ttl
        self.processing_polls = processing_polls
        self.account = {"id": "109000000000000001", "username": "alice", "acct": "alice", "display_name": "Alice Example"}
        self.posts: list[dict[str, Any]] = []
        self.media: dict[str, dict[str, Any]] = {}
        self._keys: dict[str, tuple[str, float]] = {}  # Idempotency-Key → (status id, when)
        self._ids = itertools.count(110_000_000_000_000_001)

    @property
    def instance_url(self) -> str:
        return self.url

    def rate_limited_reply(self, retry_after: str) -> Reply:
        reset = datetime.now(UTC) + timedelta(seconds=float(retry_after))
        headers = {"X-RateLimit-Limit": "300", "X-RateLimit-Remaining": "0", "X-RateLimit-Reset": reset.isoformat(timespec="microseconds")}
        return Reply.json({"error": "Too many requests"}, 429, headers)

    def failure_reply(self, status: int) -> Reply:
        return _error("We're sorry, but something went wrong on our end.", status)

    def route(self, request: Seen) -> Reply:
        if request.headers.get("authorization") != f"Bearer {self.access_token}":
            return _error("The access token is invalid", 401)
        route = (request.method, request.path)
        if route == ("GET", "/api/v1/accounts/verify_credentials"):
            return Reply.json({**self.account, "url": f"{self.url}/@{self.account['username']}", "note": "", "bot": False})
        if route == ("POST", "/api/v1/statuses"):
            return self._post_status(request)
        if route == ("POST", "/api/v2/media"):
            return self._upload(request)
        if match := re.fullmatch(r"/api/v1/media/(\d+)", request.path):
            return self._media(match.group(1)) if request.method == "GET" else _error("Record not found", 404)
        if (match := re.fullmatch(r"/api/v1/statuses/(\d+)", request.path)) and request.method == "DELETE":
            return self._delete(match.group(1))
        return _error("Record not found", 404)

    def _post_status(self, request: Seen) -> Reply:
        key = request.headers.get("idempotency-key")
        with self._lock:
            remembered = self._keys.get(key) if key else None
            if remembered is not None and time.monotonic() - remembered[1] < self.idempotency_ttl:
                found = next((s for s in self.posts if s["id"] == remembered[0]), None)
                return Reply.json(found) if found is not None else _error("Record not found", 404)
        body = request.json() if request.body else {}
        text = body.get("status") or ""
        media_ids = [str(m) for m in body.get("media_ids") or []]
        if not text.strip() and not media_ids:
            return _error("Validation failed: Text can't be blank", 422)
        if len(text) > TEXT_LIMIT:
            return _error(f"Validation failed: Text character limit of {TEXT_LIMIT} exceeded", 422)
        if len(media_ids) > MEDIA_LIMIT:
            return _error(f"Validation failed: Media attachments: Cannot attach more than {MEDIA_LIMIT} files", 422)
        attached = [self.media[m] for m in media_ids if m in self.media]  # Mastodon ignores ids it does not know
        if any(m["polls_left"] > 0 for m in attached):
            return _error("Cannot attach files that have not finished processing. Try again in a moment!", 422)
        status_id = str(next(self._ids))
        username = self.account["username"]
        status = {
            "id": status_id,
            "created_at": datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z"),
            "visibility": "public",
            "content": f"<p>{html.escape(text)}</p>",
            "uri": f"{self.url}/users/{username}/statuses/{status_id}",
            "url": f"{self.url}/@{username}/{status_id}",
            "media_attachments": [self._media_json(m) for m in attached],
            "account": self.account,
        }
        with self._lock:
            self.posts.append(status)
            if key:
                self._keys[key] = (status_id, time.monotonic())
        return Reply.json(status)

    def _upload(self, request: Seen) -> Reply:
        file = request.form().get("file")
        if file is None or not file.content:
            return _error("Validation failed: File can't be blank", 422)
        kind = file.content_type.split("/", 1)[0]
        if kind not in ("image", "video"):
            return _error("Validation failed: File content type is invalid", 422)
        media_id = str(next(self._ids))
        media = {"id": media_id, "type": kind, "file": file, "polls_left": self.processing_polls if kind == "video" else 0}
        with self._lock:
            self.media[media_id] = media
        return Reply.json(self._media_json(media), 202 if media["polls_left"] else 200)

    def _media(self, media_id: str) -> Reply:
        with self._lock:
            media = self.media.get(media_id)
            if media is None:
                return _error("Record not found", 404)
            if media["polls_left"] > 0:
                media["polls_left"] -= 1
                return Reply.json({**self._media_json(media), "url": None}, 206)
        return Reply.json(self._media_json(media))

    def _media_json(self, media: dict[str, Any]) -> dict[str, Any]:
        ready = media["polls_left"] == 0
        return {
            "id": media["id"],
            "type": media["type"],
            "url": f"{self.url}/system/media/{media['id']}" if ready else None,
            "preview_url": f"{self.url}/system/media/{media['id']}/small",
            "description": None,
        }

    def _delete(self, status_id: str) -> Reply:
        with self._lock:
            found = next((s for s in self.posts if s["id"] == status_id), None)
            if found is None:
                return _error("Record not found", 404)
            self.posts.remove(found)
        return Reply.json({**found, "text": html.unescape(found["content"][3:-4])})
