"""Outbound HTTP for the provider adapters: timeouts, bounded retries, and the private-address guard.

`make_client` builds an `httpx.Client` with connect/read timeouts that refuses, on every request it
sends (redirect hops included), URLs that are not http(s) or whose host resolves to an address that
is not globally routable (loopback, private, link-local, shared, reserved, multicast), unless
`allow_private=True` (tests, local fakes: `PRESSROOM_ALLOW_PRIVATE_URLS`). The check resolves the
host before httpx connects, so it does not stop DNS rebinding between the two look-ups.

`send` runs one request with bounded retries: 429, 5xx, timeouts and connection errors are tried
again after `Retry-After` (seconds or an HTTP date, capped) or an exponential backoff with jitter;
any other answer is final. Every failure becomes a `ProviderError`:

    429 → rate_limited (retryable)          5xx, connection error → provider_unavailable (retryable)
    timeout → provider_timeout (retryable)  other 4xx → provider_rejected (not retryable, provider's message)
    bad JSON or shape → provider_malformed_response (not retryable)

Retries re-send the request as it was: a POST that timed out after the provider received it may run
twice, so keep `attempts` small for calls that start paid work. Secrets travel in per-request headers
only, never on the client, so downloads of provider-given URLs never carry them.
"""

from __future__ import annotations

import functools
import ipaddress
import math
import random
import socket
import ssl
import time
from collections.abc import Callable, Iterable
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Any, TypeVar

import httpx
import msgspec
import structlog

from application.ports import ProviderError

log = structlog.get_logger()

T = TypeVar("T")

ERROR_BODY_LIMIT = 64 * 1024
MESSAGE_LIMIT = 300
USER_AGENT = "pressroom/0.1"


class OutboundOptions(msgspec.Struct, frozen=True, kw_only=True):
    """How a provider adapter talks HTTP: timeouts in seconds, retry policy and the address guard."""

    connect_timeout: float = 5.0
    read_timeout: float = 60.0
    attempts: int = 3
    backoff: float = 0.5  # first retry waits about this long; each further retry doubles it
    max_backoff: float = 8.0
    retry_after_cap: float = 30.0  # longest wait a provider's Retry-After can ask for
    allow_private: bool = False


# --- the address guard ---------------------------------------------------------------------------


def is_public_address(address: ipaddress.IPv4Address | ipaddress.IPv6Address) -> bool:
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
    return address.is_global and not address.is_multicast


def check_url(url: str | httpx.URL, *, allow_private: bool = False) -> None:
    """Raise ProviderError("url_not_allowed") unless `url` is http(s) to a public address.

    A host that does not resolve raises `socket.gaierror`: a connection error, not a refusal."""
    url = httpx.URL(url) if isinstance(url, str) else url
    if url.scheme not in ("http", "https") or not url.host:
        raise ProviderError("url_not_allowed", f"Only http(s) URLs with a host are allowed: {_shown(url)}", retryable=False)
    if allow_private:
        return
    host = url.raw_host.decode("ascii")
    port = url.port or (443 if url.scheme == "https" else 80)
    for address in _resolve(host, port):
        if not is_public_address(address):
            raise ProviderError(
                "url_not_allowed",
                f"{url.host} resolves to a private, loopback or link-local address ({address}); outbound HTTP refuses it",
                retryable=False,
            )


def _resolve(host: str, port: int) -> Iterable[ipaddress.IPv4Address | ipaddress.IPv6Address]:
    try:
        return [ipaddress.ip_address(host)]
    except ValueError:
        pass
    infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return {ipaddress.ip_address(str(info[4][0]).split("%", 1)[0]) for info in infos}


def _guard(allow_private: bool) -> Callable[[httpx.Request], None]:
    def guard(request: httpx.Request) -> None:
        try:
            check_url(request.url, allow_private=allow_private)
        except socket.gaierror as error:
            raise httpx.ConnectError(f"Cannot resolve {request.url.host}: {error}", request=request) from None

    return guard


@functools.cache
def _tls_context() -> ssl.SSLContext:
    """One verifying TLS context (certifi's roots) for every client: loading the roots costs ~40 ms."""
    return httpx.create_ssl_context()


def make_client(*, connect_timeout: float = 5.0, read_timeout: float = 60.0, allow_private: bool = False) -> httpx.Client:
    """An httpx.Client with these timeouts (read, write and pool use `read_timeout`) and the address guard.

    It follows no redirects unless a request asks to (`follow_redirects=True`); the guard checks each hop."""
    return httpx.Client(
        timeout=httpx.Timeout(read_timeout, connect=connect_timeout),
        verify=_tls_context(),
        follow_redirects=False,
        headers={"User-Agent": USER_AGENT},
        event_hooks={"request": [_guard(allow_private)]},
    )


