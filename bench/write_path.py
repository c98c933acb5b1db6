"""`make bench`: the write path's targets in one run. `POST /v1/jobs` over HTTP (load from wrk) with group
commit and with one command per transaction, on one hot workspace, and with every service running; the read
models' lag while the load runs; pgbench's single-row INSERT on the same database as the baseline. Written to
docs/BENCHMARKS.md, whose first section it is."""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path
from uuid import UUID

import psycopg
from psycopg import sql

from adapters.embedded import free_port, wait_until_listening
from bench.event_lag import percentile
from bench.job_requests import (
    REPORT,
    BenchError,
    HttpResult,
    Options,
    PgbenchResult,
    System,
    busy_time_into,
    cpu_ms_per_request,
    create_workspaces,
    database_url,
    ensure_wrk,
    machine,
    parse_wrk,
    report_server_errors,
    run_pgbench,
    run_wrk,
    say,
    start_system,
    stop_system,
    write_wrk_script,
)
from bench.scale_out import LedgerCheck, Load, LoadResult, balances, check, get_json, merged_percentile, run_load
from projections.catalog import READ_MODELS

EVENTS_TABLE = "pressroom_events"
LAG_PROBE_PAUSE_SECONDS = 0.02
LAG_POLL_SECONDS = 0.002
# What #8 asks of this run.
TARGET_REQUESTS_PER_SECOND = 2000
TARGET_P99_MS = 50.0
TARGET_RATIO = 4.0
TARGET_HOT_REQUESTS_PER_SECOND = 500
TARGET_LAG_P99_MS = 50.0


@dataclass(frozen=True)
class WriteOptions(Options):
    rounds: int = 2


@dataclass(frozen=True)
class Scenario:
    name: str
    services: str  # PRESSROOM_SERVICES: what `pressroom up` starts
    group_commit: bool
    hot: bool  # every connection on one workspace
    probe_lag: bool
    as_shipped: bool = False  # PRESSROOM_EVENT_LOG_AS_SHIPPED: eventsourcing's own transaction for every insert


SCENARIOS = (
    Scenario("group commit", "api,projections", group_commit=True, hot=False, probe_lag=True),
    Scenario("one command per transaction", "api,projections", group_commit=False, hot=False, probe_lag=True),
    Scenario(
        "one command per transaction, as eventsourcing ships it",
        "api,projections",
        group_commit=False,
        hot=False,
        probe_lag=False,
        as_shipped=True,
    ),
    Scenario("group commit, one hot workspace", "api,projections", group_commit=True, hot=True, probe_lag=False),
    Scenario("group commit, every service running", "", group_commit=True, hot=False, probe_lag=False),
)


@dataclass
class Run:
    """A scenario's system and what its parts measured."""

    scenario: Scenario
    system: System
    keys: list[str]
    workspace_ids: list[UUID]
    before: list[int]  # each workspace's balance before the load
    loads: list[LoadResult] = field(default_factory=list)
    lags_ms: list[float] = field(default_factory=list)
    load_averages: list[float] = field(default_factory=list)  # the 1-minute load average before each part
    busy_seconds: list[float] = field(default_factory=list)  # the machine's busy CPU time during each part

    @property
    def requests_per_second(self) -> float:
        return statistics.mean(load.http.requests_per_second for load in self.loads)

    @property
    def cpu_ms_per_request(self) -> float:
        return cpu_ms_per_request(self.busy_seconds, self.requests)

    @property
    def requests(self) -> int:
        return sum(load.http.requests for load in self.loads)

    @property
    def non2xx(self) -> int:
        return sum(load.http.non2xx for load in self.loads)

    def percentile_ms(self, percentile: float) -> float:
        return merged_percentile([(load.http.requests, load.percentiles) for load in self.loads], percentile)


@dataclass(frozen=True)
class Result:
    run: Run
    ledger: LedgerCheck
    server_errors: int

    @property
    def scenario(self) -> Scenario:
        return self.run.scenario


