"""`make bench`, rebuild part: every read model rebuilt from position zero over a log of at least
1,000,000 events, beside a plain scan of the same log in the same run; appended to docs/BENCHMARKS.md.

The log is written straight into the event store (domain objects, the application's own mapper, and
COPY), because making a million events through the API would take most of an hour here. It holds
what busy workspaces make: workspaces, keys, credit accounts, jobs requested, started and completed
or failed and refunded, idempotency keys and webhooks.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from uuid import uuid4

import psycopg
from eventsourcing.domain import Aggregate
from psycopg import sql

from adapters.bootstrap import Container
from adapters.embedded import EmbeddedPostgres
from adapters.settings import Settings
from application.pressroom import Pressroom, fingerprint_of
from domain.api_key import SECRET_PREFIX, ApiKey
from domain.credit_account import CreditAccount
from domain.generation_job import GenerationJob
from domain.idempotency_key import IdempotencyKey
from domain.webhook import Webhook
from domain.workspace import Workspace
from projections.catalog import READ_MODELS
from projections.rebuild import rebuild_all

ROOT = Path(__file__).resolve().parents[1]
REPORT = ROOT / "docs" / "BENCHMARKS.md"
BRIEF: dict[str, Any] = {"product": {"name": "Bench Lamp"}, "count": 1}
VARIANTS = [{"hook": "Light up", "body": "A lamp for every desk.", "cta": "Shop now", "hashtags": ["#lamp"]}]
JOBS_PER_WORKSPACE = 200


def workspace_history(app: Pressroom, jobs: int, now: datetime) -> list[Aggregate]:
    """One workspace's aggregates with their pending events: a job in ten fails and is refunded."""
    workspace_id = uuid4()
    workspace = Workspace.open(workspace_id, "Bench")
    account = CreditAccount.open(workspace_id, "pro", now, app.pricing)
    account.grant("topup", jobs * 10, "bench-topup")
    key = ApiKey.issue(workspace_id, SECRET_PREFIX + uuid4().hex, "bench")
    webhook = Webhook.create(workspace_id, "https://example.com/hooks", ("job.*",))
    made: list[Aggregate] = [workspace, account, key, webhook]
    for n in range(jobs):
        job_id = uuid4()
        fingerprint = fingerprint_of("copy", BRIEF, None)
        charge = account.debit(job_id, app.pricing.cost_of("copy", 1), "copy")
        job = GenerationJob.request(job_id, workspace_id, "copy", BRIEF, charge, fingerprint, None, 1)
        job.start("bench-worker", now, now + timedelta(minutes=2))
        if n % 10 == 9:
            refund = job.fail(1, "provider_rejected", "The provider refused the brief.")
            account.refund(job_id, "copy", refund, "job failed")
        else:
            job.complete(1, VARIANTS)
        made.append(job)
        if n % 4 == 0:
            made.append(IdempotencyKey.claim(workspace_id, f"bench-{n}", fingerprint, job_id, now))
    return made


def write_log(app: Pressroom, database_url: str, events: int) -> int:
    """Writes at least `events` events with COPY, workspace by workspace; returns how many."""
    table = sql.Identifier(app.recorder.events_table_name)  # type: ignore[attr-defined]
    written = 0
    now = datetime.now(UTC)
    with psycopg.connect(database_url) as conn:
        while written < events:
            rows = []
            for _ in range(20):
                for aggregate in workspace_history(app, JOBS_PER_WORKSPACE, now):
                    for event in aggregate.collect_events():
                        stored = app.mapper.to_stored_event(event)
                        rows.append((stored.originator_id, stored.originator_version, stored.topic, stored.state))
            with (
                conn.cursor() as cursor,
                cursor.copy(sql.SQL("COPY {} (originator_id, originator_version, topic, state) FROM STDIN").format(table)) as copy,
            ):
                for row in rows:
                    copy.write_row(row)
            conn.commit()
            written += len(rows)
    return written


def scan_seconds(app: Pressroom, database_url: str) -> float:
    """Reading every stored event once, in log order, without decoding: the floor under any rebuild."""
    table = sql.Identifier(app.recorder.events_table_name)  # type: ignore[attr-defined]
    start = time.perf_counter()
    with psycopg.connect(database_url) as conn, conn.cursor(name="scan") as cursor:
        cursor.itersize = 5000
        cursor.execute(sql.SQL("SELECT notification_id, topic, state FROM {} ORDER BY notification_id").format(table))
        for _ in cursor:
            pass
    return time.perf_counter() - start


def render(events: int, write: float, scan: float, rebuild: float, load: tuple[float, float]) -> str:
    return f"""
## Rebuilding every read model

Command: `make bench`, which runs `python -m bench.rebuild --events {events}` (also: `pressroom projections rebuild`).

A log of **{events:,} events** ({len(READ_MODELS)} read models: {", ".join(m.name for m in READ_MODELS)}), written in
{write:.0f} s. In the same run:

| pass over the log | time | events/s | ratio |
| --- | --- | --- | --- |
| plain scan, no decoding (baseline) | {scan:.1f} s | {events / scan:,.0f} | 1.00 |
| rebuild of every read model, swapped in | {rebuild:.1f} s | **{events / rebuild:,.0f}** | {scan / rebuild:.2f} |

The machine's load average (1 min, 2 cores) was {load[0]:.1f} as the rebuild started and {load[1]:.1f} as it ended: other
work on the machine takes its share of both cores from the rebuild and from PostgreSQL.
"""


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.rebuild", description=__doc__)
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument(
        "--profile",
        action="store_true",
        help="print a profile of the rebuild instead of a report (of its main thread, which reads and decodes)",
    )
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="pressroom-bench-") as work, EmbeddedPostgres(Path(work) / "pg", delete_on_close=True) as pg:
        with psycopg.connect(pg.url, autocommit=True) as conn:
            conn.execute("CREATE DATABASE rebuild")
        settings = Settings(database_url=psycopg.conninfo.make_conninfo(pg.url, dbname="rebuild"), secret_key="bench")  # noqa: S106 - a throwaway database
        container = Container(settings)
        try:
            container.migrate()
            app, url = container.app, container.database_url
            start = time.perf_counter()
            events = write_log(app, url, args.events)
            write = time.perf_counter() - start
            with psycopg.connect(url, autocommit=True) as conn:
                conn.execute("VACUUM ANALYZE")
            scan = scan_seconds(app, url)
            start = time.perf_counter()
            if args.profile:
                import cProfile
                import pstats

                with cProfile.Profile() as profile:
                    rebuild_all(app, url, READ_MODELS)
                pstats.Stats(profile).sort_stats("cumulative").print_stats(40)
                return
            load_before = os.getloadavg()[0]
            rebuild_all(app, url, READ_MODELS)
            rebuild = time.perf_counter() - start
            load = (load_before, os.getloadavg()[0])
        finally:
            container.close()
    section = render(events, write, scan, rebuild, load)
    with REPORT.open("a") as report:
        report.write(section)
    print(section)  # noqa: T201 - the bench's answer


if __name__ == "__main__":
    main()