# --- retries -------------------------------------------------------------------------------------


def retry_after_seconds(value: str | None, *, now: datetime | None = None) -> float | None:
    """Seconds a `Retry-After` header asks to wait (delay-seconds or HTTP date); None if absent or unreadable."""
    if not value or not value.strip():
        return None
    value = value.strip()
    try:
        seconds = float(value)
    except ValueError:
        try:
            when = parsedate_to_datetime(value)
        except (TypeError, ValueError, IndexError):
            return None
        if when.tzinfo is None:
            when = when.replace(tzinfo=UTC)
        seconds = (when - (now or datetime.now(UTC))).total_seconds()
    return max(0.0, seconds) if math.isfinite(seconds) else None


def backoff_delay(
    attempt: int, *, backoff: float, max_backoff: float, retry_after: float | None = None, retry_after_cap: float = 30.0
) -> float:
    """How long to wait after failed attempt number `attempt` (1-based).

    With a Retry-After: that (capped), plus a little jitter. Without: exponential backoff with
    "equal jitter", between half and all of min(max_backoff, backoff * 2 ** (attempt - 1))."""
    if retry_after is not None:
        return min(retry_after, retry_after_cap) + random.uniform(0, min(backoff, 1.0))
    ceiling = min(max_backoff, backoff * 2 ** (attempt - 1))
    return random.uniform(ceiling / 2, ceiling)


def send(
    client: httpx.Client,
    request_fn: Callable[[httpx.Client], httpx.Response],
    *,
    attempts: int = 3,
    backoff: float = 0.5,
    max_backoff: float = 8.0,
    retry_after_cap: float = 30.0,
    provider: str = "provider",
    sleep: Callable[[float], None] = time.sleep,
) -> httpx.Response:
    """Run `request_fn(client)` up to `attempts` times; return the first 2xx response or raise ProviderError.

    A streamed 2xx response is returned open: the caller reads and closes it."""
    if attempts < 1:
        raise ValueError("attempts must be at least 1")
    for attempt in range(1, attempts + 1):
        retry_after: float | None = None
        try:
            response = request_fn(client)
        except httpx.TimeoutException as error:
            failure = ProviderError("provider_timeout", f"{provider} did not answer in time ({type(error).__name__})", retryable=True)
        except httpx.TransportError as error:
            failure = ProviderError("provider_unavailable", f"{provider} could not be reached: {_short(str(error))}", retryable=True)
        except (httpx.DecodingError, httpx.TooManyRedirects) as error:
            raise ProviderError("provider_malformed_response", f"{provider}: {_short(str(error))}", retryable=False) from None
        else:
            if response.is_success:
                return response
            status = response.status_code
            body = _error_body(response)
            message = f"{provider} answered HTTP {status}: {provider_message(body, response.reason_phrase)}"
            if status == 429:
                failure = ProviderError("rate_limited", message, retryable=True)
                retry_after = retry_after_seconds(response.headers.get("Retry-After"))
            elif status >= 500:
                failure = ProviderError("provider_unavailable", message, retryable=True)
                retry_after = retry_after_seconds(response.headers.get("Retry-After"))
            elif 400 <= status < 500:
                raise ProviderError("provider_rejected", message, retryable=False)
            else:
                raise ProviderError("provider_malformed_response", f"{provider} answered an unexpected HTTP {status}", retryable=False)
        if attempt == attempts:
            raise failure
        delay = backoff_delay(attempt, backoff=backoff, max_backoff=max_backoff, retry_after=retry_after, retry_after_cap=retry_after_cap)
        log.info("outbound_retry", provider=provider, code=failure.code, attempt=attempt, delay_seconds=round(delay, 3))
        sleep(delay)
    raise AssertionError("unreachable")  # pragma: no cover


def provider_message(body: bytes, fallback: str = "") -> str:
    """The human message in a provider's error body: `error.message` (OpenAI, HeyGen), `detail` (fal), `message`."""
    try:
        data: Any = msgspec.json.decode(body)
    except msgspec.DecodeError:
        text = body.decode("utf-8", "replace").strip()
        return _short(text or fallback)
    found: Any = None
    if isinstance(data, dict):
        error = data.get("error")
        if isinstance(error, dict):
            found = error.get("message")
        elif isinstance(error, str):
            found = error
        if found is None:
            detail = data.get("detail")
            if isinstance(detail, list):  # FastAPI-style validation errors
                found = "; ".join(str(item.get("msg", item)) if isinstance(item, dict) else str(item) for item in detail)
            else:
                found = detail if detail is not None else data.get("message")
    return _short(str(found) if found not in (None, "") else fallback)


