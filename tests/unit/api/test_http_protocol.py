"""The API's HTTP protocol: what a connection writes in one turn of the event loop leaves in one write, and
nothing is held back from a stream or lost at a close."""

from __future__ import annotations

import asyncio
import os
import threading
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from typing import Any

import httpx
import uvicorn

from api.http_protocol import TurnBufferedHttpToolsProtocol, TurnBufferedTransport

Asgi = Callable[[dict[str, Any], Callable[[], Awaitable[dict[str, Any]]], Callable[[dict[str, Any]], Awaitable[None]]], Awaitable[None]]


def messages_written(writes: Callable[[TurnBufferedTransport], None]) -> list[bytes]:
    """What reached the kernel through a real transport, one item per write: a pipe in packet mode keeps their bounds."""
    read_end, write_end = os.pipe2(os.O_DIRECT | os.O_NONBLOCK)

    async def run() -> None:
        loop = asyncio.get_running_loop()
        transport, _ = await loop.connect_write_pipe(asyncio.BaseProtocol, os.fdopen(write_end, "wb", buffering=0))
        writes(TurnBufferedTransport(transport, loop))  # type: ignore[arg-type]
        await asyncio.sleep(0.01)
        transport.close()
        await asyncio.sleep(0)

    asyncio.run(run())
    received = []
    with os.fdopen(read_end, "rb", buffering=0) as pipe:
        while chunk := pipe.read(65536):
            received.append(chunk)
    return received


def test_writes_made_in_one_turn_leave_in_one_send() -> None:
    def head_and_body(transport: TurnBufferedTransport) -> None:
        transport.write(b"HTTP/1.1 202 Accepted\r\ncontent-length: 2\r\n\r\n")
        transport.write(b"{}")

    assert messages_written(head_and_body) == [b"HTTP/1.1 202 Accepted\r\ncontent-length: 2\r\n\r\n{}"]


def test_what_was_written_before_a_close_is_sent_before_it() -> None:
    def answer_then_close(transport: TurnBufferedTransport) -> None:
        transport.write(b"HTTP/1.1 400 Bad Request\r\n")
        transport.write(b"connection: close\r\n\r\n")
        transport.close()

    assert messages_written(answer_then_close) == [b"HTTP/1.1 400 Bad Request\r\nconnection: close\r\n\r\n"]


def test_an_aborted_connection_sends_nothing_it_held() -> None:
    def write_then_abort(transport: TurnBufferedTransport) -> None:
        transport.write(b"half an answer")
        transport.abort()

    assert messages_written(write_then_abort) == []


@contextmanager
def serving(app: Asgi) -> Iterator[str]:
    config = uvicorn.Config(app, host="127.0.0.1", port=0, log_config=None, access_log=False, http=TurnBufferedHttpToolsProtocol)
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    try:
        while not server.started:
            thread.join(0.01)
            assert thread.is_alive(), "uvicorn stopped while starting"
        port = server.servers[0].sockets[0].getsockname()[1]
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(10)


def test_a_streamed_answer_reaches_the_client_chunk_by_chunk() -> None:
    second_chunk_may_go = threading.Event()

    async def stream(scope: dict[str, Any], receive: Any, send: Any) -> None:
        await send({"type": "http.response.start", "status": 200, "headers": [(b"content-type", b"text/event-stream")]})
        await send({"type": "http.response.body", "body": b"data: first\n\n", "more_body": True})
        # The client has to see the first event before the stream goes on: nothing may wait for the end.
        await asyncio.get_running_loop().run_in_executor(None, second_chunk_may_go.wait, 5)
        await send({"type": "http.response.body", "body": b"data: second\n\n", "more_body": False})

    with serving(stream) as url, httpx.stream("GET", url, timeout=5) as response:
        chunks = response.iter_bytes()
        assert next(chunks) == b"data: first\n\n"
        second_chunk_may_go.set()
        assert b"".join(chunks) == b"data: second\n\n"


def test_an_answer_on_a_connection_the_server_closes_arrives_whole() -> None:
    body = b"x" * 300_000  # more than a socket takes at once: the rest leaves after the protocol asks for the close

    async def answer(scope: dict[str, Any], receive: Any, send: Any) -> None:
        await send({"type": "http.response.start", "status": 200, "headers": [(b"content-length", str(len(body)).encode())]})
        await send({"type": "http.response.body", "body": body})

    with serving(answer) as url:
        response = httpx.get(url, headers={"Connection": "close"}, timeout=5)
    assert response.status_code == 200 and response.content == body and response.headers["connection"] == "close"
