"""Group commit for every command: what concurrent commands save to the event log (a worker's handler threads
starting and completing jobs, the API's threads, a publisher's posts) is written by one thread, several
commands' events in one transaction, so they share one wait for the writers' lock and one commit instead of
queueing on them one by one.

Each command still gets its own answer. Its events are committed whole or not at all, and it is answered
only once they are: a command is never told it saved what was not written. When a group's transaction fails
(most often because one command lost a race for an aggregate version, sometimes to another command of the
same group), nothing of it was written, and each command is written again alone, so only the command that
conflicted or failed sees the error, as it would have without grouping."""

from __future__ import annotations

import threading
from collections import deque
from collections.abc import Callable, Sequence
from concurrent.futures import Future
from dataclasses import dataclass, field

from eventsourcing.persistence import StoredEvent

from application.single_writer import SingleWriter

# One transaction holds the writers' lock for its whole insert, and a group that fails is written again command by
# command: a bound keeps both short. A command with more events than this is written alone.
DEFAULT_MAX_EVENTS = 256

Insert = Callable[[Sequence[StoredEvent]], Sequence[int] | None]


@dataclass(eq=False)
class _Waiting:
    stored_events: Sequence[StoredEvent]
    answer: Future[Sequence[int] | None] = field(default_factory=Future)


@dataclass
class GroupStats:
    """What the writer has done since the process started; each count's help is what /metrics says of it."""

    groups: int = field(default=0, metadata={"help": "Groups of commands' inserts the event log writer wrote, each in one transaction"})
    inserts: int = field(default=0, metadata={"help": "Commands' inserts the event log writer took into groups"})
    split: int = field(default=0, metadata={"help": "Groups whose transaction failed, their commands then written one by one"})


class GroupedInserts(SingleWriter[_Waiting]):
    """Takes `insert` calls from any number of threads and answers each once its events are committed."""

    def __init__(self, insert: Insert, *, max_events: int = DEFAULT_MAX_EVENTS) -> None:
        super().__init__("event-log-writer")
        self._insert = insert
        self.max_events = max_events
        self.stats = GroupStats()
        self._waiting: deque[_Waiting] = deque()

    def insert(self, stored_events: Sequence[StoredEvent]) -> Sequence[int] | None:
        waiting = _Waiting(stored_events)
        with self._ready:
            # Once closed, and in the writer itself, there is no one else to wait for.
            direct = self._closed or threading.current_thread() is self._writer
            if not direct:
                self._waiting.append(waiting)
                self._start_locked()
                self._ready.notify()
        if direct:
            return self._insert(stored_events)
        return waiting.answer.result()

    # The writer; once closed, it writes what is already waiting, and later inserts write for themselves.

    def _count(self) -> int:
        return len(self._waiting)

    def _fail(self, item: _Waiting, error: Exception) -> None:
        if not item.answer.done():
            item.answer.set_exception(error)

    def _take(self) -> list[_Waiting]:
        group = [self._waiting.popleft()]
        events = len(group[0].stored_events)
        while self._waiting and events + len(self._waiting[0].stored_events) <= self.max_events:
            events += len(self._waiting[0].stored_events)
            group.append(self._waiting.popleft())
        return group

    def _write(self, group: list[_Waiting]) -> None:
        self.stats.groups += 1
        self.stats.inserts += len(group)
        if len(group) > 1:
            try:
                ids = self._insert([event for waiting in group for event in waiting.stored_events])
            except Exception:  # noqa: BLE001 - nothing was written; whose failure it was is found below, alone
                self.stats.split += 1
            else:
                start = 0
                for waiting in group:
                    end = start + len(waiting.stored_events)
                    waiting.answer.set_result(None if ids is None else ids[start:end])
                    start = end
                return
        for waiting in group:
            try:
                waiting.answer.set_result(self._insert(waiting.stored_events))
            except Exception as error:  # noqa: BLE001 - the command's own failure, answered to it alone
                waiting.answer.set_exception(error)
