"""One HTTP attempt for a publisher, and the platform's answer or failure mapped to a PublishError.

Calls go through the guarded client of `Outbound` (the private-address guard applies) but not
through its retrying `send`: the publishing worker owns retries. What a failure becomes:

    2xx → the response                          429 → rate_limited (retryable, retry_after)
    5xx → provider_unavailable (retryable)      401/403 → account_unauthorized
    other 4xx → provider_rejected (the platform's message)
    the guard refused the URL → url_not_allowed
    no connection (refused, connect or pool timeout) → provider_unavailable / provider_timeout (retryable, not sent)
    the request went out and no answer came (read/write timeout, dropped connection):
        on a call that creates a post → outcome_unknown (sent, never retried blindly)
        on any other call → provider_timeout / provider_unavailable (retryable)

A platform whose errors read differently overrides `message`, `retry_after` or `unauthorized`.
"""

from __future__ import annotations

from typing import Any, TypeVar

import httpx
import msgspec

from adapters.outbound_http import Outbound, OutboundOptions, provider_message, retry_after_seconds
from application.ports import ProviderError, PublishError

T = TypeVar("T")

MESSAGE_LIMIT = 300

# The request was (or may have been) written out, and no answer came back.
_SENT_FAILURES = (httpx.ReadTimeout, httpx.WriteTimeout, httpx.ReadError, httpx.WriteError, httpx.RemoteProtocolError)


class PlatformHttp:
    """One platform's guarded client; `close()` it when done."""

    def __init__(self, options: OutboundOptions | None, *, provider: str) -> None:
        self.provider = provider
        self._outbound = Outbound(options or OutboundOptions(), provider=provider)

    @property
    def options(self) -> OutboundOptions:
        return self._outbound.options

    def send(self, method: str, url: str | httpx.URL, *, creates: bool = False, **request: Any) -> httpx.Response:
        """One request; the 2xx response, else PublishError. `request` takes httpx's `headers`, `params`,
        `json`, `content`, `data` and `files`. `creates` marks the call that makes the post."""
        response = self.exchange(method, url, creates=creates, **request)
        if response.is_success:
            return response
        raise self.error(response)

    def exchange(self, method: str, url: str | httpx.URL, *, creates: bool = False, **request: Any) -> httpx.Response:
        """One request; the response whatever its status (for callers that read some errors themselves)."""
        try:
            return self._outbound.client.request(method, url, **request)
        except ProviderError as error:  # the address guard, from the client's request hook
            raise self._refused(url, error) from None
        except httpx.InvalidURL:
            raise PublishError("url_not_allowed", f"{self.provider}: the connection's URL is not a valid URL", retryable=False) from None
        except httpx.HTTPError as error:
            raise self._transport_failure(error, creates=creates) from None

    def error(self, response: httpx.Response) -> PublishError:
        """The PublishError for a response that is not 2xx."""
        status = response.status_code
        text = f"{self.provider} answered HTTP {status}: {self.message(response)}"
        if status == 429:
            return PublishError("rate_limited", text, retryable=True, retry_after=self.retry_after(response), http_status=status)
        if status >= 500:
            return PublishError("provider_unavailable", text, retryable=True, retry_after=self.retry_after(response), http_status=status)
        if self.unauthorized(response):
            return PublishError("account_unauthorized", text, retryable=False, http_status=status)
        if status >= 400:
            return PublishError("provider_rejected", text, retryable=False, http_status=status)
        return PublishError("provider_malformed_response", f"{self.provider} answered an unexpected HTTP {status}", retryable=False)

    def decode(self, response: httpx.Response, into: type[T], *, creates: bool = False) -> T:
        """A 2xx answer read into `into`. On the call that created a post an unreadable answer means the post
        exists but its id is unknown: outcome_unknown, not a failure that could be retried into a duplicate."""
        try:
            return msgspec.json.decode(response.content, type=into)
        except msgspec.DecodeError as error:
            if creates:
                raise self.unknown(f"its answer could not be read ({short(str(error))})") from None
            raise PublishError(
                "provider_malformed_response", f"{self.provider} answered unexpected JSON: {short(str(error))}", retryable=False
            ) from None

    def unknown(self, why: str) -> PublishError:
        return PublishError(
            "outcome_unknown",
            f"{self.provider} may have published the post but {why}; it is not retried blindly",
            retryable=False,
            sent=True,
        )

    # --- how the platform's errors read (override per platform) ----------------------------------

    def message(self, response: httpx.Response) -> str:
        return provider_message(response.content, response.reason_phrase)

    def retry_after(self, response: httpx.Response) -> float | None:
        return retry_after_seconds(response.headers.get("Retry-After"))

    def unauthorized(self, response: httpx.Response) -> bool:
        return response.status_code in (401, 403)

    def close(self) -> None:
        self._outbound.close()

    def _refused(self, url: str | httpx.URL, error: ProviderError) -> PublishError:
        """The guard's refusal, naming only the host: paths carry tokens (Telegram, Discord)."""
        host = httpx.URL(url).host or "the URL"
        private = "private" in error.message
        why = "resolves to a private, loopback or link-local address" if private else "is not an http(s) URL"
        return PublishError(error.code, f"{self.provider}: {host} {why}; outbound HTTP refuses it", retryable=error.retryable)

    def _transport_failure(self, error: httpx.HTTPError, *, creates: bool) -> PublishError:
        kind = type(error).__name__
        if isinstance(error, httpx.ConnectTimeout | httpx.PoolTimeout):
            return PublishError("provider_timeout", f"{self.provider} did not take the connection in time ({kind})", retryable=True)
        if isinstance(error, httpx.ConnectError):
            return PublishError("provider_unavailable", f"{self.provider} could not be reached: {short(str(error))}", retryable=True)
        if isinstance(error, _SENT_FAILURES):
            if creates:
                return self.unknown(f"no answer came ({kind})")
            if isinstance(error, httpx.TimeoutException):
                return PublishError("provider_timeout", f"{self.provider} did not answer in time ({kind})", retryable=True)
            return PublishError("provider_unavailable", f"{self.provider} dropped the connection ({kind})", retryable=True)
        if isinstance(error, httpx.DecodingError | httpx.TooManyRedirects):
            if creates:
                return self.unknown(f"its answer could not be read ({kind})")
            return PublishError("provider_malformed_response", f"{self.provider}: {short(str(error))}", retryable=False)
        return PublishError("provider_unavailable", f"{self.provider}: {kind}: {short(str(error))}", retryable=True)


def required(credentials: dict[str, str], *names: str, provider: str) -> list[str]:
    """The named credentials, in order; account_unauthorized when one is missing or empty."""
    missing = [name for name in names if not str(credentials.get(name) or "").strip()]
    if missing:
        raise PublishError("account_unauthorized", f"{provider} connection lacks {', '.join(missing)}", retryable=False)
    return [str(credentials[name]).strip() for name in names]


def json_object(response: httpx.Response) -> dict[str, Any]:
    """The response's body as a JSON object, or {} when it is not one (for reading error bodies)."""
    try:
        body = msgspec.json.decode(response.content)
    except msgspec.DecodeError:
        return {}
    return body if isinstance(body, dict) else {}


def unsupported_media(provider: str, why: str) -> PublishError:
    return PublishError("unsupported_media", f"{provider}: {why}", retryable=False)


def short(text: str) -> str:
    text = " ".join(text.split())
    return text if len(text) <= MESSAGE_LIMIT else text[: MESSAGE_LIMIT - 1] + "…"
