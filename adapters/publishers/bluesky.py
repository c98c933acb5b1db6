"""The `bluesky` publisher: AT Protocol XRPC on the account's PDS (`api_base`, https://bsky.social by default).

Credentials `{"identifier", "appPassword"}` (a handle, DID or email, and an app password).
`com.atproto.server.createSession` gives `{accessJwt, refreshJwt, did, handle}`; sessions are kept
in memory per identifier. An access token answered with `ExpiredToken` is renewed with
`com.atproto.server.refreshSession` (or, when the refresh token is spent too, a new session) and the
call is made once more; a kept session the PDS no longer knows (401) is replaced the same way.

A post is `com.atproto.repo.createRecord` of an `app.bsky.feed.post` under a record key derived
from the post's idempotency key, so every attempt of a post names the same record:
`record_key` makes a valid TID (13 base32-sortable characters: a 53-bit microsecond time, here
within 2023–2024 chosen by a SHA-256 of the key, and a 10-bit clock id from the same hash).
Images are uploaded first with `com.atproto.repo.uploadBlob` (raw bytes) and embedded as
`app.bsky.embed.images` (at most 4); other media are unsupported here. Links and hashtags in the
text get rich-text facets (UTF-8 byte ranges), since Bluesky does not detect them itself.

A createRecord whose key exists already fails at the PDS (500 today, a named 4xx error in newer
versions): on a 4xx or 5xx the record is looked up, and if it exists the post was already published.
`find` is `com.atproto.repo.getRecord` (200 → the receipt, 400 RecordNotFound → None); delete is
`com.atproto.repo.deleteRecord` (which succeeds for a record already gone). The receipt's id is the
record's `at://` URI, its URL `https://bsky.app/profile/<handle>/post/<rkey>`. Rate limits answer 429
with `RateLimit-Reset` (unix seconds) rather than Retry-After; both are read.
"""

from __future__ import annotations

import hashlib
import re
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any, Self

import httpx
import msgspec

from adapters.outbound_http import OutboundOptions, retry_after_seconds
from adapters.publishers._http import PlatformHttp, json_object, required, unsupported_media
from application.ports import Outgoing, Profile, PublishError, Receipt

PROVIDER = "bluesky"
DEFAULT_API_BASE = "https://bsky.social"
POST_COLLECTION = "app.bsky.feed.post"
MAX_IMAGES = 4

TID_ALPHABET = "234567abcdefghijklmnopqrstuvwxyz"
TID_FLOOR_MICROS = 1_672_531_200_000_000  # 2023-01-01T00:00:00Z
TID_SPAN_MICROS = 1 << 45  # about 407 days

_LINK = re.compile(r"https?://[^\s<>\"]+")
_TAG = re.compile(r"(?<!\S)#([^\s#]+)")
_TRAILING = ".,;:!?'\")"
_UNAUTHORIZED = frozenset({"AuthenticationRequired", "InvalidToken", "ExpiredToken", "AccountTakedown", "AccountDeactivated"})


def record_key(idempotency_key: str) -> str:
    """A TID for the post with this idempotency key: the same key always gives the same record key."""
    digest = int.from_bytes(hashlib.sha256(idempotency_key.encode()).digest()[:8], "big")
    micros = TID_FLOOR_MICROS + (digest >> 10) % TID_SPAN_MICROS
    value = (micros << 10) | (digest & 0x3FF)
    return "".join(TID_ALPHABET[(value >> shift) & 31] for shift in range(60, -1, -5))


def facets(text: str) -> list[dict[str, Any]]:
    """Rich-text facets for the links and hashtags of `text`, as byte ranges of its UTF-8 encoding."""
    found: list[dict[str, Any]] = []

    def add(start: int, end: int, feature: dict[str, str]) -> None:
        index = {"byteStart": len(text[:start].encode()), "byteEnd": len(text[:end].encode())}
        found.append({"index": index, "features": [feature]})

    for match in _LINK.finditer(text):
        uri = match.group().rstrip(_TRAILING)
        add(match.start(), match.start() + len(uri), {"$type": "app.bsky.richtext.facet#link", "uri": uri})
    for match in _TAG.finditer(text):
        tag = match.group(1).rstrip(_TRAILING)
        if tag and not tag.isdigit() and len(tag) <= 64:
            add(match.start(), match.start(1) + len(tag), {"$type": "app.bsky.richtext.facet#tag", "tag": tag})
    return sorted(found, key=lambda facet: facet["index"]["byteStart"])


