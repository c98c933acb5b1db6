"""Wakes waiting coroutines when events are recorded: one LISTEN connection per process, on the channel
the event store already notifies on every insert, instead of every live stream polling the database."""

from __future__ import annotations

import asyncio
import threading

import psycopg
import structlog
from psycopg import sql

log = structlog.get_logger()


class EventNotifier:
    def __init__(self, database_url: str, channel: str) -> None:
        self.database_url = database_url
        self.channel = channel
        self._waiters: set[tuple[asyncio.AbstractEventLoop, asyncio.Event]] = set()
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._listen, name="event-notifier", daemon=True)
        self._thread.start()

    async def wait(self, timeout: float) -> bool:
        """Until the next recorded event, or `timeout` seconds; True when an event woke it."""
        waiter = (asyncio.get_running_loop(), asyncio.Event())
        with self._lock:
            self._waiters.add(waiter)
        try:
            await asyncio.wait_for(waiter[1].wait(), timeout)
            return True
        except TimeoutError:
            return False
        finally:
            with self._lock:
                self._waiters.discard(waiter)

    def _wake_all(self) -> None:
        with self._lock:
            waiters = list(self._waiters)
        for loop, event in waiters:
            loop.call_soon_threadsafe(event.set)

    def _listen(self) -> None:
        while not self._stop.is_set():
            try:
                with psycopg.connect(self.database_url, autocommit=True) as conn:
                    conn.execute(sql.SQL("LISTEN {}").format(sql.Identifier(self.channel)))
                    while not self._stop.is_set():
                        if any(True for _ in conn.notifies(timeout=1.0, stop_after=1)):
                            self._wake_all()
            except psycopg.Error as error:
                # Waiters fall back to their timeouts meanwhile.
                log.warning("event_notifier_reconnecting", error=repr(error))
                self._stop.wait(1.0)

    def close(self) -> None:
        self._stop.set()
