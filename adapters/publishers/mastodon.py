"""The `mastodon` publisher: the Mastodon REST API of the customer's instance.

Credentials `{"instanceUrl", "accessToken"}` (a token with the `write:statuses`, `write:media` and
`read:accounts` scopes). Calls carry `Authorization: Bearer <token>`. Media go first, each
`POST /api/v2/media` (multipart `file`): 200 when processed, 202 while the instance still processes
it (video, large images), in which case `GET /api/v1/media/{id}` is polled (206 while processing)
until it is ready, for at most `media_wait` seconds, because a status with unprocessed media is
refused. Then `POST /api/v1/statuses {status, media_ids?}` with `Idempotency-Key: <key>`.

Mastodon remembers an Idempotency-Key per account for one hour and answers a repeated POST with
the status the first one created, never a second status. That is how `find` works: it sends the
post again, same key. Within the hour of the lost attempt it answers that attempt's status, or,
if that attempt never arrived, publishes the post now; either way the post is settled exactly once.
After the hour the key is forgotten and a repeat could post twice: reconcile a Mastodon post within
the hour of its last attempt (re-uploaded media of a repeat that finds the old status are left
unattached; the instance deletes them).

verify is `GET /api/v1/accounts/verify_credentials`; the account name is `acct@instance host`, the
fediverse handle. delete is `DELETE /api/v1/statuses/{id}`, a status already gone counting as
deleted. Mastodon's rate limiter answers 429 without Retry-After but with `X-RateLimit-Reset` (an
ISO 8601 time), which is used.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime
from typing import Self

import httpx
import msgspec

from adapters.outbound_http import OutboundOptions, retry_after_seconds
from adapters.publishers._http import PlatformHttp, required
from application.ports import Attachment, Outgoing, Profile, PublishError, Receipt

PROVIDER = "mastodon"


class _Media(msgspec.Struct):
    id: str


class _Status(msgspec.Struct):
    id: str
    uri: str | None = None
    url: str | None = None


class _Account(msgspec.Struct):
    id: str
    username: str
    acct: str
    display_name: str = ""


class _MastodonHttp(PlatformHttp):
    def retry_after(self, response: httpx.Response) -> float | None:
        seconds = retry_after_seconds(response.headers.get("Retry-After"))
        if seconds is not None:
            return seconds
        try:
            reset = datetime.fromisoformat(response.headers.get("X-RateLimit-Reset", ""))
        except ValueError:
            return None
        if reset.tzinfo is None:
            reset = reset.replace(tzinfo=UTC)
        return max(0.0, (reset - datetime.now(UTC)).total_seconds())


class MastodonPublisher:
    """`Publisher` over the Mastodon API of any instance."""

    def __init__(self, options: OutboundOptions | None = None, *, media_wait: float = 60.0, media_poll_interval: float = 1.0) -> None:
        self.media_wait = media_wait
        self.media_poll_interval = media_poll_interval
        self._http = _MastodonHttp(options, provider=PROVIDER)

    def verify(self, credentials: dict[str, str]) -> Profile:
        base, auth = _connection(credentials)
        account = self._http.decode(self._http.send("GET", f"{base}/api/v1/accounts/verify_credentials", headers=auth), _Account)
        handle = account.acct if "@" in account.acct else f"{account.acct}@{httpx.URL(base).host}"
        return Profile(name=handle, display_name=account.display_name or account.acct)

    def publish(self, credentials: dict[str, str], post: Outgoing) -> Receipt:
        base, auth = _connection(credentials)
        media_ids = [self._upload(base, auth, file) for file in post.media]
        payload: dict[str, object] = {"status": post.text}
        if media_ids:
            payload["media_ids"] = media_ids
        headers = {**auth, "Idempotency-Key": post.idempotency_key}
        response = self._http.send("POST", f"{base}/api/v1/statuses", creates=True, headers=headers, json=payload)
        status = self._http.decode(response, _Status, creates=True)
        return Receipt(provider_post_id=status.id, url=status.url or status.uri)

    def find(self, credentials: dict[str, str], post: Outgoing) -> Receipt | None:
        """The status the post's Idempotency-Key created, by sending it again (see the module's note on the hour)."""
        return self.publish(credentials, post)

    def delete(self, credentials: dict[str, str], receipt: Receipt) -> None:
        base, auth = _connection(credentials)
        if not receipt.provider_post_id.isalnum():
            raise PublishError("provider_rejected", "mastodon: a status id is alphanumeric", retryable=False)
        response = self._http.exchange("DELETE", f"{base}/api/v1/statuses/{receipt.provider_post_id}", headers=auth)
        if response.status_code == 404:
            return  # already deleted
        if not response.is_success:
            raise self._http.error(response)

    def _upload(self, base: str, auth: dict[str, str], file: Attachment) -> str:
        response = self._http.send("POST", f"{base}/api/v2/media", headers=auth, files={"file": (file.filename, file.content, file.mime)})
        media = self._http.decode(response, _Media)
        if response.status_code == 202:
            self._wait_until_processed(base, auth, media.id)
        return media.id

    def _wait_until_processed(self, base: str, auth: dict[str, str], media_id: str) -> None:
        deadline = time.monotonic() + self.media_wait
        while True:
            if self._http.send("GET", f"{base}/api/v1/media/{media_id}", headers=auth).status_code == 200:
                return
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise PublishError(
                    "provider_timeout", f"mastodon did not finish processing the media within {self.media_wait:g} s", retryable=True
                )
            time.sleep(min(self.media_poll_interval, remaining))

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _connection(credentials: dict[str, str]) -> tuple[str, dict[str, str]]:
    instance, token = required(credentials, "instanceUrl", "accessToken", provider=PROVIDER)
    try:
        url = httpx.URL(instance if "://" in instance else f"https://{instance}")
    except httpx.InvalidURL:
        raise PublishError("url_not_allowed", "mastodon: instanceUrl is not a valid URL", retryable=False) from None
    return f"{url.scheme}://{url.netloc.decode('ascii')}", {"Authorization": f"Bearer {token}"}
