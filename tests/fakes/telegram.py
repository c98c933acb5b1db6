"""A fake Telegram Bot API: getMe, getChat, sendMessage, sendPhoto/sendVideo/sendAnimation, deleteMessage.

Methods are `/bot<token>/<method>` taking parameters from the query, a JSON body or a multipart
form, and answer the envelope `{"ok": true, "result"}` or `{"ok": false, "error_code", "description"}`.
A wrong token is 401 Unauthorized, a malformed one 404 Not Found, an unknown chat 400 "chat not
found"; a 429 names its wait in `parameters.retry_after` (no Retry-After header).
"""

from __future__ import annotations

import itertools
import math
import re
import time
from typing import Any

from tests.fakes.servers import FakeServer, Part, Reply, Seen

_ROUTE = re.compile(r"/bot([^/]+)/(\w+)")
TEXT_LIMIT = 4096
CAPTION_LIMIT = 1024
UPLOADS = {"sendphoto": "photo", "sendvideo": "video", "sendanimation": "animation"}


def _failed(status: int, description: str, **parameters: Any) -> Reply:
    body: dict[str, Any] = {"ok": False, "error_code": status, "description": description}
    if parameters:
        body["parameters"] = parameters
    return Reply.json(body, status)


def _ok(result: Any) -> Reply:
    return Reply.json({"ok": True, "result": result})


class FakeTelegram(FakeServer):
    """`api_base` is the base URL for the adapter. The bot posts into one channel; `posts` holds its live messages."""

    def __init__(
        self,
        *,
        bot_token: str = "123456789:AAFakeTelegramTokenForTests_0123456",
        chat_id: str = "-1001234567890",
        chat_username: str | None = "pressroom_news",
    ) -> None:
        super().__init__()
        self.bot_token = bot_token
        self.chat_id = chat_id
        self.chat_username = chat_username
        self.bot = {"id": 123456789, "is_bot": True, "first_name": "Pressroom", "username": "pressroom_bot"}
        self.posts: list[dict[str, Any]] = []
        self.uploads: list[Part] = []
        self._ids = itertools.count(101)

    @property
    def api_base(self) -> str:
        return self.url

    @property
    def chat(self) -> dict[str, Any]:
        chat: dict[str, Any] = {"id": int(self.chat_id), "type": "channel", "title": "Pressroom News"}
        if self.chat_username:
            chat["username"] = self.chat_username
        return chat

    def rate_limited_reply(self, retry_after: str) -> Reply:
        seconds = math.ceil(float(retry_after))
        return _failed(429, f"Too Many Requests: retry after {seconds}", retry_after=seconds)

    def failure_reply(self, status: int) -> Reply:
        return _failed(status, "Internal Server Error")

    def route(self, request: Seen) -> Reply:
        match = _ROUTE.fullmatch(request.path)
        if match is None or ":" not in match.group(1):
            return _failed(404, "Not Found")
        token, method = match.group(1), match.group(2).lower()
        if token != self.bot_token:
            return _failed(401, "Unauthorized")
        params, files = self._params(request)
        if method == "getme":
            return _ok(self.bot)
        if method in ("getchat", "sendmessage", "deletemessage", *UPLOADS) and not self._is_our_chat(params.get("chat_id")):
            return _failed(400, "Bad Request: chat not found")
        if method == "getchat":
            return _ok(self.chat)
        if method == "sendmessage":
            return self._send_message(params)
        if method in UPLOADS:
            return self._send_file(params, files.get(UPLOADS[method]), UPLOADS[method])
        if method == "deletemessage":
            return self._delete(params.get("message_id"))
        return _failed(404, "Not Found: method not found")

    def _params(self, request: Seen) -> tuple[dict[str, Any], dict[str, Part]]:
        params: dict[str, Any] = dict(request.query)
        files: dict[str, Part] = {}
        if request.headers.get("content-type", "").startswith("application/json") and request.body:
            params.update(request.json())
        for name, part in request.form().items():
            if part.filename is None:
                params[name] = part.text
            else:
                files[name] = part
        return params, files

    def _is_our_chat(self, chat_id: Any) -> bool:
        return str(chat_id) == self.chat_id or (self.chat_username is not None and chat_id == f"@{self.chat_username}")

    def _send_message(self, params: dict[str, Any]) -> Reply:
        text = params.get("text") or ""
        if not text.strip():
            return _failed(400, "Bad Request: message text is empty")
        if len(text) > TEXT_LIMIT:
            return _failed(400, "Bad Request: message is too long")
        return _ok(self._store({"text": text}))

    def _send_file(self, params: dict[str, Any], file: Part | None, kind: str) -> Reply:
        if file is None:
            return _failed(400, f"Bad Request: there is no {kind} in the request")
        caption = params.get("caption") or ""
        if len(caption) > CAPTION_LIMIT:
            return _failed(400, "Bad Request: message caption is too long")
        with self._lock:
            self.uploads.append(file)
        sent = {"file_id": f"file-{len(self.uploads)}", "file_unique_id": f"u{len(self.uploads)}", "file_size": len(file.content)}
        return _ok(self._store({kind: [sent] if kind == "photo" else sent, **({"caption": caption} if caption else {})}))

    def _store(self, fields: dict[str, Any]) -> dict[str, Any]:
        message = {"message_id": next(self._ids), "sender_chat": self.chat, "chat": self.chat, "date": int(time.time()), **fields}
        with self._lock:
            self.posts.append(message)
        return message

    def _delete(self, message_id: Any) -> Reply:
        with self._lock:
            found = next((m for m in self.posts if str(m["message_id"]) == str(message_id)), None)
            if found is None:
                return _failed(400, "Bad Request: message to delete not found")
            self.posts.remove(found)
        return _ok(True)
