"""Ids for the write path: random version 4 UUIDs, never repeated across threads or a fork."""

from __future__ import annotations

import os
import threading
from uuid import UUID

from application.ids import new_id


def test_ids_then_each_is_a_random_version_4_uuid_and_none_repeats() -> None:
    ids = [new_id() for _ in range(5000)]  # several refills of the buffer

    assert len(set(ids)) == len(ids)
    assert {i.version for i in ids} == {4}
    assert {i.variant for i in ids} == {"specified in RFC 4122"}


def test_threads_make_ids_at_once_then_none_repeats() -> None:
    made: list[list[UUID]] = [[] for _ in range(4)]
    threads = [threading.Thread(target=lambda out=out: out.extend(new_id() for _ in range(3000))) for out in made]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    every = [i for out in made for i in out]
    assert len(set(every)) == len(every) == 12_000


def test_process_forks_mid_buffer_then_the_child_does_not_repeat_the_parents_next_ids() -> None:
    new_id()  # the buffer is filled, and most of it is still to be used
    read, write = os.pipe()
    child = os.fork()
    if child == 0:  # pragma: no cover - the child process
        os.close(read)
        os.write(write, b"".join(new_id().bytes for _ in range(10)))
        os._exit(0)
    os.close(write)
    with os.fdopen(read, "rb") as pipe:
        from_child = pipe.read()
    os.waitpid(child, 0)
    parents = {new_id() for _ in range(10)}

    childs = {UUID(bytes=from_child[i : i + 16]) for i in range(0, len(from_child), 16)}
    assert len(childs) == 10
    assert not parents & childs
