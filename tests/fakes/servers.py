"""The base of the provider fakes: a real HTTP server on 127.0.0.1 in a thread, scriptable per test.

A subclass answers like the provider's documented API in `route`; a test then scripts faults on
top, matched by method and an fnmatch path pattern, for a number of requests or forever:
`rate_limit` (429 + Retry-After), `fail` (a status, 500 by default), `stall` (answer late, after
the client's read timeout), `accept_then_stall` (do the work, then answer too late: a post the
provider accepted whose answer never reached the client) and `malformed` (a body that is not the
JSON promised). Every request is recorded in `requests` before any fault applies, so tests can count
attempts. A subclass gives its platform's error shapes by overriding `rate_limited_reply` and
`failure_reply`.
"""

from __future__ import annotations

import email.parser
import email.policy
import json
import struct
import threading
import time
import zlib
from dataclasses import dataclass, field
from fnmatch import fnmatchcase
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Self
from urllib.parse import parse_qsl, urlsplit


@dataclass(frozen=True)
class Seen:
    """One request as the fake received it."""

    method: str
    path: str
    query: dict[str, str]
    headers: dict[str, str]  # names lower-cased
    body: bytes
    at: float  # time.monotonic() on arrival

    def json(self) -> Any:
        return json.loads(self.body)

    def form(self) -> dict[str, Part]:
        """The fields of a multipart/form-data body by name (empty for any other body)."""
        content_type = self.headers.get("content-type", "")
        if not content_type.startswith("multipart/form-data"):
            return {}
        head = f"Content-Type: {content_type}\r\nMIME-Version: 1.0\r\n\r\n".encode()
        message = email.parser.BytesParser(policy=email.policy.HTTP).parsebytes(head + self.body)
        fields: dict[str, Part] = {}
        for part in message.iter_parts():
            name = part.get_param("name", header="content-disposition")
            if isinstance(name, str):
                content = part.get_payload(decode=True)
                fields[name] = Part(part.get_filename(), part.get_content_type(), content if isinstance(content, bytes) else b"")
        return fields


@dataclass(frozen=True)
class Part:
    """One field of a multipart/form-data body."""

    filename: str | None
    content_type: str
    content: bytes

    @property
    def text(self) -> str:
        return self.content.decode()


@dataclass
class Reply:
    status: int = 200
    body: bytes = b""
    headers: dict[str, str] = field(default_factory=dict)

    @classmethod
    def json(cls, value: Any, status: int = 200, headers: dict[str, str] | None = None) -> Reply:
        return cls(status, json.dumps(value).encode(), {"Content-Type": "application/json", **(headers or {})})


@dataclass
class _Fault:
    method: str
    pattern: str
    times: int | None  # None: every matching request
    reply: Reply | None = None  # None: the normal answer (after `stall` seconds)
    stall: float = 0.0
    route_first: bool = False  # run the normal route (its side effects happen), then stall


