"""The startup heap is frozen: a full collection no longer scans what the process built before serving."""

from __future__ import annotations

import gc

from adapters.heap import freeze_startup_heap


def test_what_the_process_built_before_serving_is_frozen_and_its_garbage_freed() -> None:
    built = [{"route": n} for n in range(50_000)]
    garbage: list[object] = []
    garbage.append(garbage)  # a cycle only a collection frees
    collected_before = sum(stats["collected"] for stats in gc.get_stats())
    del garbage
    try:
        freeze_startup_heap()

        assert gc.get_freeze_count() >= len(built)
        assert sum(stats["collected"] for stats in gc.get_stats()) > collected_before
    finally:
        gc.unfreeze()
