"""uvicorn's httptools protocol, sending what a connection writes in one turn of the event loop as one write.

uvicorn writes a response's head and its body with two `transport.write` calls, and uvloop sends each at once:
two `send` system calls per response, each one a TCP segment that the kernel carries to the client within the
call on loopback, while the API process holds the GIL. Held until the end of the loop's turn, the head and the
body of a response leave in one segment; a stream's later chunks still go out in the turn that wrote them."""

from __future__ import annotations

import asyncio
from typing import Any, cast

import uvicorn
from litestar import Litestar
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol


class TurnBufferedTransport:
    """A transport that holds writes until the end of the event loop's turn, then sends them as one."""

    def __init__(self, transport: asyncio.Transport, loop: asyncio.AbstractEventLoop) -> None:
        self._transport = transport
        self._loop = loop
        self._held: list[bytes] = []

    def write(self, data: bytes | bytearray | memoryview) -> None:
        if not data:
            return
        if not self._held:
            self._loop.call_soon(self.flush)
        self._held.append(bytes(data))

    def writelines(self, lines: Any) -> None:
        for data in lines:
            self.write(data)

    def flush(self) -> None:
        if not self._held:
            return
        data = self._held[0] if len(self._held) == 1 else b"".join(self._held)
        self._held.clear()
        if not self._transport.is_closing():
            self._transport.write(data)

    def get_write_buffer_size(self) -> int:
        return self._transport.get_write_buffer_size() + sum(map(len, self._held))

    def write_eof(self) -> None:
        self.flush()
        self._transport.write_eof()

    def close(self) -> None:
        # What a response wrote before closing (an error answer, a last chunk) is sent before the close.
        self.flush()
        self._transport.close()

    def abort(self) -> None:
        self._held.clear()
        self._transport.abort()

    def __getattr__(self, name: str) -> Any:
        return getattr(self._transport, name)


class TurnBufferedHttpToolsProtocol(HttpToolsProtocol):
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        buffered = TurnBufferedTransport(cast(asyncio.Transport, transport), self.loop)
        super().connection_made(cast(asyncio.Transport, buffered))


def serve(app: Litestar, host: str, port: int) -> None:
    """Serves the app until the process is told to stop: the API, and the write-path bench's bare route alike."""
    # No proxy headers: Pressroom reads neither the client's address nor the scheme (PRESSROOM_PUBLIC_URL says how
    # clients reach it), and checking whether each request came from a trusted proxy cost a twentieth of a request.
    uvicorn.run(app, host=host, port=port, log_config=None, access_log=False, proxy_headers=False, http=TurnBufferedHttpToolsProtocol)