class FakeServer:
    """Start with `with FakeServer() as fake:` (or start()/stop()); `url` is its base URL."""

    def __init__(self) -> None:
        self.requests: list[Seen] = []
        self._faults: list[_Fault] = []
        self._lock = threading.Lock()
        self._stopping = threading.Event()
        self._httpd = _Server(("127.0.0.1", 0), _Handler)
        self._httpd.fake = self
        self._thread = threading.Thread(target=self._httpd.serve_forever, kwargs={"poll_interval": 0.01}, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._httpd.server_address[1]}"

    def start(self) -> Self:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stopping.set()  # wakes stalled handlers
        self._httpd.shutdown()
        self._httpd.server_close()
        self._thread.join(timeout=5)

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # --- scripting -----------------------------------------------------------------------------

    def rate_limit(self, method: str, pattern: str, *, retry_after: str = "1", times: int | None = 1) -> None:
        self._add(_Fault(method, pattern, times, self.rate_limited_reply(retry_after)))

    def fail(self, method: str, pattern: str, *, status: int = 500, times: int | None = None, body: Any = None) -> None:
        reply = Reply.json(body, status) if body is not None else self.failure_reply(status)
        self._add(_Fault(method, pattern, times, reply))

    def stall(self, method: str, pattern: str, *, seconds: float = 3.0, times: int | None = None) -> None:
        self._add(_Fault(method, pattern, times, stall=seconds))

    def accept_then_stall(self, method: str, pattern: str, *, seconds: float = 3.0, times: int | None = 1) -> None:
        """Do what the request asks (a post is stored), then hold the answer `seconds`: past the client's read timeout."""
        self._add(_Fault(method, pattern, times, stall=seconds, route_first=True))

    def malformed(self, method: str, pattern: str, *, body: bytes = b'{"oops": [1, 2', times: int | None = None) -> None:
        self._add(_Fault(method, pattern, times, Reply(200, body, {"Content-Type": "application/json"})))

    def seen(self, method: str | None = None, pattern: str = "*") -> list[Seen]:
        with self._lock:
            return [r for r in self.requests if (method is None or r.method == method) and fnmatchcase(r.path, pattern)]

    def reset(self) -> None:
        """Forgets the scripted faults and the requests seen, for the next test of a shared fake."""
        with self._lock:
            self._faults.clear()
            self.requests.clear()

    def _add(self, fault: _Fault) -> None:
        with self._lock:
            self._faults.append(fault)

    # --- for subclasses ------------------------------------------------------------------------

    def route(self, request: Seen) -> Reply:
        """The provider's normal answer."""
        raise NotImplementedError

    def rate_limited_reply(self, retry_after: str) -> Reply:
        """The provider's 429 answer asking to wait `retry_after` seconds (OpenAI's shape unless overridden)."""
        error = {"error": {"message": "Rate limit reached, please retry later.", "type": "requests", "code": "rate_limit_exceeded"}}
        return Reply.json(error, 429, {"Retry-After": retry_after})

    def failure_reply(self, status: int) -> Reply:
        """The provider's answer for a server error of `status` (OpenAI's shape unless overridden)."""
        return Reply.json({"error": {"message": "The server had an error processing your request."}}, status)

    def _serve(self, request: Seen) -> Reply:
        with self._lock:
            self.requests.append(request)
            fault = next(
                (f for f in self._faults if f.method == request.method and fnmatchcase(request.path, f.pattern) and f.times != 0),
                None,
            )
            if fault is not None and fault.times is not None:
                fault.times -= 1
        if fault is not None and fault.route_first:
            reply = self.route(request)
            self._stopping.wait(fault.stall)
            return reply
        if fault is not None and fault.stall:
            self._stopping.wait(fault.stall)
        if fault is not None and fault.reply is not None:
            return fault.reply
        return self.route(request)


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    block_on_close = False  # stalled handlers must not hold up stop()
    fake: FakeServer


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True  # headers and body go out in two writes: no 40 ms delayed-ACK stall
    server: _Server

    def do_GET(self) -> None:
        self._answer()

    def do_POST(self) -> None:
        self._answer()

    def do_PUT(self) -> None:
        self._answer()

    def do_DELETE(self) -> None:
        self._answer()

    def do_PATCH(self) -> None:
        self._answer()

    def _answer(self) -> None:
        parts = urlsplit(self.path)
        length = int(self.headers.get("Content-Length") or 0)
        request = Seen(
            method=self.command,
            path=parts.path,
            query=dict(parse_qsl(parts.query)),
            headers={k.lower(): v for k, v in self.headers.items()},
            body=self.rfile.read(length) if length else b"",
            at=time.monotonic(),
        )
        reply = self.server.fake._serve(request)
        try:
            self.send_response(reply.status)
            for name, value in reply.headers.items():
                self.send_header(name, value)
            self.send_header("Content-Length", str(len(reply.body)))
            self.end_headers()
            self.wfile.write(reply.body)
        except (BrokenPipeError, ConnectionResetError):
            self.close_connection = True  # the client gave up (read timeout)

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 (the stdlib's name)
        pass


def tiny_png(width: int, height: int) -> bytes:
    """A valid 1-bit greyscale PNG of that size (small even at 1792x1024)."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    row = b"\x00" + b"\xff" * ((width + 7) // 8)
    header = struct.pack(">IIBBBBB", width, height, 1, 0, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(row * height)) + chunk(b"IEND", b"")


def tiny_mp4() -> bytes:
    """The start of an MP4 file: an ftyp box and a small mdat box."""
    ftyp = b"ftyp" + b"isom" + struct.pack(">I", 0x200) + b"isomiso2avc1mp41"
    mdat = b"mdat" + bytes(range(256)) * 4
    return struct.pack(">I", 4 + len(ftyp)) + ftyp + struct.pack(">I", 4 + len(mdat)) + mdat
