"""Single-flight: concurrent calls for the same key in this process share one call and its outcome.

A token refresh must not run twice at once for one connection: with rotating refresh tokens (X) the
second call would spend a token the first has just revoked. Across processes the connection
aggregate's version check decides; within one, `SingleFlight.run(connection_id, refresh)` does.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Hashable
from concurrent.futures import Future
from typing import Generic, TypeVar

T = TypeVar("T")


class SingleFlight(Generic[T]):
    """The first caller for a key runs the call; callers arriving while it runs wait for its result
    (or its exception). A call that has finished is forgotten: the next caller starts a new one."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._flights: dict[Hashable, Future[T]] = {}

    def run(self, key: Hashable, call: Callable[[], T]) -> T:
        with self._lock:
            flight = self._flights.get(key)
            leader = flight is None
            if flight is None:
                flight = self._flights[key] = Future()
        if not leader:
            return flight.result()
        try:
            result = call()
        except BaseException as error:
            flight.set_exception(error)
            raise
        finally:
            with self._lock:
                del self._flights[key]
        flight.set_result(result)
        return result

    def in_flight(self, key: Hashable) -> bool:
        with self._lock:
            return key in self._flights
