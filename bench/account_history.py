"""`make bench`, second part: job-request latency on a workspace whose credit account already has
100,000 ledger events, against a fresh workspace, in one run; appended to docs/BENCHMARKS.md."""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from uuid import UUID, uuid4

from adapters.bootstrap import Container
from adapters.embedded import EmbeddedPostgres
from adapters.settings import Settings

ROOT = Path(__file__).resolve().parents[1]
REPORT = ROOT / "docs" / "BENCHMARKS.md"
BRIEF: dict[str, Any] = {"product": {"name": "Bench Lamp"}, "count": 1}
EVENTS_PER_SAVE = 100  # larger pipelined inserts were seen to hang psycopg (socket buffers full both ways)


@dataclass(frozen=True)
class Latency:
    cold_ms: float
    p50_ms: float
    p99_ms: float


def timed(action: Callable[[], object]) -> float:
    start = time.perf_counter()
    action()
    return (time.perf_counter() - start) * 1000


def build_history(container: Container, workspace_id: UUID, events: int) -> None:
    """Debits recorded straight on the account, many per transaction: the history a busy workspace builds."""
    container.app.top_up(workspace_id, events + 1_000_000, "bench-history")
    written = 0
    while written < events:
        account = container.app.credit_account(workspace_id)
        for _ in range(min(EVENTS_PER_SAVE, events - written)):
            account.debit(uuid4(), 1, "copy")
        written += len(account.pending_events)
        container.app.save(account)


def measure(settings: Settings, workspace_id: UUID, warm_up_id: UUID, requests: int) -> Latency:
    """The workspace's first request in a new process (its account not cached; connections already
    open from a request on another workspace), then `requests` more one after another."""
    container = Container(settings)
    try:
        container.app.request_job(warm_up_id, "copy", BRIEF, 1)
        cold = timed(lambda: container.app.request_job(workspace_id, "copy", BRIEF, 1))
        samples = sorted(timed(lambda: container.app.request_job(workspace_id, "copy", BRIEF, 1)) for _ in range(requests))
    finally:
        container.close()
    return Latency(cold_ms=cold, p50_ms=statistics.median(samples), p99_ms=samples[int(len(samples) * 0.99) - 1])


def render(events: int, requests: int, fresh: Latency, busy: Latency) -> str:
    rows = [
        ("first request in a new process", fresh.cold_ms, busy.cold_ms),
        (f"p50 of {requests} requests", fresh.p50_ms, busy.p50_ms),
        (f"p99 of {requests} requests", fresh.p99_ms, busy.p99_ms),
    ]
    table = "\n".join(f"| {name} | {a:.1f} ms | {b:.1f} ms | {b / a:.2f}× |" for name, a, b in rows)
    return f"""
## Job-request latency with a long credit history

Command: `make bench`, which also runs `python -m bench.account_history --events {events} --requests {requests}`
(in-process, on its own embedded PostgreSQL: the application's `request_job`, no HTTP, no workers).

| measurement (one request at a time) | fresh workspace | workspace with {events:,} prior ledger events | ratio |
| --- | --- | --- | --- |
{table}

A load reads the account's latest snapshot (one every 200 events) and the events after it, then
fast-forwards a cached copy on later requests; what each job was charged lives with the job, so the
account's state does not grow with its history. The target is a ratio within 1.5×.
"""


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.account_history", description=__doc__)
    parser.add_argument("--events", type=int, default=100_000, help="ledger events on the busy workspace's account")
    parser.add_argument("--requests", type=int, default=300, help="sequential job requests measured per workspace")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="pressroom-bench-") as work_dir, EmbeddedPostgres(Path(work_dir), delete_on_close=True) as pg:
        settings = Settings(database_url=pg.url)
        container = Container(settings)
        try:
            container.migrate()
            fresh_id = container.app.create_workspace("Fresh")[0].id
            container.app.top_up(fresh_id, 1_000_000, "bench")
            busy_id = container.app.create_workspace("Busy")[0].id
            warm_up_id = container.app.create_workspace("Warm-up")[0].id
            build_history(container, busy_id, args.events)
        finally:
            container.close()
        fresh = measure(settings, fresh_id, warm_up_id, args.requests)
        busy = measure(settings, busy_id, warm_up_id, args.requests)
    section = render(args.events, args.requests, fresh, busy)
    with REPORT.open("a") as report:
        report.write(section)
    print(section)  # noqa: T201 - the bench's answer


if __name__ == "__main__":
    main()
