"""`make bench`: in-process throughput of `request_job` with group commit against one command per
transaction, in one run on one embedded PostgreSQL, spread over many workspaces and on one hot workspace;
checks the hot workspace's ledger for overdraft and double charges; appended to docs/BENCHMARKS.md."""

from __future__ import annotations

import argparse
import statistics
import tempfile
import threading
import time
from array import array
from collections.abc import Callable
from dataclasses import dataclass
from itertools import pairwise
from pathlib import Path
from uuid import UUID

import msgspec

from adapters.bootstrap import Container
from adapters.embedded import EmbeddedPostgres
from adapters.settings import Settings
from application.group_commit import BatchStats
from application.pressroom import JobReceipt, Pressroom
from bench.account_history import BRIEF, REPORT
from bench.job_requests import machine
from domain.credit_account import CreditAccount
from domain.errors import InsufficientCredits

CREDITS = 10_000_000
# A quarter of the hot workspace's requests carry a key from a small pool, so keys repeat under load.
HOT_KEYS = 200
STALL_MS = 200  # #8: no write may stall longer

Request = Callable[..., JobReceipt]


class Answer(msgspec.Struct, frozen=True, gc=False):
    """What a caller keeps of an answer: the key it asked with, and the job's id, cost and whether it was a replay.
    A run keeps hundreds of thousands: the answers themselves (jobs, events), or any object the garbage collector
    tracks, would give its full collections a heap that grows with the run to scan, pausing every thread longer."""

    key: str | None
    job_id: str
    cost: int
    duplicate: bool


@dataclass(frozen=True)
class Run:
    requests: int
    seconds: float
    p50_ms: float
    p99_ms: float
    max_ms: float
    slow: int  # calls that took over STALL_MS
    # Times the callers, all of them waiting, were answered nothing for over STALL_MS: the write path stalled.
    stalls: int
    longest_stall_ms: float
    errors: int
    answers: list[Answer]

    @property
    def per_second(self) -> float:
        return self.requests / self.seconds


def hammer(
    request: Request, threads: int, seconds: float, pick: Callable[[int, int], tuple[UUID, str | None]], *, keep_answers: bool = True
) -> Run:
    """`threads` callers, each calling `request` back to back for `seconds`; `pick(thread, n)` says on what.

    Times are kept in arrays, and answers only if asked: a full collection walks every item of a list, and a list of
    one item per request (millions in minutes) made it pause every thread ~150 ms, growing with the run."""
    latencies = [array("d") for _ in range(threads)]
    answered = [array("d") for _ in range(threads)]
    answers: list[list[Answer]] = [[] for _ in range(threads)]
    errors = [0] * threads
    start = threading.Barrier(threads + 1)
    deadline = [0.0]

    def caller(index: int) -> None:
        start.wait()
        n = 0
        while time.perf_counter() < deadline[0]:
            workspace_id, key = pick(index, n)
            began = time.perf_counter()
            try:
                receipt = request(workspace_id, "copy", BRIEF, 1, None, key)
                if keep_answers:
                    answers[index].append(Answer(key, str(receipt.job.id), receipt.job.cost, receipt.duplicate))
                answered[index].append(time.perf_counter())
            except Exception:  # noqa: BLE001 - refused or failed, the request is counted as an error and the caller goes on
                errors[index] += 1
            latencies[index].append(time.perf_counter() - began)
            n += 1

    workers = [threading.Thread(target=caller, args=(i,)) for i in range(threads)]
    for worker in workers:
        worker.start()
    deadline[0] = time.perf_counter() + seconds
    began = time.perf_counter()
    start.wait()
    for worker in workers:
        worker.join()
    elapsed = time.perf_counter() - began
    samples = sorted(s for per_thread in latencies for s in per_thread)
    times = sorted([began, *(t for per_thread in answered for t in per_thread), began + elapsed])
    gaps = [(later - earlier) * 1000 for earlier, later in pairwise(times)]
    return Run(
        requests=len(samples),
        seconds=elapsed,
        p50_ms=statistics.median(samples) * 1000,
        p99_ms=samples[max(0, int(len(samples) * 0.99) - 1)] * 1000,
        max_ms=samples[-1] * 1000,
        slow=sum(s * 1000 > STALL_MS for s in samples),
        stalls=sum(gap > STALL_MS for gap in gaps),
        longest_stall_ms=max(gaps),
        errors=sum(errors),
        answers=[a for per_thread in answers for a in per_thread],
    )


@dataclass(frozen=True)
class Ledger:
    """What the event store says about one account, against what the callers were told."""

    jobs_answered: int
    debits_recorded: int
    debited: int
    balance: int
    expected_balance: int
    duplicates: int
    keys_with_two_jobs: int

    @property
    def sound(self) -> bool:
        return self.jobs_answered == self.debits_recorded and self.balance == self.expected_balance >= 0 and not self.keys_with_two_jobs


