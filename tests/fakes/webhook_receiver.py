"""A customer's receiver for the `webhook` provider: takes posts, and answers Pressroom's reconcile look-up.

`POST /hooks/pressroom` takes a post (checking `Pressroom-Signature` when the receiver has a secret)
and answers `{"id", "url"}`; `GET /hooks/pressroom?idempotencyKey=` answers that post's `{"id", "url"}`
or 404, the contract documented in `adapters.publishers.webhook`. It does not dedupe: every POST
is a post, so tests see a double delivery as two.
"""

from __future__ import annotations

import hashlib
import hmac
import time
from typing import Any

from tests.fakes.servers import FakeServer, Reply, Seen

PATH = "/hooks/pressroom"


class FakeWebhookReceiver(FakeServer):
    """`hook_url` is the URL to connect. `answer_ids=False` makes it answer 204 with no body."""

    def __init__(self, secret: str | None = None, *, tolerance_seconds: int = 300) -> None:
        super().__init__()
        self.secret = secret
        self.tolerance_seconds = tolerance_seconds
        self.answer_ids = True
        self.posts: list[dict[str, Any]] = []  # {"id", "url", "idempotencyKey", "body"}

    @property
    def hook_url(self) -> str:
        return f"{self.url}{PATH}"

    def route(self, request: Seen) -> Reply:
        if request.path != PATH:
            return Reply.json({"error": "not found"}, 404)
        if self.secret is not None and not self.signature_valid(request):
            return Reply.json({"error": "invalid signature"}, 401)
        if request.method == "POST":
            return self._take(request)
        if request.method == "GET":
            return self._look_up(request.query.get("idempotencyKey", ""))
        return Reply.json({"error": "method not allowed"}, 405)

    def signature_valid(self, request: Seen) -> bool:
        """`Pressroom-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256(secret, "<t>.<body>")>`, recent enough."""
        fields = dict(part.split("=", 1) for part in request.headers.get("pressroom-signature", "").split(",") if "=" in part)
        timestamp, given = fields.get("t", ""), fields.get("v1", "")
        if not timestamp.isdigit() or abs(time.time() - int(timestamp)) > self.tolerance_seconds or self.secret is None:
            return False
        expected = hmac.new(self.secret.encode(), f"{timestamp}.".encode() + request.body, hashlib.sha256).hexdigest()
        return hmac.compare_digest(expected, given)

    def _take(self, request: Seen) -> Reply:
        if not request.headers.get("content-type", "").startswith("application/json"):
            return Reply.json({"error": "expected JSON"}, 415)
        body = request.json()
        with self._lock:
            number = len(self.posts) + 1
            post = {
                "id": f"rcv_{number}",
                "url": f"{self.url}/posts/{number}",
                "idempotencyKey": request.headers.get("idempotency-key"),
                "body": body,
            }
            self.posts.append(post)
        return Reply.json({"id": post["id"], "url": post["url"]}) if self.answer_ids else Reply(204)

    def _look_up(self, key: str) -> Reply:
        with self._lock:
            found = next((p for p in self.posts if key and p["idempotencyKey"] == key), None)
        if found is None:
            return Reply.json({"error": "no post with that idempotency key"}, 404)
        return Reply.json({"id": found["id"], "url": found["url"]})
