"""A fake Bluesky PDS: XRPC sessions, uploadBlob, createRecord/getRecord/deleteRecord for one account.

Errors are XRPC's `{"error", "message"}`: a wrong password is 401 AuthenticationRequired, an
unknown token 401 InvalidToken, an expired one 400 ExpiredToken (see `expire_access_tokens`,
`expire_refresh_tokens`). `app.bsky.feed.post` record keys must be TIDs. A createRecord whose record
key exists already answers 500 InternalServerError, as the real PDS does today. getRecord needs no
auth and answers 400 RecordNotFound for a missing record; deleteRecord succeeds for one already
gone. A 429 carries `RateLimit-*` headers (the reset in unix seconds) and no Retry-After.
"""

from __future__ import annotations

import hashlib
import itertools
import re
import secrets
import time
from typing import Any

from tests.fakes.servers import FakeServer, Reply, Seen

POST = "app.bsky.feed.post"
TID_ALPHABET = "234567abcdefghijklmnopqrstuvwxyz"
TID = re.compile(r"[234567abcdefghij][234567abcdefghijklmnopqrstuvwxyz]{12}")
TEXT_LIMIT = 300


def _error(name: str, message: str, status: int = 400) -> Reply:
    return Reply.json({"error": name, "message": message}, status)


def _cid(content: bytes) -> str:
    return "bafyrei" + hashlib.sha256(content).hexdigest()[:52]