@dataclass
class LagProbe:
    """How long after the probe sees an event committed every read model has applied it: it reads the log's
    head, then polls the read models' tracking positions every 2 ms until the slowest reaches it, again and
    again while the load runs. The commit came a little before the probe saw it, so these are lower bounds
    by up to a poll's interval."""

    database_url: str
    lags_ms: list[float] = field(default_factory=list)
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="lag-probe", daemon=True)
        self._thread.start()

    def stop(self) -> list[float]:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
        return self.lags_ms

    def _run(self) -> None:
        slowest = sql.SQL("SELECT least({})").format(
            sql.SQL(", ").join(
                sql.SQL("(SELECT coalesce(max(notification_id), 0) FROM {})").format(sql.Identifier(f"{model.name}_tracking"))
                for model in READ_MODELS
            )
        )
        head_query = sql.SQL("SELECT coalesce(max(notification_id), 0) FROM {}").format(sql.Identifier(EVENTS_TABLE))
        with psycopg.connect(self.database_url, autocommit=True) as conn:
            while not self._stop.wait(LAG_PROBE_PAUSE_SECONDS):
                head = _scalar(conn, head_query)
                seen = time.perf_counter()
                while not self._stop.is_set():
                    if _scalar(conn, slowest) >= head:
                        self.lags_ms.append((time.perf_counter() - seen) * 1000)
                        break
                    time.sleep(LAG_POLL_SECONDS)


def _scalar(conn: psycopg.Connection[tuple[int]], query: sql.Composable) -> int:
    row = conn.execute(query).fetchone()
    return int(row[0]) if row else 0


def start(scenario: Scenario, options: Options, work_dir: Path) -> Run:
    env = {
        "PRESSROOM_SERVICES": scenario.services,
        "PRESSROOM_GROUP_COMMIT": str(scenario.group_commit).lower(),
        "PRESSROOM_EVENT_LOG_AS_SHIPPED": str(scenario.as_shipped).lower(),
    }
    system = start_system(work_dir, {k: v for k, v in env.items() if v})
    try:
        say(f"{scenario.name}: `pressroom up` is healthy at {system.base_url}; its output goes to {system.log_path}")
        keys = create_workspaces(system, 1 if scenario.hot else options.workspaces)
        workspace_ids = [UUID(str(get_json(system.base_url, key, "/v1/workspace")["id"])) for key in keys]
        before = [seen[0] for seen in balances([system], keys)]
    except BaseException:
        stop_system(system)
        raise
    return Run(scenario, system, keys, workspace_ids, before)


def run_part(run: Run, options: Options, wrk: str, work_dir: Path, seconds: int) -> None:
    probe = LagProbe(database_url(run.system)) if run.scenario.probe_lag else None
    if probe is not None:
        probe.start()
    run.load_averages.append(os.getloadavg()[0])
    label = f"{run.scenario.name.replace(' ', '-').replace(',', '')}-{len(run.loads) + 1}"
    try:
        with busy_time_into(run.busy_seconds):
            run.loads.append(run_load(wrk, Load(label, run.system.base_url, run.keys, replace(options, duration=seconds)), work_dir))
    finally:
        if probe is not None:
            run.lags_ms.extend(probe.stop())


@dataclass
class Floor:
    """The bare route (bench/bare_route.py) under the same wrk load: what serving the request costs without Pressroom."""

    process: subprocess.Popen[bytes]
    url: str
    parts: list[HttpResult] = field(default_factory=list)
    busy_seconds: list[float] = field(default_factory=list)

    @property
    def requests_per_second(self) -> float:
        return statistics.mean(part.requests_per_second for part in self.parts)

    @property
    def cpu_ms_per_request(self) -> float:
        return cpu_ms_per_request(self.busy_seconds, sum(part.requests for part in self.parts))

    @property
    def p99_ms(self) -> float:
        return max(part.p99_ms for part in self.parts)


