"""One writer thread for many callers: they queue what they want written, and the writer takes what is
waiting, a batch at a time, and answers each of them. Group commit of job requests (application/group_commit.py)
and of every command's inserts (adapters/grouped_inserts.py) are both such a writer."""

from __future__ import annotations

import threading
from abc import ABC, abstractmethod
from typing import Generic, TypeVar

Item = TypeVar("Item")


class SingleWriter(ABC, Generic[Item]):
    def __init__(self, thread_name: str) -> None:
        self._ready = threading.Condition()  # guards the subclass's queue, and wakes the writer
        self._closed = False
        self._writer: threading.Thread | None = None
        self._thread_name = thread_name

    @abstractmethod
    def _count(self) -> int:
        """How many items wait in the queue (the lock is held)."""

    @abstractmethod
    def _take(self) -> list[Item]:
        """The next batch, out of the queue (the lock is held)."""

    @abstractmethod
    def _write(self, batch: list[Item]) -> None:
        """Writes a batch and answers each of its items."""

    @abstractmethod
    def _fail(self, item: Item, error: Exception) -> None:
        """Answers an item of a batch that `_write` left unanswered when it raised."""

    @property
    def waiting(self) -> int:
        """Items queued for the writer, not yet in a batch."""
        return self._count()

    def _start_locked(self) -> None:
        if self._writer is None:
            self._writer = threading.Thread(target=self._run, name=self._thread_name, daemon=True)
            self._writer.start()

    def close(self, timeout: float = 30.0) -> bool:
        """Lets the writer write what is waiting and stop; whether it has stopped within `timeout`."""
        with self._ready:
            self._closed = True
            self._ready.notify_all()
            writer = self._writer
        if writer is not None:
            writer.join(timeout)
        return writer is None or not writer.is_alive()

    def _run(self) -> None:
        while True:
            with self._ready:
                while not self._count() and not self._closed:
                    self._ready.wait()
                if not self._count():
                    return
                batch = self._take()
            try:
                self._write(batch)
            except BaseException as error:  # noqa: BLE001 - whatever happened, nobody may be left waiting
                for item in batch:
                    self._fail(item, error if isinstance(error, Exception) else RuntimeError(repr(error)))