class FakeBluesky(FakeServer):
    """`api_base` is the service URL for the adapter. `posts` holds the live post records."""

    def __init__(self, *, handle: str = "alice.test", app_password: str = "abcd-efgh-ijkl-mnop") -> None:
        super().__init__()
        self.handle = handle
        self.did = "did:plc:fakealice7k2m4q6s8u0w2y4a"
        self.email = "alice@example.com"
        self.app_password = app_password
        self.posts: list[dict[str, Any]] = []  # {"uri", "cid", "rkey", "record"}
        self.blobs: dict[str, dict[str, Any]] = {}  # cid → {"mimeType", "content"}
        self._access: dict[str, bool] = {}  # token → still valid (False: expired)
        self._refresh: dict[str, bool] = {}
        self._revs = itertools.count(1)

    @property
    def api_base(self) -> str:
        return self.url

    def expire_access_tokens(self) -> None:
        with self._lock:
            self._access = dict.fromkeys(self._access, False)

    def expire_refresh_tokens(self) -> None:
        with self._lock:
            self._refresh = dict.fromkeys(self._refresh, False)

    def revoke_sessions(self) -> None:
        """Forget every token, as a password change does: they now answer 401 InvalidToken."""
        with self._lock:
            self._access.clear()
            self._refresh.clear()

    def rate_limited_reply(self, retry_after: str) -> Reply:
        headers = {
            "RateLimit-Limit": "5000",
            "RateLimit-Remaining": "0",
            "RateLimit-Reset": str(round(time.time() + float(retry_after))),
            "RateLimit-Policy": "5000;w=3600",
        }
        return Reply.json({"error": "RateLimitExceeded", "message": "Rate Limit Exceeded"}, 429, headers)

    def failure_reply(self, status: int) -> Reply:
        return _error("InternalServerError", "Internal Server Error", status)

    def route(self, request: Seen) -> Reply:
        method = request.path.removeprefix("/xrpc/")
        if (request.method, method) == ("POST", "com.atproto.server.createSession"):
            return self._create_session(request.json())
        if (request.method, method) == ("POST", "com.atproto.server.refreshSession"):
            return self._refresh_session(request)
        if (request.method, method) == ("GET", "com.atproto.repo.getRecord"):
            return self._get_record(request.query)
        writes = {
            "com.atproto.repo.uploadBlob": self._upload_blob,
            "com.atproto.repo.createRecord": self._create_record,
            "com.atproto.repo.deleteRecord": self._delete_record,
        }
        if request.method != "POST" or method not in writes:
            return _error("MethodNotImplemented", "Method Not Implemented", 501)
        refused = self._check_access(request)
        return refused or writes[method](request)

    # --- sessions --------------------------------------------------------------------------------

    def _create_session(self, body: dict[str, Any]) -> Reply:
        if body.get("identifier") not in (self.handle, self.did, self.email) or body.get("password") != self.app_password:
            return _error("AuthenticationRequired", "Invalid identifier or password", 401)
        return Reply.json(self._new_session())

    def _refresh_session(self, request: Seen) -> Reply:
        token = _bearer(request)
        with self._lock:
            valid = self._refresh.get(token)
            if valid:
                del self._refresh[token]  # a refresh token is single use
        if valid is None:
            return _error("InvalidToken", "Token could not be verified", 401)
        if not valid:
            return _error("ExpiredToken", "Token has expired")
        return Reply.json(self._new_session())

    def _new_session(self) -> dict[str, Any]:
        access, refresh = f"access-{secrets.token_hex(8)}", f"refresh-{secrets.token_hex(8)}"
        with self._lock:
            self._access[access] = True
            self._refresh[refresh] = True
        return {"accessJwt": access, "refreshJwt": refresh, "handle": self.handle, "did": self.did, "email": self.email, "active": True}

    def _check_access(self, request: Seen) -> Reply | None:
        token = _bearer(request)
        if not token:
            return _error("AuthenticationRequired", "Authentication Required", 401)
        with self._lock:
            valid = self._access.get(token)
        if valid is None:
            return _error("InvalidToken", "Token could not be verified", 401)
        return None if valid else _error("ExpiredToken", "Token has expired")

    # --- the repository --------------------------------------------------------------------------

    def _upload_blob(self, request: Seen) -> Reply:
        mime = request.headers.get("content-type", "")
        if not request.body:
            return _error("InvalidRequest", "Request encoding (Content-Type) required but not provided")
        cid = _cid(request.body)
        with self._lock:
            self.blobs[cid] = {"mimeType": mime, "content": request.body}
        return Reply.json({"blob": {"$type": "blob", "ref": {"$link": cid}, "mimeType": mime, "size": len(request.body)}})

    def _create_record(self, request: Seen) -> Reply:
        body = request.json()
        record, rkey = body.get("record"), body.get("rkey")
        if body.get("repo") not in (self.did, self.handle):
            return _error("InvalidRequest", "Invalid repo")
        if body.get("collection") != POST or not isinstance(record, dict) or record.get("$type") != POST:
            return _error("InvalidRequest", "this fake PDS takes app.bsky.feed.post records only")
        if rkey is None:
            rkey = _next_tid()
        elif not TID.fullmatch(rkey):
            return _error("InvalidRequest", f"Invalid record key for {POST}: {rkey}")
        problem = self._invalid_post(record)
        if problem:
            return _error("InvalidRequest", f"Invalid {POST} record: {problem}")
        uri = f"at://{self.did}/{POST}/{rkey}"
        with self._lock:
            if any(p["rkey"] == rkey for p in self.posts):
                return _error("InternalServerError", "Internal Server Error", 500)
            cid = _cid(repr(record).encode())
            self.posts.append({"uri": uri, "cid": cid, "rkey": rkey, "record": record})
            rev = next(self._revs)
        return Reply.json(
            {"uri": uri, "cid": cid, "commit": {"cid": _cid(f"commit{rev}".encode()), "rev": f"rev{rev}"}, "validationStatus": "valid"}
        )

    def _invalid_post(self, record: dict[str, Any]) -> str | None:
        text = record.get("text")
        if not isinstance(text, str) or not isinstance(record.get("createdAt"), str):
            return "Record must have the properties text and createdAt"
        if len(text) > TEXT_LIMIT:
            return f"Record/text must not be longer than {TEXT_LIMIT} graphemes"
        embed = record.get("embed")
        if embed is not None:
            images = embed.get("images") if embed.get("$type") == "app.bsky.embed.images" else None
            if not isinstance(images, list) or not 1 <= len(images) <= 4:
                return "Record/embed must hold 1 to 4 images"
            for image in images:
                if "alt" not in image or image.get("image", {}).get("ref", {}).get("$link") not in self.blobs:
                    return "Record/embed/images must have alt and an uploaded blob"
        return None

    def _get_record(self, query: dict[str, str]) -> Reply:
        rkey, collection = query.get("rkey", ""), query.get("collection", "")
        with self._lock:
            found = next((p for p in self.posts if p["rkey"] == rkey), None)
        if found is None or query.get("repo") not in (self.did, self.handle) or collection != POST:
            return _error("RecordNotFound", f"Could not locate record: at://{query.get('repo')}/{collection}/{rkey}")
        return Reply.json({"uri": found["uri"], "cid": found["cid"], "value": found["record"]})

    def _delete_record(self, request: Seen) -> Reply:
        body = request.json()
        if body.get("repo") not in (self.did, self.handle):
            return _error("InvalidRequest", "Invalid repo")
        with self._lock:
            self.posts = [p for p in self.posts if not (body.get("collection") == POST and p["rkey"] == body.get("rkey"))]
            rev = next(self._revs)
        return Reply.json({"commit": {"cid": _cid(f"commit{rev}".encode()), "rev": f"rev{rev}"}})


def _next_tid() -> str:
    value = (time.time_ns() // 1000) << 10 | secrets.randbelow(1024)
    return "".join(TID_ALPHABET[(value >> shift) & 31] for shift in range(60, -1, -5))


def _bearer(request: Seen) -> str:
    value = request.headers.get("authorization", "")
    return value.removeprefix("Bearer ") if value.startswith("Bearer ") else ""