def start_floor() -> Floor:
    port = free_port()
    process = subprocess.Popen([sys.executable, "-m", "bench.bare_route", "--port", str(port)], stdout=subprocess.DEVNULL)
    floor = Floor(process, f"http://127.0.0.1:{port}/v1/jobs")
    try:
        wait_until_listening(process, port, "the bare route", timeout=30)
    except RuntimeError as error:
        stop_floor(floor)
        raise BenchError(str(error)) from None
    return floor


def run_floor_part(floor: Floor, options: Options, wrk: str, work_dir: Path, seconds: int) -> None:
    script = write_wrk_script(work_dir / "bare-route.lua", ["not-checked"])
    with busy_time_into(floor.busy_seconds):
        floor.parts.append(parse_wrk(run_wrk(wrk, replace(options, duration=seconds), floor.url, script)))


def stop_floor(floor: Floor) -> None:
    floor.process.terminate()
    floor.process.wait(timeout=30)


def finish(run: Run) -> Result:
    try:
        ledger = check(database_url(run.system), [run.system], run.keys, run.workspace_ids, run.before, run.loads)
    finally:
        stop_system(run.system)
    return Result(run, ledger, report_server_errors(run.system))


def measure(options: WriteOptions, wrk: str, work_dir: Path) -> tuple[list[Result], PgbenchResult, Floor]:
    """The bare route and the write-path scenarios in `rounds` parts each, in the order f a b c, then c b a f, and so on
    (the machine's other work changes while the bench runs: alternating spreads a steady change over them alike); then
    the whole system."""
    compared, whole = SCENARIOS[:-1], SCENARIOS[-1]
    runs: list[Run] = []
    floor = start_floor()
    try:
        for index, scenario in enumerate(compared):
            runs.append(start(scenario, options, work_dir / str(index)))
        pgbench = run_pgbench(runs[0].system, options, work_dir)
        seconds = options.duration // options.rounds
        for round_ in range(options.rounds):
            parts: list[Run | Floor] = [floor, *runs]
            for part in parts if round_ % 2 == 0 else parts[::-1]:
                if isinstance(part, Floor):
                    run_floor_part(part, options, wrk, work_dir, seconds)
                else:
                    run_part(part, options, wrk, work_dir, seconds)
    finally:
        stop_floor(floor)
        results = [finish(run) for run in runs]
    last = start(whole, options, work_dir / "whole")
    try:
        run_part(last, options, wrk, work_dir, options.duration)
    finally:
        results.append(finish(last))
    return results, pgbench, floor


def lag(run: Run) -> str:
    if not run.scenario.probe_lag:
        return "not probed"
    if not run.lags_ms:
        return "no samples"
    return f"{percentile(run.lags_ms, 0.5):.1f} / {percentile(run.lags_ms, 0.99):.1f} ms ({len(run.lags_ms):,})"


def verdict(met: bool) -> str:
    return "met" if met else "**not met**"


