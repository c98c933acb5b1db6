"""A shop on loopback for the product page analyser: each test sets what each path answers.

`page` serves HTML (any bytes, any Content-Type), `redirect` a 3xx, `stream` a large body sent in
chunks without a Content-Length (chunked encoding), paced so a client that gives up early is seen
to have done so: `sent[path]` counts the body bytes the server managed to write. Unknown paths 404.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from urllib.parse import parse_qsl, urlsplit

from tests.fakes.servers import FakeServer, Reply, Seen, _Handler


@dataclass(frozen=True)
class Streamed:
    total: int  # body bytes, sent as `chunk`-sized pieces with `pause` seconds between them
    chunk: int = 64 * 1024
    pause: float = 0.002
    content_type: str = "text/html; charset=utf-8"


class ProductSite(FakeServer):
    def __init__(self) -> None:
        super().__init__()
        self._httpd.RequestHandlerClass = _SiteHandler
        self._routes: dict[str, Reply | Streamed] = {}
        self.sent: dict[str, int] = {}

    def page(self, path: str, body: str | bytes, *, content_type: str = "text/html; charset=utf-8", status: int = 200) -> str:
        """Serve `body` at `path` (str bodies are sent as UTF-8); returns the page's URL."""
        content = body.encode() if isinstance(body, str) else body
        self._routes[path] = Reply(status, content, {"Content-Type": content_type})
        return self.url + path

    def redirect(self, path: str, location: str, *, status: int = 302) -> str:
        self._routes[path] = Reply(status, b"", {"Location": location})
        return self.url + path

    def stream(self, path: str, streamed: Streamed) -> str:
        self._routes[path] = streamed
        return self.url + path

    def route(self, request: Seen) -> Reply:
        reply = self._routes.get(request.path)
        if isinstance(reply, Reply):
            return reply
        return Reply(404, b"<html><title>Not found</title></html>", {"Content-Type": "text/html"})

    def streamed(self, path: str) -> Streamed | None:
        reply = self._routes.get(path)
        return reply if isinstance(reply, Streamed) else None


class _SiteHandler(_Handler):
    """The base handler, plus chunked bodies for `Streamed` routes."""

    def handle_one_request(self) -> None:
        try:
            super().handle_one_request()
        except ConnectionResetError:  # the client dropped a kept-alive connection it had stopped reading
            self.close_connection = True

    def _answer(self) -> None:
        fake = self.server.fake
        assert isinstance(fake, ProductSite)
        parts = urlsplit(self.path)
        streamed = fake.streamed(parts.path)
        if streamed is None:
            super()._answer()
            return
        headers = {k.lower(): v for k, v in self.headers.items()}
        seen = Seen(self.command, parts.path, dict(parse_qsl(parts.query)), headers, b"", time.monotonic())
        with fake._lock:
            fake.requests.append(seen)
        fake.sent[parts.path] = 0
        try:
            self.send_response(200)
            self.send_header("Content-Type", streamed.content_type)
            self.send_header("Transfer-Encoding", "chunked")
            self.end_headers()
            piece = b"<p>" + b"x" * (streamed.chunk - 7) + b"</p>"
            while fake.sent[parts.path] < streamed.total:
                self.wfile.write(b"%x\r\n%s\r\n" % (len(piece), piece))
                fake.sent[parts.path] += len(piece)
                if fake._stopping.wait(streamed.pause):
                    break
            self.wfile.write(b"0\r\n\r\n")
        except (BrokenPipeError, ConnectionResetError):
            self.close_connection = True  # the client stopped reading
