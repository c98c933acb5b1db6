"""The `discord` publisher: Discord's Execute Webhook on the channel webhook the customer created.

Credentials `{"webhookUrl"}`: `https://discord.com/api/webhooks/{id}/{token}`, optionally with
`?thread_id=` to post in a thread (kept on every call). A post is `POST {webhookUrl}?wait=true`
(`wait` makes Discord answer the message it created): JSON `{"content", "allowed_mentions"}`, or
with media multipart/form-data of `payload_json` plus `files[n]`. `allowed_mentions.parse = []`
keeps an `@everyone` in ad copy from pinging a whole server. The receipt's id is the message id;
its URL is built only when the answer names the guild and channel.

verify is `GET {webhookUrl}` (the webhook's name becomes the account name); delete is
`DELETE {webhookUrl}/messages/{id}`, and a message already gone counts as deleted. A webhook cannot
list its messages, so reconcile is unsupported. Rate limits answer 429 with the exact wait in the
body's `retry_after` (seconds, fractional), which is preferred to the rounded `Retry-After` header.
A deleted webhook (404, code 10015) means the connection is dead: account_unauthorized.
"""

from __future__ import annotations

from typing import Any, Self

import httpx
import msgspec

from adapters.outbound_http import OutboundOptions, retry_after_seconds
from adapters.publishers._http import PlatformHttp, json_object, required
from application.ports import Outgoing, Profile, PublishError, Receipt

PROVIDER = "discord"
UNKNOWN_WEBHOOK = 10015
UNKNOWN_MESSAGE = 10008
NO_MENTIONS: dict[str, list[str]] = {"parse": []}


class _Message(msgspec.Struct):
    id: str
    channel_id: str | None = None
    guild_id: str | None = None


class _Webhook(msgspec.Struct):
    id: str
    name: str | None = None
    channel_id: str | None = None
    guild_id: str | None = None


class _DiscordHttp(PlatformHttp):
    def message(self, response: httpx.Response) -> str:
        error = json_object(response)
        text = error.get("message")
        if isinstance(text, str) and text:
            code = error.get("code")
            return f"{text} (code {code})" if isinstance(code, int) and code else text
        return super().message(response)

    def retry_after(self, response: httpx.Response) -> float | None:
        seconds = json_object(response).get("retry_after")
        if isinstance(seconds, int | float) and seconds >= 0:
            return float(seconds)
        return retry_after_seconds(response.headers.get("Retry-After"))

    def unauthorized(self, response: httpx.Response) -> bool:
        return super().unauthorized(response) or (response.status_code == 404 and json_object(response).get("code") == UNKNOWN_WEBHOOK)


class DiscordPublisher:
    """`Publisher` over a Discord channel webhook."""

    def __init__(self, options: OutboundOptions | None = None) -> None:
        self._http = _DiscordHttp(options, provider=PROVIDER)

    def verify(self, credentials: dict[str, str]) -> Profile:
        webhook, _ = _webhook(credentials)
        found = self._http.decode(self._http.send("GET", webhook), _Webhook)
        name = found.name or f"webhook {found.id}"
        return Profile(name=name, display_name=name)

    def publish(self, credentials: dict[str, str], post: Outgoing) -> Receipt:
        webhook, params = _webhook(credentials)
        params = {**params, "wait": "true"}
        payload: dict[str, Any] = {"content": post.text, "allowed_mentions": NO_MENTIONS}
        if post.media:
            payload["attachments"] = [{"id": n, "filename": m.filename} for n, m in enumerate(post.media)]
            files = [(f"files[{n}]", (m.filename, m.content, m.mime)) for n, m in enumerate(post.media)]
            data = {"payload_json": msgspec.json.encode(payload).decode()}
            response = self._http.send("POST", webhook, creates=True, params=params, data=data, files=files)
        else:
            response = self._http.send("POST", webhook, creates=True, params=params, json=payload)
        message = self._http.decode(response, _Message, creates=True)
        url = None
        if message.guild_id and message.channel_id:
            url = f"https://discord.com/channels/{message.guild_id}/{message.channel_id}/{message.id}"
        return Receipt(provider_post_id=message.id, url=url)

    def find(self, credentials: dict[str, str], post: Outgoing) -> Receipt | None:
        raise PublishError("reconcile_unsupported", "a Discord webhook cannot list the messages it posted", retryable=False)

    def delete(self, credentials: dict[str, str], receipt: Receipt) -> None:
        webhook, params = _webhook(credentials)
        if not receipt.provider_post_id.isdigit():
            raise PublishError("provider_rejected", "discord: a message id is a number", retryable=False)
        message = webhook.copy_with(path=f"{webhook.path}/messages/{receipt.provider_post_id}")
        response = self._http.exchange("DELETE", message, params=params)
        if response.status_code == 404 and json_object(response).get("code") == UNKNOWN_MESSAGE:
            return  # already deleted
        if not response.is_success:
            raise self._http.error(response)

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _webhook(credentials: dict[str, str]) -> tuple[httpx.URL, dict[str, str]]:
    """The webhook URL without its query, and the query parameters to keep (`thread_id`)."""
    (raw,) = required(credentials, "webhookUrl", provider=PROVIDER)
    try:
        url = httpx.URL(raw)
    except httpx.InvalidURL:
        raise PublishError("url_not_allowed", "discord: webhookUrl is not a valid URL", retryable=False) from None
    keep = {name: url.params[name] for name in ("thread_id",) if name in url.params}
    return url.copy_with(query=None, fragment=None, path=url.path.rstrip("/")), keep