class _Session(msgspec.Struct, frozen=True, rename="camel"):
    access_jwt: str
    refresh_jwt: str
    did: str
    handle: str


class _Created(msgspec.Struct):
    uri: str


class _Found(msgspec.Struct):
    uri: str


class _Blob(msgspec.Struct):
    blob: dict[str, Any]


class _BlueskyHttp(PlatformHttp):
    def message(self, response: httpx.Response) -> str:
        body = json_object(response)
        error, text = body.get("error"), body.get("message")
        if isinstance(error, str) and isinstance(text, str) and text:
            return f"{error}: {text}"
        return super().message(response)

    def retry_after(self, response: httpx.Response) -> float | None:
        seconds = retry_after_seconds(response.headers.get("Retry-After"))
        if seconds is not None:
            return seconds
        reset = response.headers.get("RateLimit-Reset", "")
        return max(0.0, int(reset) - time.time()) if reset.isdigit() else None

    def unauthorized(self, response: httpx.Response) -> bool:
        return super().unauthorized(response) or _error_name(response) in _UNAUTHORIZED


class BlueskyPublisher:
    """`Publisher` over the AT Protocol, posting `app.bsky.feed.post` records."""

    def __init__(self, options: OutboundOptions | None = None, *, api_base: str = DEFAULT_API_BASE) -> None:
        self.api_base = api_base.rstrip("/")
        self._http = _BlueskyHttp(options, provider=PROVIDER)
        self._sessions: dict[str, _Session] = {}
        self._lock = threading.Lock()

    def verify(self, credentials: dict[str, str]) -> Profile:
        identifier, password = required(credentials, "identifier", "appPassword", provider=PROVIDER)
        session = self._create_session(identifier, password)
        return Profile(name=session.handle, display_name=session.handle)

    def publish(self, credentials: dict[str, str], post: Outgoing) -> Receipt:
        identifier, password = required(credentials, "identifier", "appPassword", provider=PROVIDER)
        if len(post.media) > MAX_IMAGES or any(not m.mime.startswith("image/") for m in post.media):
            raise unsupported_media(PROVIDER, f"a post carries up to {MAX_IMAGES} images and no other media")
        record: dict[str, Any] = {
            "$type": POST_COLLECTION,
            "text": post.text,
            "createdAt": datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z"),
        }
        if found_facets := facets(post.text):
            record["facets"] = found_facets
        if post.media:
            images = [{"alt": "", "image": self._upload(identifier, password, m.content, m.mime)} for m in post.media]
            record["embed"] = {"$type": "app.bsky.embed.images", "images": images}
        rkey = record_key(post.idempotency_key)

        def create(session: _Session) -> httpx.Response:
            payload = {"repo": session.did, "collection": POST_COLLECTION, "rkey": rkey, "record": record}
            return self._http.exchange(
                "POST", self._xrpc("com.atproto.repo.createRecord"), creates=True, headers=_auth(session), json=payload
            )

        session, response = self._authed(identifier, password, create)
        if response.is_success:
            created = self._http.decode(response, _Created, creates=True)
            return Receipt(provider_post_id=created.uri, url=_post_url(session.handle, rkey))
        failure = self._http.error(response)
        if failure.code in ("provider_rejected", "provider_unavailable"):  # maybe the record exists: an earlier attempt made it
            try:
                existing = self._get_record(session, rkey)
            except PublishError:
                raise failure from None
            if existing is not None:
                return existing
        raise failure

    def find(self, credentials: dict[str, str], post: Outgoing) -> Receipt | None:
        identifier, password = required(credentials, "identifier", "appPassword", provider=PROVIDER)
        return self._get_record(self._session(identifier, password), record_key(post.idempotency_key))

    def delete(self, credentials: dict[str, str], receipt: Receipt) -> None:
        identifier, password = required(credentials, "identifier", "appPassword", provider=PROVIDER)
        parts = receipt.provider_post_id.removeprefix("at://").split("/")
        if not receipt.provider_post_id.startswith("at://") or len(parts) != 3 or parts[1] != POST_COLLECTION:
            raise PublishError("provider_rejected", "bluesky: the post id is not the at:// URI of a post", retryable=False)

        def delete(session: _Session) -> httpx.Response:
            payload = {"repo": session.did, "collection": POST_COLLECTION, "rkey": parts[2]}
            return self._http.exchange("POST", self._xrpc("com.atproto.repo.deleteRecord"), headers=_auth(session), json=payload)

        _, response = self._authed(identifier, password, delete)
        if not response.is_success:
            raise self._http.error(response)

    # --- records and blobs -----------------------------------------------------------------------

    def _get_record(self, session: _Session, rkey: str) -> Receipt | None:
        params = {"repo": session.did, "collection": POST_COLLECTION, "rkey": rkey}
        response = self._http.exchange("GET", self._xrpc("com.atproto.repo.getRecord"), params=params)
        if response.status_code == 400 and _error_name(response) == "RecordNotFound":
            return None
        if not response.is_success:
            raise self._http.error(response)
        found = self._http.decode(response, _Found)
        return Receipt(provider_post_id=found.uri, url=_post_url(session.handle, rkey))

    def _upload(self, identifier: str, password: str, content: bytes, mime: str) -> dict[str, Any]:
        def upload(session: _Session) -> httpx.Response:
            headers = {**_auth(session), "Content-Type": mime}
            return self._http.exchange("POST", self._xrpc("com.atproto.repo.uploadBlob"), headers=headers, content=content)

        _, response = self._authed(identifier, password, upload)
        if not response.is_success:
            raise self._http.error(response)
        return self._http.decode(response, _Blob).blob

    # --- sessions --------------------------------------------------------------------------------

    def _authed(self, identifier: str, password: str, call: Callable[[_Session], httpx.Response]) -> tuple[_Session, httpx.Response]:
        """`call` with the kept session; once more with a renewed one when the PDS refuses the kept one."""
        kept = self._kept(identifier)
        session = kept or self._create_session(identifier, password)
        response = call(session)
        if _error_name(response) == "ExpiredToken":
            session = self._refresh_session(identifier, session) or self._create_session(identifier, password)
            response = call(session)
        elif response.status_code == 401 and kept is not None:
            session = self._create_session(identifier, password)
            response = call(session)
        return session, response

    def _session(self, identifier: str, password: str) -> _Session:
        return self._kept(identifier) or self._create_session(identifier, password)

    def _kept(self, identifier: str) -> _Session | None:
        with self._lock:
            return self._sessions.get(identifier)

    def _keep(self, identifier: str, session: _Session) -> _Session:
        with self._lock:
            self._sessions[identifier] = session
        return session

    def _create_session(self, identifier: str, password: str) -> _Session:
        body = {"identifier": identifier, "password": password}
        response = self._http.send("POST", self._xrpc("com.atproto.server.createSession"), json=body)
        return self._keep(identifier, self._http.decode(response, _Session))

    def _refresh_session(self, identifier: str, session: _Session) -> _Session | None:
        """The renewed session, or None when the refresh token is refused too (expired, revoked)."""
        headers = {"Authorization": f"Bearer {session.refresh_jwt}"}
        response = self._http.exchange("POST", self._xrpc("com.atproto.server.refreshSession"), headers=headers)
        if response.status_code in (400, 401):
            return None
        if not response.is_success:
            raise self._http.error(response)
        return self._keep(identifier, self._http.decode(response, _Session))

    def _xrpc(self, method: str) -> str:
        return f"{self.api_base}/xrpc/{method}"

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _auth(session: _Session) -> dict[str, str]:
    return {"Authorization": f"Bearer {session.access_jwt}"}


def _post_url(handle: str, rkey: str) -> str:
    return f"https://bsky.app/profile/{handle}/post/{rkey}"


def _error_name(response: httpx.Response) -> str | None:
    if response.is_success:
        return None
    name = json_object(response).get("error")
    return name if isinstance(name, str) else None
