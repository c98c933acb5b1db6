"""The `telegram` publisher: the Telegram Bot API, posting as a bot into one chat.

Credentials `{"botToken", "chatId"}` (`chatId` numeric, or `@channelusername`). Methods are
`POST {api_base}/bot<token>/<method>`; every answer is an envelope, `{"ok": true, "result"}` or
`{"ok": false, "error_code", "description", "parameters": {"retry_after"?}}`. A text post is
`sendMessage {chat_id, text}`; a post with one file uploads it (multipart) with the text as caption:
`sendPhoto`, `sendAnimation` for GIFs, `sendVideo`. Several files would be several messages
(`sendMediaGroup`), which one receipt cannot stand for: unsupported_media. A 429 names its wait in
`parameters.retry_after`, which is honoured. A wrong token answers 401, a malformed one 404, a bot
removed from the chat 403: all account_unauthorized.

verify is `getMe` (the bot's username becomes the account name) and `getChat` (the chat exists and
the bot can see it). The receipt's id is the message id; its URL `https://t.me/<chat username>/<id>`
for public chats. delete is `deleteMessage`, and a message already gone counts as deleted. The Bot
API cannot list a chat's messages, so reconcile is unsupported. The token is part of every URL:
no message here ever shows a URL.
"""

from __future__ import annotations

from typing import Any, Generic, Self, TypeVar

import httpx
import msgspec

from adapters.outbound_http import OutboundOptions, retry_after_seconds
from adapters.publishers._http import PlatformHttp, json_object, required, unsupported_media
from application.ports import Attachment, Outgoing, Profile, PublishError, Receipt

PROVIDER = "telegram"
DEFAULT_API_BASE = "https://api.telegram.org"

T = TypeVar("T")


class _Ok(msgspec.Struct, Generic[T]):
    ok: bool
    result: T


class _Chat(msgspec.Struct):
    id: int
    type: str
    username: str | None = None
    title: str | None = None


class _Message(msgspec.Struct):
    message_id: int
    chat: _Chat


class _User(msgspec.Struct):
    id: int
    first_name: str
    username: str | None = None


class _TelegramHttp(PlatformHttp):
    def message(self, response: httpx.Response) -> str:
        description = json_object(response).get("description")
        return description if isinstance(description, str) and description else super().message(response)

    def retry_after(self, response: httpx.Response) -> float | None:
        parameters = json_object(response).get("parameters")
        seconds = parameters.get("retry_after") if isinstance(parameters, dict) else None
        if isinstance(seconds, int | float) and seconds >= 0:
            return float(seconds)
        return retry_after_seconds(response.headers.get("Retry-After"))

    def unauthorized(self, response: httpx.Response) -> bool:
        return response.status_code in (401, 403, 404)


class TelegramPublisher:
    """`Publisher` over the Telegram Bot API."""

    def __init__(self, options: OutboundOptions | None = None, *, api_base: str = DEFAULT_API_BASE) -> None:
        self.api_base = api_base.rstrip("/")
        self._http = _TelegramHttp(options, provider=PROVIDER)

    def verify(self, credentials: dict[str, str]) -> Profile:
        token, chat_id = required(credentials, "botToken", "chatId", provider=PROVIDER)
        me = self._call(token, "getMe", _User, json={})
        self._call(token, "getChat", _Chat, json={"chat_id": chat_id})
        return Profile(name=me.username or str(me.id), display_name=me.first_name)

    def publish(self, credentials: dict[str, str], post: Outgoing) -> Receipt:
        token, chat_id = required(credentials, "botToken", "chatId", provider=PROVIDER)
        if not post.media:
            message = self._call(token, "sendMessage", _Message, creates=True, json={"chat_id": chat_id, "text": post.text})
        elif len(post.media) == 1:
            method, field = _upload_method(post.media[0])
            data = {"chat_id": chat_id, **({"caption": post.text} if post.text else {})}
            file = post.media[0]
            message = self._call(token, method, _Message, creates=True, data=data, files={field: (file.filename, file.content, file.mime)})
        else:
            raise unsupported_media(PROVIDER, "a Telegram post carries at most one file")
        username = message.chat.username
        return Receipt(
            provider_post_id=str(message.message_id),
            url=f"https://t.me/{username}/{message.message_id}" if username else None,
        )

    def find(self, credentials: dict[str, str], post: Outgoing) -> Receipt | None:
        raise PublishError("reconcile_unsupported", "the Telegram Bot API cannot list a chat's messages", retryable=False)

    def delete(self, credentials: dict[str, str], receipt: Receipt) -> None:
        token, chat_id = required(credentials, "botToken", "chatId", provider=PROVIDER)
        if not receipt.provider_post_id.isdigit():
            raise PublishError("provider_rejected", "telegram: a message id is a number", retryable=False)
        payload = {"chat_id": chat_id, "message_id": int(receipt.provider_post_id)}
        response = self._http.exchange("POST", self._url(token, "deleteMessage"), json=payload)
        if response.status_code == 400 and "message to delete not found" in self._http.message(response).lower():
            return  # already deleted
        if not response.is_success:
            raise self._http.error(response)

    def _call(self, token: str, method: str, into: type[T], *, creates: bool = False, **request: Any) -> T:
        response = self._http.send("POST", self._url(token, method), creates=creates, **request)
        answer = self._http.decode(response, _Ok[into], creates=creates)  # type: ignore[valid-type]
        if not answer.ok:
            raise PublishError("provider_rejected", f"telegram {method} answered ok=false", retryable=False)
        return answer.result  # type: ignore[no-any-return]

    def _url(self, token: str, method: str) -> str:
        return f"{self.api_base}/bot{token}/{method}"

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _upload_method(file: Attachment) -> tuple[str, str]:
    if file.mime == "image/gif":
        return "sendAnimation", "animation"
    if file.mime.startswith("image/"):
        return "sendPhoto", "photo"
    if file.mime.startswith("video/"):
        return "sendVideo", "video"
    raise unsupported_media(PROVIDER, f"cannot post a {file.mime} file")
