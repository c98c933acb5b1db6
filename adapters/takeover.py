"""The scheduler's safety net under the publishing workers: a post handed over that no worker has started
within `after` is published by the scheduler itself.

A SIGKILLed worker's partitions wait for its Kafka session to lapse and for the group to rebalance (twice:
once as it leaves, once as its replacement joins), and all that while the posts handed to it would sit
there. Taking them over bounds their lateness by `after` instead. It never doubles a post: the worker
and the scheduler both record `AttemptStarted` against the post's version, so one of them starts it and
the other finds it in flight and leaves it.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timedelta
from uuid import UUID

import structlog

from application.metadata import metadata
from application.ports import Clock
from application.publishing import Publishing
from domain.errors import DomainError

log = structlog.get_logger()


class Takeover:
    def __init__(
        self,
        publishing: Publishing,
        stale_handovers: Callable[[datetime], list[UUID]],
        clock: Clock,
        after: timedelta,
        actor: str,
        threads: int = 4,
    ) -> None:
        self.publishing = publishing
        self.actor = actor
        self.stale_handovers = stale_handovers
        self.clock = clock
        self.after = after
        # A platform answers in its own time; the scheduler's loop must not wait for it.
        self.executor = ThreadPoolExecutor(max_workers=threads, thread_name_prefix="takeover")
        self.taking: set[UUID] = set()
        self.lock = threading.Lock()

    def once(self) -> int:
        """Starts taking over every post handed over more than `after` ago that no worker has started and
        that this process is not already taking over; returns how many it started on."""
        handed_before = self.clock.now() - self.after
        started = 0
        for post_id in self.stale_handovers(handed_before):
            with self.lock:
                if post_id in self.taking:
                    continue
                self.taking.add(post_id)
            self.executor.submit(self._take_over, post_id, handed_before)
            started += 1
        return started

    def _take_over(self, post_id: UUID, handed_before: datetime) -> None:
        try:
            with metadata(actor=self.actor):  # the pool's threads do not inherit the scheduler's context
                outcome = self.publishing.take_over(post_id, handed_before)
            if outcome is not None:
                log.info("post_taken_over", post_id=str(post_id), outcome=outcome)
        except DomainError as error:  # a worker moved it meanwhile
            log.info("post_not_taken_over", post_id=str(post_id), error=error.detail)
        except Exception as error:  # noqa: BLE001 - the next round finds it again if it still waits
            log.error("takeover_failed", post_id=str(post_id), error=repr(error))
        finally:
            with self.lock:
                self.taking.discard(post_id)

    def close(self) -> None:
        """Waits for the platform calls under way: an attempt started here is finished here."""
        self.executor.shutdown(wait=True)
