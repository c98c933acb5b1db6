"""`make bench`, vacuum part: job requests from 32 threads for minutes on an events table of a million
events while autovacuum keeps vacuuming it and an operator's VACUUM runs every few seconds, writers serialised
by the library's EXCLUSIVE table lock and by Pressroom's advisory lock, in one run on one embedded
PostgreSQL; counts the requests slower than 200 ms and the times no request was answered for over 200 ms; appended to docs/BENCHMARKS.md."""

from __future__ import annotations

import argparse
import contextlib
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from uuid import UUID

import psycopg
from eventsourcing.postgres import PostgresApplicationRecorder
from psycopg.sql import SQL, Identifier

from adapters.bootstrap import Container
from adapters.embedded import EmbeddedPostgres
from adapters.eventstore import EventLogRecorder
from adapters.heap import freeze_startup_heap
from adapters.settings import Settings
from api.cli import EMBEDDED_MIN_WAL_MB, EMBEDDED_WAL_INIT_ZERO
from application.pressroom import Pressroom
from bench.account_history import REPORT
from bench.group_commit import CREDITS, STALL_MS, Run, hammer
from bench.job_requests import machine
from bench.rebuild import write_log

OPERATOR_VACUUM = "VACUUM (FREEZE, DISABLE_PAGE_SKIPPING)"  # what an operator runs; autovacuum never cancels it
OPERATOR_VACUUM_EVERY = 10.0

# Autovacuum far more eager than any production setting: a vacuum of the events table every few seconds.
EAGER_AUTOVACUUM = (
    "autovacuum_vacuum_insert_threshold = 2000",
    "autovacuum_vacuum_insert_scale_factor = 0",
    "autovacuum_vacuum_threshold = 2000",
    "autovacuum_vacuum_scale_factor = 0",
    "autovacuum_vacuum_cost_delay = 0",
)


@dataclass(frozen=True)
class Phase:
    lock: str
    vacuum: bool
    run: Run
    vacuums: int
    operator_vacuums: list[float]  # their durations, in seconds


def operator_vacuums(database_url: str, table: str, stop: threading.Event) -> list[float]:
    """Runs the operator's VACUUM of the events table every few seconds until stopped; returns how long each took."""
    took: list[float] = []
    with psycopg.connect(database_url, autocommit=True) as conn:
        while not stop.wait(OPERATOR_VACUUM_EVERY):
            began = time.perf_counter()
            conn.execute(SQL(OPERATOR_VACUUM + " {}").format(Identifier(table)))
            took.append(time.perf_counter() - began)
    return took


def vacuum_count(database_url: str, table: str) -> int:
    with psycopg.connect(database_url) as conn:
        row = conn.execute("SELECT autovacuum_count + vacuum_count FROM pg_stat_user_tables WHERE relname = %s", (table,)).fetchone()
    return int(row[0]) if row else 0


def run_phase(app: Pressroom, url: str, lock: str, as_shipped: bool, seconds: float, vacuum: bool, load: Callable[[float], Run]) -> Phase:
    """`load` for `seconds`, writers writing as eventsourcing ships (its transaction, its EXCLUSIVE table lock) or as
    Pressroom writes, with autovacuum and the operator's VACUUM or without either."""
    recorder = app.recorder
    assert isinstance(recorder, EventLogRecorder)
    table = recorder.events_table_name
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(SQL("ALTER TABLE {} SET (autovacuum_enabled = {})").format(Identifier(table), SQL(str(vacuum).lower())))
    before = vacuum_count(url, table)
    stop = threading.Event()
    vacuuming: list[float] = []
    operator = threading.Thread(target=lambda: vacuuming.extend(operator_vacuums(url, table, stop)))
    if vacuum:
        operator.start()
    with recorder.written_as_shipped() if as_shipped else contextlib.nullcontext():
        run = load(seconds)
    stop.set()
    if vacuum:
        operator.join()
    return Phase(lock, vacuum, run, vacuum_count(url, table) - before, vacuuming)


COLUMNS = (
    "writers serialised by",
    "vacuum",
    "length",
    "req/s",
    "p50",
    "p99",
    "slowest",
    f"requests over {STALL_MS} ms",
    f"stalls over {STALL_MS} ms",
    "longest stall",
    "failed",
    "vacuums of the events table",
)