def _error_body(response: httpx.Response) -> bytes:
    """At most ERROR_BODY_LIMIT bytes of an error response's body; closes the response."""
    chunks: list[bytes] = []
    size = 0
    try:
        for chunk in response.iter_bytes():
            chunks.append(chunk)
            size += len(chunk)
            if size >= ERROR_BODY_LIMIT:
                break
    except httpx.HTTPError:
        pass
    finally:
        response.close()
    return b"".join(chunks)[:ERROR_BODY_LIMIT]


def _short(text: str) -> str:
    text = " ".join(text.split())
    return text if len(text) <= MESSAGE_LIMIT else text[: MESSAGE_LIMIT - 1] + "…"


def _shown(url: httpx.URL) -> str:
    """A URL for error messages: no credentials, no query string (presigned URLs carry tokens there)."""
    return _short(str(url.copy_with(query=None, fragment=None, userinfo=b"")))


# --- the bundle adapters hold ------------------------------------------------------------------------


class Outbound:
    """One provider's guarded client plus its retry policy; `close()` it when done."""

    def __init__(self, options: OutboundOptions, *, provider: str) -> None:
        self.options = options
        self.provider = provider
        self.client = make_client(
            connect_timeout=options.connect_timeout, read_timeout=options.read_timeout, allow_private=options.allow_private
        )

    def send(self, request_fn: Callable[[httpx.Client], httpx.Response], *, attempts: int | None = None) -> httpx.Response:
        o = self.options
        return send(
            self.client,
            request_fn,
            attempts=o.attempts if attempts is None else attempts,
            backoff=o.backoff,
            max_backoff=o.max_backoff,
            retry_after_cap=o.retry_after_cap,
            provider=self.provider,
        )

    def call(
        self,
        method: str,
        url: str,
        into: type[T],
        *,
        headers: dict[str, str] | None = None,
        json: Any = None,
        params: dict[str, str] | None = None,
        attempts: int | None = None,
    ) -> T:
        """Send a JSON request and decode the 2xx answer into `into` (a msgspec type)."""
        response = self.send(lambda c: c.request(method, url, headers=headers, json=json, params=params), attempts=attempts)
        return decode(response.content, into, provider=self.provider)

    def download(self, url: str, *, max_bytes: int) -> tuple[bytes, str]:
        """The body and Content-Type of a GET of a provider-given URL (redirects followed, no credentials sent)."""

        def fetch(client: httpx.Client) -> httpx.Response:
            return client.send(client.build_request("GET", url), stream=True, follow_redirects=True)

        response = self.send(fetch)
        try:
            declared = response.headers.get("Content-Length", "")
            if declared.isdigit() and int(declared) > max_bytes:
                raise _too_large(self.provider, max_bytes)
            chunks: list[bytes] = []
            size = 0
            for chunk in response.iter_bytes():
                size += len(chunk)
                if size > max_bytes:
                    raise _too_large(self.provider, max_bytes)
                chunks.append(chunk)
        except httpx.TimeoutException:
            raise ProviderError("provider_timeout", f"{self.provider}: download timed out", retryable=True) from None
        except httpx.TransportError as error:
            raise ProviderError("provider_unavailable", f"{self.provider}: download failed: {_short(str(error))}", retryable=True) from None
        finally:
            response.close()
        return b"".join(chunks), response.headers.get("Content-Type", "")

    def close(self) -> None:
        self.client.close()


def decode(body: bytes, into: type[T], *, provider: str = "provider") -> T:
    try:
        return msgspec.json.decode(body, type=into)
    except msgspec.DecodeError as error:  # ValidationError included: valid JSON of the wrong shape
        raise ProviderError(
            "provider_malformed_response", f"{provider} answered unexpected JSON: {_short(str(error))}", retryable=False
        ) from None


def _too_large(provider: str, max_bytes: int) -> ProviderError:
    return ProviderError("provider_output_too_large", f"{provider}: the file is larger than {max_bytes} bytes", retryable=False)


def poll(
    check: Callable[[], T | None], *, interval: float, timeout: float, provider: str, sleep: Callable[[float], None] = time.sleep
) -> T:
    """Call `check` every `interval` seconds until it returns something; ProviderError("provider_timeout")
    once `timeout` seconds have passed. One check may overrun the deadline by its own retries."""
    deadline = time.monotonic() + timeout
    while True:
        result = check()
        if result is not None:
            return result
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise ProviderError("provider_timeout", f"{provider} did not finish within {timeout:g} s", retryable=True)
        sleep(min(interval, remaining))
