"""Random (version 4) UUIDs for the write path, cut from the OS's randomness fetched 4 KiB at a time.

`uuid.uuid4()` makes a system call for every 16 bytes, and CPython lets go of the GIL around it. In the API
process the event loop and the group-commit writer share the GIL, and each is nearly always waiting for it
under load: an id then handed the GIL to the other thread and waited to get it back (py-spy put 3.8% of the
process's samples in `uuid4`, for a request id and a job id a request). The bytes are the same `os.urandom`
bytes, so the ids are as unpredictable; each thread cuts from its own buffer, and a forked child drops the
buffer it inherited rather than repeat its parent's ids."""

from __future__ import annotations

import os
import threading
from uuid import UUID

_FETCH_BYTES = 4096
_UUID_BYTES = 16


class _Randomness(threading.local):
    def __init__(self) -> None:
        self.drop()

    def drop(self) -> None:
        self.fetched = b""
        self.used = 0


_randomness = _Randomness()
os.register_at_fork(after_in_child=_randomness.drop)


def new_id() -> UUID:
    randomness = _randomness
    start = randomness.used
    if start + _UUID_BYTES > len(randomness.fetched):
        randomness.fetched, start = os.urandom(_FETCH_BYTES), 0
    randomness.used = start + _UUID_BYTES
    return UUID(bytes=randomness.fetched[start : start + _UUID_BYTES], version=4)
