"""The shared outbound HTTP helper against a real loopback server: retries, timeouts, errors, the address guard."""

from __future__ import annotations

import socket
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime

import httpx
import pytest

from adapters.outbound_http import Outbound, backoff_delay, check_url, make_client, provider_message, retry_after_seconds, send
from application.ports import ProviderError
from tests.fakes import FakeServer, Reply, Seen
from tests.integration.providers.conftest import fast_options


class PlainFake(FakeServer):
    """Answers {"ok": true} to GET /thing, a 100-byte file at /file, 404 elsewhere."""

    def route(self, request: Seen) -> Reply:
        if request.path == "/thing":
            return Reply.json({"ok": True})
        if request.path == "/file":
            return Reply(200, b"x" * 100, {"Content-Type": "application/octet-stream"})
        return Reply.json({"error": {"message": f"No route {request.path}"}}, 404)


@pytest.fixture
def fake() -> Iterator[PlainFake]:
    with PlainFake() as server:
        yield server


RequestFn = Callable[[httpx.Client], httpx.Response]


def get(path: str, fake: PlainFake) -> RequestFn:
    return lambda client: client.get(f"{fake.url}{path}")


def fast_send(client: httpx.Client, request_fn: RequestFn, attempts: int = 3) -> httpx.Response:
    return send(client, request_fn, attempts=attempts, backoff=0.01, max_backoff=0.05, retry_after_cap=5.0, provider="fake")


def test_answering_server_when_sent_then_returns_the_response(fake: PlainFake) -> None:
    with make_client(allow_private=True) as client:
        response = fast_send(client, get("/thing", fake))
    assert response.json() == {"ok": True}
    assert fake.seen("GET", "/thing")[0].headers["user-agent"].startswith("pressroom/")


def test_rate_limited_once_with_retry_after_when_sent_then_waits_and_succeeds(fake: PlainFake) -> None:
    fake.rate_limit("GET", "/thing", retry_after="1", times=1)
    with make_client(allow_private=True) as client:
        started = time.monotonic()
        response = fast_send(client, get("/thing", fake))
    seen = fake.seen("GET", "/thing")
    assert response.status_code == 200
    assert len(seen) == 2
    assert seen[1].at - seen[0].at >= 0.95
    assert time.monotonic() - started < 3


def test_rate_limited_always_when_sent_then_rate_limited_retryable(fake: PlainFake) -> None:
    fake.rate_limit("GET", "/thing", retry_after="0", times=None)
    with make_client(allow_private=True) as client, pytest.raises(ProviderError) as caught:
        fast_send(client, get("/thing", fake), attempts=2)
    assert (caught.value.code, caught.value.retryable) == ("rate_limited", True)
    assert "Rate limit reached" in caught.value.message
    assert len(fake.seen("GET", "/thing")) == 2


def test_server_error_always_when_sent_then_provider_unavailable_after_all_attempts(fake: PlainFake) -> None:
    fake.fail("GET", "/thing", status=503)
    with make_client(allow_private=True) as client, pytest.raises(ProviderError) as caught:
        fast_send(client, get("/thing", fake), attempts=4)
    assert (caught.value.code, caught.value.retryable) == ("provider_unavailable", True)
    assert len(fake.seen("GET", "/thing")) == 4


def test_stalled_server_when_sent_then_provider_timeout(fake: PlainFake) -> None:
    fake.stall("GET", "/thing", seconds=3)
    with make_client(read_timeout=0.2, allow_private=True) as client:
        started = time.monotonic()
        with pytest.raises(ProviderError) as caught:
            fast_send(client, get("/thing", fake), attempts=2)
    assert (caught.value.code, caught.value.retryable) == ("provider_timeout", True)
    assert len(fake.seen("GET", "/thing")) == 2
    assert time.monotonic() - started < 1.5


def test_client_error_when_sent_then_provider_rejected_with_its_message_and_no_retry(fake: PlainFake) -> None:
    with make_client(allow_private=True) as client, pytest.raises(ProviderError) as caught:
        fast_send(client, get("/missing", fake))
    assert (caught.value.code, caught.value.retryable) == ("provider_rejected", False)
    assert "No route /missing" in caught.value.message
    assert "404" in caught.value.message
    assert len(fake.requests) == 1


def test_closed_port_when_sent_then_provider_unavailable_after_all_attempts() -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    with make_client(connect_timeout=0.5, allow_private=True) as client, pytest.raises(ProviderError) as caught:
        fast_send(client, lambda c: c.get(f"http://127.0.0.1:{port}/"), attempts=2)
    assert (caught.value.code, caught.value.retryable) == ("provider_unavailable", True)