def render(options: WriteOptions, host: str, results: list[Result], pgbench: PgbenchResult, floor: Floor) -> str:
    grouped, alone, shipped, hot = (result.run for result in results[:4])
    ratio = grouped.requests_per_second / alone.requests_per_second
    shipped_ratio = grouped.requests_per_second / shipped.requests_per_second
    rows = "\n".join(
        f"| {r.scenario.name} | {r.scenario.services or 'all'} | {r.run.requests_per_second:,.0f} req/s | "
        f"{r.run.percentile_ms(50):.1f} ms | {r.run.percentile_ms(99):.1f} ms | {r.run.non2xx:,} of {r.run.requests:,} | "
        f"{r.run.cpu_ms_per_request:.3f} ms | {lag(r.run)} | "
        f"{', '.join(f'{load:.1f}' for load in r.run.load_averages)} |"
        for r in results
    )
    ledgers = "\n".join(
        f"- {r.scenario.name}: {r.ledger.answers:,} jobs answered, {r.ledger.debits:,} debits in the event store; "
        f"charged twice {r.ledger.charged_twice}, answered without a debit {r.ledger.answered_without_debit}, "
        f"job ids answered twice {r.ledger.repeated_answers}, debited without an answer {r.ledger.debited_without_answer} "
        f"(requests wrk sent but saw no answer to: {r.ledger.unanswered_requests}); balances exact "
        f"{r.ledger.exact_workspaces} of {r.ledger.workspaces}: **{'sound' if r.ledger.sound else 'NOT SOUND'}**; "
        f"error lines in the server's log: {r.server_errors}."
        for r in results
    )
    lag_p99, p99 = percentile(grouped.lags_ms, 0.99) if grouped.lags_ms else float("nan"), grouped.percentile_ms(99)
    fast = grouped.requests_per_second >= TARGET_REQUESTS_PER_SECOND and p99 <= TARGET_P99_MS
    hot_met = hot.requests_per_second >= TARGET_HOT_REQUESTS_PER_SECOND and results[3].ledger.sound
    share = grouped.requests_per_second / pgbench.tps
    targets = "\n".join(
        [
            f"| ≥ {TARGET_REQUESTS_PER_SECOND:,} req/s with p99 ≤ {TARGET_P99_MS:.0f} ms "
            f"| {grouped.requests_per_second:,.0f} req/s, p99 {p99:.1f} ms | {verdict(fast)} |",
            f"| ≥ {TARGET_RATIO:.0f}× one command per transaction, as eventsourcing ships it (the path #8 measured at ~470 req/s) "
            f"| **{shipped_ratio:.2f}×** | {verdict(shipped_ratio >= TARGET_RATIO)} |",
            f"| ≥ {TARGET_RATIO:.0f}× one command per transaction with Pressroom's one-statement insert "
            f"| **{ratio:.2f}×** | {verdict(ratio >= TARGET_RATIO)} |",
            f"| one hot workspace ≥ {TARGET_HOT_REQUESTS_PER_SECOND} req/s, no overdraft, no double charge "
            f"| {hot.requests_per_second:,.0f} req/s, ledger {'sound' if results[3].ledger.sound else 'NOT SOUND'} | {verdict(hot_met)} |",
            f"| read-model lag p99 ≤ {TARGET_LAG_P99_MS:.0f} ms under that load "
            f"| {lag_p99:.1f} ms | {verdict(lag_p99 <= TARGET_LAG_P99_MS)} |",
        ]
    )
    return f"""# Benchmarks

Regenerated by each run of `make bench`; earlier results are not kept here.

- Date: {datetime.now(UTC):%Y-%m-%d %H:%M} UTC
- Machine: {host}
- Command: `make bench`, which runs `{command(options)}` first

## The write path: `POST /v1/jobs`

Copy jobs from wrk ({options.connections} connections, {options.threads} threads, {options.duration} s per row, rotating over
{options.workspaces} workspaces' keys, or one workspace's for the hot row), each row on its own `pressroom up` that starts
the processes named (`PRESSROOM_SERVICES`; `PRESSROOM_GROUP_COMMIT=false` for the second and third rows, and
`PRESSROOM_EVENT_LOG_AS_SHIPPED=true` for the third: every insert in eventsourcing's own transaction behind its EXCLUSIVE
table lock, the one-command-per-transaction path as #8 found it). The first four rows
ran in {options.rounds} parts each, in the order 1 2 3 4, then 4 3 2 1 (the machine's other work changes during the run, and
alternating spreads a steady change over them alike), their systems all up; then the last row alone. A row's
throughput is the mean of its parts', its percentiles merged from theirs. The read-model lag is from the moment a
probe saw an event committed until every read model had applied it (p50 / p99, samples). Machine CPU a request is
the busy time of both cores over a row's parts (every process's and the kernel's, wrk's too, from `/proc/stat`)
divided by the requests answered.

| load | processes | throughput | p50 | p99 | non-2xx | machine CPU a request | read-model lag p50 / p99 | 1-min load average before |
| --- | --- | --- | --- | --- | --- | --- | --- | --- |
{rows}

The HTTP floor, measured in the same rounds (first in the first, last in the second): a bare Litestar route
(`bench/bare_route.py`) that parses the same body into the same schema and answers the same `JobAccepted` JSON with
nothing behind it, served as the API is served, under the same wrk load: **{floor.requests_per_second:,.0f} req/s**,
p99 ≤ {floor.p99_ms:.1f} ms, **{floor.cpu_ms_per_request:.3f} ms** of machine CPU a request. Group commit's
`POST /v1/jobs` took {grouped.cpu_ms_per_request / floor.cpu_ms_per_request:.1f}× the floor's CPU a request: serving
HTTP is {floor.cpu_ms_per_request / grouped.cpu_ms_per_request:.0%} of a job request's cost here, the rest is
Pressroom's (the API process's command, authentication and encoding, PostgreSQL, the projections).

pgbench single-row INSERT on the same database ({options.connections} clients, {options.threads} threads, {options.duration} s,
before any load): {pgbench.tps:,.0f} TPS; group commit's requests per second are **{share:.3f}**
of it, one command per transaction's {alone.requests_per_second / pgbench.tps:.3f}, and as eventsourcing ships it
{shipped.requests_per_second / pgbench.tps:.3f}.

| target (#8) | measured | |
| --- | --- | --- |
{targets}

Ledgers, from the event store against the job ids wrk was answered with:
{ledgers}

How to read it: wrk, the API process, the projections process and PostgreSQL share the machine's two cores, so the
absolute figures say as much about the machine as about Pressroom: compare the ratios, measured in the same run. The
API process is one Python process: its request handling and the group-commit writer share one GIL. In the last row
the generation worker, the relay, the webhooks and the other consumers run too, and the work each job causes
downstream takes the cores from the API; with group commit, each of those processes also writes its concurrent
commands' events together (`adapters/grouped_inserts.py`).
"""


