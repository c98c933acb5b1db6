"""The `webhook` publisher: a POST of the post as JSON to the customer's URL, signed when a secret is set.

Credentials `{"url", "secret"?}`. The body is `{"id", "text", "media": [{"url", "mime"}], "idempotencyKey"}`
with the headers `Idempotency-Key: <key>` (the same for every attempt of a post) and, with a secret,
`Pressroom-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256(secret, "<t>.<body>")>`, the scheme of
Pressroom's own webhooks. Any 2xx is success; the receipt's id is the answer's `"id"` (else the
idempotency key) and its URL the answer's `"url"`.

The webhook-receiver contract for reconcile: a receiver that can answer whether it took a post
answers `GET <url>?idempotencyKey=<key>` (signed the same way over an empty body) with 200 and
`{"id", "url"?}` when it holds that post, and 404 when it does not. A post is never POSTed again to
find out. Receivers that do not implement the GET leave an unknown post for a person to settle.
Deleting a post is not part of the contract.
"""

from __future__ import annotations

import hashlib
import hmac
import time
from collections.abc import Callable
from typing import Any, Self

import httpx
import msgspec

from adapters.outbound_http import OutboundOptions, check_url
from adapters.publishers._http import PlatformHttp, required
from application.ports import Outgoing, Profile, ProviderError, PublishError, Receipt

PROVIDER = "webhook"
SIGNATURE_HEADER = "Pressroom-Signature"


def signature(secret: str, timestamp: int, body: bytes) -> str:
    """The `Pressroom-Signature` header value for `body` sent at `timestamp` (unix seconds)."""
    digest = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256).hexdigest()
    return f"t={timestamp},v1={digest}"


class WebhookPublisher:
    """`Publisher` that POSTs each post to a URL the customer runs."""

    def __init__(self, options: OutboundOptions | None = None, *, clock: Callable[[], float] = time.time) -> None:
        self._http = PlatformHttp(options, provider=PROVIDER)
        self._clock = clock

    def verify(self, credentials: dict[str, str]) -> Profile:
        (url,) = required(credentials, "url", provider=PROVIDER)
        try:
            check_url(url, allow_private=self._http.options.allow_private)
        except ProviderError as error:
            raise PublishError(error.code, error.message, retryable=False) from None
        except httpx.InvalidURL:
            raise PublishError("url_not_allowed", "webhook: the url is not a valid URL", retryable=False) from None
        except OSError:
            raise PublishError("provider_unavailable", f"webhook: the host of {_shown(url)} does not resolve", retryable=True) from None
        return Profile(name=httpx.URL(url).host, display_name=_shown(url))

    def publish(self, credentials: dict[str, str], post: Outgoing) -> Receipt:
        (url,) = required(credentials, "url", provider=PROVIDER)
        body = msgspec.json.encode(
            {
                "id": post.post_id,
                "text": post.text,
                "media": [{"url": m.url, "mime": m.mime} for m in post.media],
                "idempotencyKey": post.idempotency_key,
            }
        )
        headers = {"Content-Type": "application/json", "Idempotency-Key": post.idempotency_key, **self._signed(credentials, body)}
        response = self._http.send("POST", url, creates=True, headers=headers, content=body)
        return self._receipt(response, post)

    def find(self, credentials: dict[str, str], post: Outgoing) -> Receipt | None:
        (url,) = required(credentials, "url", provider=PROVIDER)
        response = self._http.exchange("GET", url, headers=self._signed(credentials, b""), params={"idempotencyKey": post.idempotency_key})
        if response.status_code == 404:
            return None
        if not response.is_success:
            raise self._http.error(response)
        return self._receipt(response, post)

    def delete(self, credentials: dict[str, str], receipt: Receipt) -> None:
        raise PublishError("delete_unsupported", "a webhook receiver cannot be asked to delete a post", retryable=False)

    def _signed(self, credentials: dict[str, str], body: bytes) -> dict[str, str]:
        secret = credentials.get("secret")
        return {SIGNATURE_HEADER: signature(secret, int(self._clock()), body)} if secret else {}

    def _receipt(self, response: httpx.Response, post: Outgoing) -> Receipt:
        try:
            answer: Any = msgspec.json.decode(response.content) if response.content.strip() else None
        except msgspec.DecodeError:
            answer = None  # a receiver may answer 2xx with any body
        found = answer if isinstance(answer, dict) else {}
        post_id, url = found.get("id"), found.get("url")
        return Receipt(
            provider_post_id=str(post_id) if post_id not in (None, "") else post.idempotency_key,
            url=url if isinstance(url, str) and url else None,
        )

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _shown(url: str) -> str:
    """The URL without query string or fragment (they often carry tokens)."""
    return str(httpx.URL(url).copy_with(query=None, fragment=None, userinfo=b""))