def render(threads: int, workspaces: int, events: int, phases: list[Phase], host: str) -> str:
    rows = "\n".join(
        f"| {p.lock} | {'yes' if p.vacuum else '**none** (baseline)'} | {p.run.seconds:.0f} s | {p.run.per_second:,.0f} | "
        f"{p.run.p50_ms:.1f} ms | {p.run.p99_ms:.1f} ms | "
        f"{p.run.max_ms:,.0f} ms | {p.run.slow} | **{p.run.stalls}** | **{p.run.longest_stall_ms:,.0f} ms** | {p.run.errors} | {p.vacuums} "
        f"({len(p.operator_vacuums)} operator's, {sum(p.operator_vacuums) / max(len(p.operator_vacuums), 1):.1f} s each) |"
        for p in phases
    )
    return f"""
## Write stalls while autovacuum runs

Command: `make bench`, which runs `python -m bench.vacuum_stalls`. Machine: {host}.

`request_job` (group commit on) from {threads} threads over {workspaces} workspaces, in process, on an events table
that holds {events:,} events, while autovacuum, set far more eagerly than in production ({", ".join(EAGER_AUTOVACUUM)},
naptime 1 s, `min_wal_size` {EMBEDDED_MIN_WAL_MB} MB), vacuums the events table again and again, and an operator's
`{OPERATOR_VACUUM}` of it starts every {OPERATOR_VACUUM_EVERY:.0f} s; and, first, a baseline with no vacuum at all
(autovacuum off for the events table, no operator's VACUUM): requests that take over {STALL_MS} ms there are the
machine's, not vacuum's. The same database, one phase after the other. A *stall* is a time over {STALL_MS} ms in which
no caller was answered, though all {threads} were waiting: the write path committed nothing. A slow request need not
be a stall: it may wait behind others' batches, or for its thread to be scheduled among {threads + 1} in one process.

| {" | ".join(COLUMNS)} |
|{" --- |" * len(COLUMNS)}
{rows}

A vacuum holds the table in SHARE UPDATE EXCLUSIVE mode, which conflicts with the EXCLUSIVE mode the library
takes for each write: a writer waits until `deadlock_timeout` (1 s) passes and autovacuum is cancelled, and it
waits all of a vacuum that is never cancelled: an operator's, or an anti-wraparound autovacuum. The advisory lock
orders writers the same way and conflicts with no table lock. Compare its slow requests with the baseline's: what
vacuum adds with it is its share of the machine (its CPU and I/O), which PostgreSQL and the callers share.

The process freezes its startup heap, as the API process does (`adapters/heap.py`), and the callers keep their
answers in objects the garbage collector does not track. Before that, the longest stalls (0.5 s in the baseline,
2.6 s and 4.5 s in the longer phases after it, growing with the process's heap) were the garbage collector's full
collections, which stop every thread: sampling `pg_stat_activity` through them found no write waiting in
PostgreSQL. Sampled runs of 150 s with the advisory lock and vacuum then found, one fix at a time: a commit waiting
while PostgreSQL created and synced a new WAL segment (`WalInitSync`) in a vacuum's burst of WAL, which
`min_wal_size` = {EMBEDDED_MIN_WAL_MB} MB (set here as `pressroom up` sets it) prevents by keeping segments for reuse;
a 200 ms full collection of the callers' answers, which were still tracked; and 285 ms of commits waiting to write
WAL (`WALWrite`) while the checkpointer synced data files (`DataFileSync`) to the same disk, which is the machine's.
A sampled 300 s run with vacuum then timed the process's full collections: each of the 32 times over 100 ms with
no answer was one, from ~95 ms at 2 minutes to 206 ms at 5, though none collected anything. The bench's own record of the run
was what they walked, a list item for each request's latency, answer time and answer, millions by then. Kept in
arrays (and no answers here), the longest full collection took 2.4 ms in the same run, nothing stalled, and the
longest times with no answer (113 and 103 ms) were commits syncing WAL (`WalSync`) while the checkpointer synced
data files. The API process keeps no such record: its tracked objects stay level under load (84,199 before and
84,361 after 106,697 requests).
"""


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.vacuum_stalls", description=__doc__)
    parser.add_argument("--threads", type=int, default=32)
    parser.add_argument("--workspaces", type=int, default=64)
    parser.add_argument("--seconds", type=float, default=300.0, help="length of the advisory-lock phase")
    parser.add_argument("--library-seconds", type=float, default=120.0, help="length of the table-lock phase")
    parser.add_argument("--baseline-seconds", type=float, default=60.0, help="length of the phase without vacuum")
    parser.add_argument("--events", type=int, default=1_000_000, help="events in the log before the phases")
    args = parser.parse_args(argv)
    host = machine()
    with tempfile.TemporaryDirectory(prefix="pressroom-bench-") as work_dir, EmbeddedPostgres(Path(work_dir), delete_on_close=True) as pg:
        with psycopg.connect(pg.url, autocommit=True) as conn:
            conn.execute("ALTER SYSTEM SET autovacuum_naptime = '1s'")
            conn.execute(f"ALTER SYSTEM SET min_wal_size = '{EMBEDDED_MIN_WAL_MB}MB'")  # as `pressroom up` sets them
            conn.execute(f"ALTER SYSTEM SET wal_init_zero = '{EMBEDDED_WAL_INIT_ZERO}'")
            conn.execute("SELECT pg_reload_conf()")
        container = Container(Settings(database_url=pg.url, group_commit=True, db_pool_size=args.threads))
        try:
            container.migrate()
            app = container.app
            recorder = app.recorder
            assert isinstance(recorder, PostgresApplicationRecorder)
            table = recorder.events_table_name
            with psycopg.connect(pg.url, autocommit=True) as conn:
                conn.execute(SQL("ALTER TABLE {} SET ({})").format(Identifier(table), SQL(", ".join(EAGER_AUTOVACUUM))))
            events = write_log(app, pg.url, args.events)
            workspace_ids = [app.create_workspace(f"Bench {n}")[0].id for n in range(args.workspaces)]
            for workspace_id in workspace_ids:
                app.top_up(workspace_id, CREDITS, "bench")

            def spread(thread: int, n: int) -> tuple[UUID, str | None]:
                return workspace_ids[(thread + n * args.threads) % len(workspace_ids)], None

            freeze_startup_heap()  # as the API process does once it has started
            hammer(app.request_job, args.threads, 2.0, spread)  # warm-up: connections, caches

            def load(seconds: float) -> Run:
                return hammer(app.request_job, args.threads, seconds, spread, keep_answers=False)

            phases = [
                run_phase(app, pg.url, lock, as_shipped, seconds, vacuum, load)
                for lock, as_shipped, seconds, vacuum in (
                    ("Pressroom's advisory lock", False, args.baseline_seconds, False),
                    ("the library's EXCLUSIVE table lock", True, args.library_seconds, True),
                    ("Pressroom's advisory lock", False, args.seconds, True),
                )
            ]
        finally:
            container.close()
    section = render(args.threads, args.workspaces, events, phases, host)
    with REPORT.open("a") as report:
        report.write(section)
    print(section)  # noqa: T201 - the bench's answer


if __name__ == "__main__":
    main()