def command(options: WriteOptions) -> str:
    return (
        f"python -m bench.write_path --duration {options.duration} --connections {options.connections} "
        f"--workspaces {options.workspaces} --threads {options.threads} --rounds {options.rounds}"
    )


def parse_options(argv: list[str] | None) -> WriteOptions:
    parser = argparse.ArgumentParser(prog="python -m bench.write_path", description=__doc__)
    parser.add_argument("--duration", type=int, default=20, help="seconds of load per row, and of pgbench")
    parser.add_argument("--connections", type=int, default=32, help="wrk connections and pgbench clients")
    parser.add_argument("--workspaces", type=int, default=64, help="workspaces the requests rotate over")
    parser.add_argument("--threads", type=int, default=2, help="wrk threads and pgbench jobs")
    parser.add_argument("--rounds", type=int, default=2, help="parts each compared row's duration is run in, alternating the order")
    args = parser.parse_args(argv)
    if args.duration % args.rounds:
        parser.error("--duration must be a multiple of --rounds")
    return WriteOptions(
        duration=args.duration, connections=args.connections, workspaces=args.workspaces, threads=args.threads, rounds=args.rounds
    )


def main(argv: list[str] | None = None) -> None:
    options = parse_options(argv)
    host = machine()
    with tempfile.TemporaryDirectory(prefix="pressroom-bench-") as work:
        try:
            results, pgbench, floor = measure(options, ensure_wrk(), Path(work))
        except BenchError as error:
            say(f"bench failed: {error}")
            sys.exit(1)
    report = render(options, host, results, pgbench, floor)
    REPORT.write_text(report)
    print(report)  # noqa: T201 - the bench's answer
    if not all(result.ledger.sound for result in results):
        sys.exit(1)


if __name__ == "__main__":
    main()
