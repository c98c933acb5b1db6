"""Snapshots taken in a thread of their own, after the saves that call for them have been answered.

Taking one reads the aggregate back at the snapshot's version, which replays up to a snapshot interval of
events: work that no caller of a command (and no batch of the group commit) should wait for. A snapshot only
shortens later loads, so one that fails, or that is dropped because the queue is full or the process stops,
costs nothing but a longer load until the aggregate's next interval."""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable
from uuid import UUID

import structlog

log = structlog.get_logger()

MAX_WAITING = 1000


class Snapshotter:
    def __init__(self, take: Callable[[UUID, int], None], *, max_waiting: int = MAX_WAITING) -> None:
        self._take = take
        self._due: queue.Queue[tuple[UUID, int] | None] = queue.Queue(max_waiting)
        self._thread: threading.Thread | None = None
        self._starting = threading.Lock()

    def take(self, aggregate_id: UUID, version: int) -> None:
        with self._starting:
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name="snapshotter", daemon=True)
                self._thread.start()
        try:
            self._due.put_nowait((aggregate_id, version))
        except queue.Full:
            log.warning("snapshot_dropped", aggregate_id=str(aggregate_id), version=version)

    def wait(self) -> None:
        """Returns once every snapshot asked for so far has been taken (or has failed)."""
        self._due.join()

    def close(self, timeout: float = 5.0) -> None:
        with self._starting:
            thread, self._thread = self._thread, None
        if thread is not None:
            self._due.put(None)
            thread.join(timeout)

    def _run(self) -> None:
        while (due := self._due.get()) is not None:
            try:
                self._take(*due)
            except Exception as error:  # noqa: BLE001 - the aggregate's next interval takes one again
                log.warning("snapshot_failed", aggregate_id=str(due[0]), version=due[1], error=repr(error))
            finally:
                self._due.task_done()
        self._due.task_done()