def test_loopback_url_when_private_not_allowed_then_refused_before_connecting(fake: PlainFake) -> None:
    with make_client(allow_private=False) as client, pytest.raises(ProviderError) as caught:
        fast_send(client, get("/thing", fake))
    assert (caught.value.code, caught.value.retryable) == ("url_not_allowed", False)
    assert fake.requests == []


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1/",
        "http://localhost:8080/x",
        "http://10.1.2.3/",
        "http://172.16.0.1/",
        "http://192.168.1.10/",
        "http://169.254.169.254/latest/meta-data/",
        "http://100.64.0.1/",
        "http://0.0.0.0/",
        "http://[::1]/",
        "http://[fe80::1]/",
        "http://[fd00::1]/",
        "http://[::ffff:127.0.0.1]/",
        "http://224.0.0.1/",
    ],
)
def test_private_loopback_or_link_local_url_when_checked_then_url_not_allowed(url: str) -> None:
    with pytest.raises(ProviderError) as caught:
        check_url(url)
    assert (caught.value.code, caught.value.retryable) == ("url_not_allowed", False)
    check_url(url, allow_private=True)


@pytest.mark.parametrize("url", ["http://8.8.8.8/", "https://1.1.1.1:8443/x", "https://[2606:4700:4700::1111]/"])
def test_public_address_when_checked_then_allowed(url: str) -> None:
    check_url(url)


@pytest.mark.parametrize("url", ["file:///etc/passwd", "ftp://8.8.8.8/x", "gopher://8.8.8.8/"])
def test_non_http_scheme_when_checked_then_refused_even_with_private_allowed(url: str) -> None:
    with pytest.raises(ProviderError) as caught:
        check_url(url, allow_private=True)
    assert caught.value.code == "url_not_allowed"


def test_retry_after_in_seconds_or_http_date_when_parsed_then_seconds_to_wait() -> None:
    now = datetime(2026, 11, 22, 12, 0, 0, tzinfo=UTC)
    assert retry_after_seconds("1") == 1.0
    assert retry_after_seconds(" 2.5 ") == 2.5
    assert retry_after_seconds("Sun, 22 Nov 2026 12:00:30 GMT", now=now) == 30.0
    assert retry_after_seconds("Sun, 22 Nov 2026 11:00:00 GMT", now=now) == 0.0
    assert retry_after_seconds("-5") == 0.0
    for unreadable in (None, "", "soon", "nan", "inf"):
        assert retry_after_seconds(unreadable) is None


def test_backoff_when_computed_then_exponential_with_jitter_capped_and_retry_after_capped() -> None:
    for attempt, ceiling in ((1, 0.5), (2, 1.0), (3, 2.0), (6, 8.0), (10, 8.0)):
        delays = [backoff_delay(attempt, backoff=0.5, max_backoff=8.0) for _ in range(50)]
        assert all(ceiling / 2 <= d <= ceiling for d in delays)
        assert len(set(delays)) > 1
    assert 1.0 <= backoff_delay(1, backoff=0.5, max_backoff=8.0, retry_after=1.0) <= 1.5
    assert 30.0 <= backoff_delay(1, backoff=0.5, max_backoff=8.0, retry_after=3600, retry_after_cap=30.0) <= 30.5


def test_provider_error_bodies_when_read_then_human_message() -> None:
    assert provider_message(b'{"error": {"message": "Bad key", "code": "x"}}') == "Bad key"
    assert provider_message(b'{"detail": "Not allowed"}') == "Not allowed"
    assert provider_message(b'{"detail": [{"loc": ["body"], "msg": "field required"}]}') == "field required"
    assert provider_message(b'{"message": "Unauthorized", "code": 400112}') == "Unauthorized"
    assert provider_message(b"<html>Bad gateway</html>") == "<html>Bad gateway</html>"
    assert provider_message(b"", "Bad Request") == "Bad Request"
    assert len(provider_message(b"x" * 5000)) == 300


def test_download_larger_than_limit_when_fetched_then_provider_output_too_large(fake: PlainFake) -> None:
    http = Outbound(fast_options(), provider="fake")
    try:
        content, content_type = http.download(f"{fake.url}/file", max_bytes=100)
        assert (len(content), content_type) == (100, "application/octet-stream")
        with pytest.raises(ProviderError) as caught:
            http.download(f"{fake.url}/file", max_bytes=99)
    finally:
        http.close()
    assert (caught.value.code, caught.value.retryable) == ("provider_output_too_large", False)


def test_malformed_json_when_called_then_provider_malformed_response_not_retryable(fake: PlainFake) -> None:
    fake.malformed("GET", "/thing")
    http = Outbound(fast_options(), provider="fake")
    try:
        with pytest.raises(ProviderError) as caught:
            http.call("GET", f"{fake.url}/thing", dict)
    finally:
        http.close()
    assert (caught.value.code, caught.value.retryable) == ("provider_malformed_response", False)
    assert len(fake.requests) == 1