def ledger(app: Pressroom, workspace_id: UUID, initial: int, debits_before: int, answers: list[Answer]) -> Ledger:
    """`debits_before`: the account's debits recorded before this run, which are not this run's."""
    events = list(app.events.get(CreditAccount.id_for(workspace_id)))
    debits = [e.amount for e in events if isinstance(e, CreditAccount.Debited)][debits_before:]
    cost_of_job = {a.job_id: a.cost for a in answers}
    jobs_of_key: dict[str, set[str]] = {}
    for answer in answers:
        if answer.key is not None:
            jobs_of_key.setdefault(answer.key, set()).add(answer.job_id)
    return Ledger(
        jobs_answered=len(cost_of_job),
        debits_recorded=len(debits),
        debited=sum(debits),
        balance=app.credit_account(workspace_id).balance,
        expected_balance=initial - sum(cost_of_job.values()),
        duplicates=sum(a.duplicate for a in answers),
        keys_with_two_jobs=sum(len(ids) > 1 for ids in jobs_of_key.values()),
    )


@dataclass(frozen=True)
class Storm:
    requests: int
    credits_for: int
    accepted: int
    refused: int
    balance: int
    debits_recorded: int


def storm(app: Pressroom, workspace_id: UUID, threads: int, requests: int) -> Storm:
    """Every thread at once on an account that covers fewer jobs than are asked for."""
    credits_for = app.credit_account(workspace_id).balance
    accepted: list[JobReceipt] = []
    refused = [0]
    lock = threading.Lock()
    start = threading.Barrier(threads)

    def caller(index: int) -> None:
        start.wait()
        for _ in range(index, requests, threads):
            try:
                receipt = app.request_job(workspace_id, "copy", BRIEF, 1)
            except InsufficientCredits:
                with lock:
                    refused[0] += 1
            else:
                with lock:
                    accepted.append(receipt)

    workers = [threading.Thread(target=caller, args=(i,)) for i in range(threads)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    debits = [e for e in app.events.get(CreditAccount.id_for(workspace_id)) if isinstance(e, CreditAccount.Debited)]
    return Storm(
        requests, credits_for, len({r.job.id for r in accepted}), refused[0], app.credit_account(workspace_id).balance, len(debits)
    )


@dataclass(frozen=True)
class Scenario:
    name: str
    alone: Run
    group: Run
    group_stats: BatchStats
    alone_ledger: Ledger | None = None
    group_ledger: Ledger | None = None


def stats_since(now: BatchStats, before: BatchStats) -> BatchStats:
    return BatchStats(
        batches=now.batches - before.batches,
        requests=now.requests - before.requests,
        conflicts=now.conflicts - before.conflicts,
        one_at_a_time=now.one_at_a_time - before.one_at_a_time,
    )


def compare(
    alone_app: Pressroom, app: Pressroom, name: str, threads: int, seconds: float, pick: Callable[[int, int], tuple[UUID, str | None]]
) -> Scenario:
    batcher = app.job_batcher
    assert batcher is not None
    alone = hammer(alone_app.request_job_alone, threads, seconds, pick)
    before = BatchStats(**vars(batcher.stats))
    group = hammer(app.request_job, threads, seconds, pick)
    return Scenario(name, alone, group, stats_since(batcher.stats, before))


def render(threads: int, workspaces: int, seconds: float, spread: Scenario, hot: Scenario, burst: Storm, host: str) -> str:
    def row(scenario: Scenario) -> str:
        a, g, s = scenario.alone, scenario.group, scenario.group_stats
        size = s.requests / s.batches if s.batches else 0.0
        return (
            f"| {scenario.name} | {a.per_second:,.0f} req/s · p50 {a.p50_ms:.1f} ms · p99 {a.p99_ms:.1f} ms "
            f"| {g.per_second:,.0f} req/s · p50 {g.p50_ms:.1f} ms · p99 {g.p99_ms:.1f} ms "
            f"| **{g.per_second / a.per_second:.2f}×** | {size:.1f} / {s.conflicts} / {s.one_at_a_time} |"
        )

    def ledger_line(label: str, found: Ledger | None) -> str:
        if found is None:
            return ""
        verdict = "sound" if found.sound else "**NOT SOUND**"
        return (
            f"- {label}: {found.jobs_answered:,} jobs answered, {found.debits_recorded:,} debits in the event store "
            f"({found.debited:,} credits), {found.duplicates:,} answers were replays of a key; balance "
            f"{found.balance:,}, expected {found.expected_balance:,}; keys that made two jobs: {found.keys_with_two_jobs}: {verdict}.\n"
        )

    storm_ok = burst.accepted == burst.credits_for == burst.debits_recorded and burst.balance == 0
    return f"""
## Group commit

Command: `make bench`, which also runs `python -m bench.group_commit --threads {threads} --workspaces {workspaces}
--seconds {seconds:g}` (in-process, on its own embedded PostgreSQL with fsync on: `Pressroom.request_job` for a copy
job from {threads} threads, no HTTP, no workers). Each row runs one command per transaction
(`request_job_alone` of a Pressroom built with `group_commit=False`, so its inserts are not grouped either)
and then group commit (`request_job` through `JobRequestBatcher`: one writer thread applies up to 64 queued
requests to the accounts, keys and jobs in memory and saves them in one `save()`), {seconds:g} s each,
against the same database in the same process. Machine: {host}.

| load | one command per transaction | group commit | ratio | group commit: requests per batch / conflicts / batches redone one at a time |
| --- | --- | --- | --- | --- |
{row(spread)}
{row(hot)}

Hot workspace ledger (a quarter of its requests carry one of {HOT_KEYS} idempotency keys, so keys repeat; the
event store's debits against the answers the callers got):
{ledger_line("one command per transaction", hot.alone_ledger)}{ledger_line("group commit", hot.group_ledger)}
Overdraft storm with group commit: {burst.requests} requests from {threads} threads on a workspace with credits for
{burst.credits_for}: {burst.accepted} accepted, {burst.refused} refused for credits, balance {burst.balance},
{burst.debits_recorded} debits in the event store: {"exact" if storm_ok else "**NOT EXACT**"}.

Where the time goes: both paths hold the event log's writers' lock once per `save()`; group commit pays it
once per batch. The writer keeps the accounts in memory between batches and brings all of a batch's accounts
and idempotency keys up to date with one query, so a batch costs that query, the save, and the writer's Python
work (encoding the events), one batch after another; a profile of the writer here put ~70 % of its time in
the save. With 32 callers the batches alternate between two halves of the callers (~16 requests each). The
hot workspace gets the most from it: one command per transaction serialises every request on the account's
lock, while a batch debits one in-memory account many times. The absolute figures are depressed by the
machine's load (see the load average above; other benches were running): compare the ratios. Over HTTP
see the first section (`bench.write_path`). Other commands are group-committed where their events are written
(`adapters/grouped_inserts.py`), which this bench does not exercise. Not yet done for #8: overlapping one batch's
save with the next batch's work.
"""


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.group_commit", description=__doc__)
    parser.add_argument("--threads", type=int, default=32)
    parser.add_argument("--workspaces", type=int, default=64)
    parser.add_argument("--seconds", type=float, default=10.0, help="length of each measured run")
    parser.add_argument("--storm", type=int, default=1000, help="requests in the overdraft storm (credits cover half)")
    args = parser.parse_args(argv)
    host = machine()
    with tempfile.TemporaryDirectory(prefix="pressroom-bench-") as work_dir, EmbeddedPostgres(Path(work_dir), delete_on_close=True) as pg:
        settings = Settings(database_url=pg.url, group_commit=True, db_pool_size=args.threads)
        container = Container(settings)
        # The same database, with no group commit at all: not of job requests, nor of any other insert.
        alone_container = Container(msgspec.structs.replace(settings, group_commit=False))
        try:
            container.migrate()
            app, alone_app = container.app, alone_container.app
            spread_ids = [app.create_workspace(f"Bench {n}")[0].id for n in range(args.workspaces)]
            hot_id = app.create_workspace("Hot")[0].id
            for workspace_id in [*spread_ids, hot_id]:
                app.top_up(workspace_id, CREDITS, "bench")
            hot_initial = app.credit_account(hot_id).balance

            def spread(thread: int, n: int) -> tuple[UUID, str | None]:
                return spread_ids[(thread + n * args.threads) % len(spread_ids)], None

            def hot(thread: int, n: int) -> tuple[UUID, str | None]:
                return hot_id, (f"hot-{(thread * 7919 + n) % HOT_KEYS}" if n % 4 == 0 else None)

            # A short warm-up of both paths, so neither pays for opening connections and filling caches.
            hammer(alone_app.request_job_alone, args.threads, 1.0, spread)
            hammer(app.request_job, args.threads, 1.0, spread)
            spread_name = f"{args.threads} threads over {args.workspaces} workspaces"
            spread_result = compare(alone_app, app, spread_name, args.threads, args.seconds, spread)

            hot_alone = hammer(alone_app.request_job_alone, args.threads, args.seconds, hot)
            alone_ledger = ledger(app, hot_id, hot_initial, 0, hot_alone.answers)
            assert app.job_batcher is not None
            before = BatchStats(**vars(app.job_batcher.stats))
            # Fresh keys for the second run, so replays are of keys the same path claimed.
            hot_group = hammer(app.request_job, args.threads, args.seconds, lambda t, n: (hot_id, _fresh(hot(t, n)[1])))
            group_ledger = ledger(app, hot_id, alone_ledger.balance, alone_ledger.debits_recorded, hot_group.answers)
            hot_result = Scenario(
                f"{args.threads} threads on one hot workspace",
                hot_alone,
                hot_group,
                stats_since(app.job_batcher.stats, before),
                alone_ledger,
                group_ledger,
            )

            storm_id = app.create_workspace("Storm")[0].id
            app.adjust_credits(storm_id, args.storm // 2 - app.credit_account(storm_id).balance, "bench-storm", "storm budget")
            burst = storm(app, storm_id, args.threads, args.storm)
        finally:
            alone_container.close()
            container.close()
    section = render(args.threads, args.workspaces, args.seconds, spread_result, hot_result, burst, host)
    with REPORT.open("a") as report:
        report.write(section)
    print(section)  # noqa: T201 - the bench's answer


def _fresh(key: str | None) -> str | None:
    return None if key is None else f"g-{key}"


if __name__ == "__main__":
    main()
