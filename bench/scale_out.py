"""`make bench`: `POST /v1/jobs` with 1 API process against 2 on the same embedded PostgreSQL — routed by
workspace as the reverse proxy does, and at random — with every workspace's ledger checked against the
answers afterwards; appended to docs/BENCHMARKS.md."""

from __future__ import annotations

import argparse
import bisect
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from pathlib import Path
from uuid import UUID

import httpx
import msgspec

from adapters.embedded import EmbeddedBroker, EmbeddedPostgres, free_port
from adapters.eventstore import open_application
from adapters.settings import Settings
from bench.job_pipeline import services
from bench.job_requests import (
    REPORT,
    BenchError,
    HttpResult,
    Options,
    System,
    create_workspaces,
    ensure_wrk,
    error_lines,
    machine,
    parse_wrk,
    report_server_errors,
    run_wrk,
    say,
    start_system,
    stop_system,
    wait_healthy,
    write_wrk_script,
)
from domain.credit_account import CreditAccount

# Percentiles each wrk instance writes out: a scenario's instances' latencies are merged from these, to 0.1 of a percentile.
PERCENTILE_STEPS = 1000
# Commands still in a batch when wrk stops are committed without an answer anyone reads: let them land.
SETTLE_SECONDS = 2.0

ROUTING = {
    "a": "one process",
    "b": "by workspace: half the workspaces' keys to each process",
    "c": "random: every key to both processes",
}

# Appended to bench/job_requests.py's script (whose `request`, `response`, `done` and `threads` it wraps), so the
# statuses are counted as there, and besides: every 2xx answer's job id goes to a file per thread (the ledger is
# checked against them), requests written but never answered are counted (a command in flight when wrk stops may
# commit unanswered), and the latency percentiles go to a file (two instances' latencies are merged from them).
SCALE_OUT_LUA = """
-- Appended by bench/scale_out.py.
local answers_prefix = [[__ANSWERS__]]
local percentiles_path = [[__PERCENTILES__]]
local base_init, base_request, base_response, base_done = init, request, response, done

function init(args)
  base_init(args)
  -- wrk calls request() once on the first thread, after init and before connecting, to check the script: not sent.
  sent = (offset == 0) and -1 or 0
  answers = io.open(answers_prefix .. offset .. ".txt", "w")
end

function request()
  sent = sent + 1
  return base_request()
end

function response(status, headers, body)
  base_response(status, headers, body)
  if status >= 200 and status <= 299 then
    answers:write((string.match(body, '"jobId"%s*:%s*"([^"]+)"') or "?"), "\\n")
    answers:flush() -- whole however wrk ends
  end
end

function done(summary, latency, requests)
  base_done(summary, latency, requests)
  local total = 0
  for _, thread in ipairs(threads) do
    total = total + thread:get("sent")
  end
  local out = io.open(percentiles_path, "w")
  for step = 1, __STEPS__ do
    local p = step * 100 / __STEPS__
    out:write(string.format("%.3f %d\\n", p, latency:percentile(p)))
  end
  out:close()
  io.write(string.format("SCALE sent=%d\\n", total))
end
"""


@dataclass(frozen=True)
class ScaleOptions:
    duration: int
    connections: int
    workspaces: int
    warm_up: int
    rounds: int

    def command(self) -> str:
        return (
            f"python -m bench.scale_out --duration {self.duration} --connections {self.connections} "
            f"--workspaces {self.workspaces} --warm-up {self.warm_up} --rounds {self.rounds}"
        )


@dataclass(frozen=True)
class Load:
    """One wrk instance: these keys against this API process, with this share of the connections."""

    label: str
    base_url: str
    keys: list[str]
    wrk: Options


@dataclass(frozen=True)
class LoadResult:
    http: HttpResult
    sent: int
    answered: list[str]
    percentiles: list[tuple[float, float]]  # (percentile, milliseconds), rising

    @property
    def unanswered(self) -> int:
        return self.sent - sum(self.http.statuses.values())


@dataclass(frozen=True)
class Scenario:
    name: str
    processes: int
    routing: str
    loads: list[LoadResult]  # every wrk instance of every round
    load_averages: list[float]  # the 1-minute load average before each round

    @property
    def requests_per_second(self) -> float:
        # A round's instances run at once (their rates add up), and every round lasts as long.
        return sum(load.http.requests_per_second for load in self.loads) / len(self.load_averages)

    @property
    def load_average(self) -> float:
        return statistics.mean(self.load_averages)

    @property
    def requests(self) -> int:
        return sum(load.http.requests for load in self.loads)

    @property
    def statuses(self) -> Counter[int]:
        return sum((Counter(load.http.statuses) for load in self.loads), Counter())

    @property
    def non2xx(self) -> int:
        return sum(load.http.non2xx for load in self.loads)

    def socket_errors(self) -> str:
        """wrk's socket errors of all the scenario's instances, added up."""
        counts: Counter[str] = Counter()
        for load in self.loads:
            counts.update({kind: int(count) for kind, count in re.findall(r"(\w+) (\d+)", load.http.socket_errors)})
        return ", ".join(f"{kind} {count:,}" for kind, count in counts.items() if count) or "none"

    def percentile_ms(self, percentile: float) -> float:
        return merged_percentile([(load.http.requests, load.percentiles) for load in self.loads], percentile)


@dataclass(frozen=True)
class Measured:
    runs: list[Scenario]  # a, b, c
    ledger: LedgerCheck
    server_errors: int
    load_after: float


@dataclass(frozen=True)
class WorkspaceLedger:
    debits: list[UUID]  # the job id of each `credits.debited` in the event store
    expected_balance: int  # the balance before the load, less the debits, plus the refunds
    balances: list[int]  # `GET /v1/credits` through each API process


@dataclass(frozen=True)
class LedgerCheck:
    workspaces: int
    exact_workspaces: int
    answers: int
    debits: int
    charged_twice: int
    answered_without_debit: int
    repeated_answers: int
    debited_without_answer: int
    unanswered_requests: int

    @property
    def sound(self) -> bool:
        return (
            self.exact_workspaces == self.workspaces
            and self.charged_twice == self.answered_without_debit == self.repeated_answers == 0
            and self.debited_without_answer <= self.unanswered_requests
        )


# Latency of two wrk instances together


def merged_percentile(parts: list[tuple[int, list[tuple[float, float]]]], percentile: float) -> float:
    """The latency under which `percentile` % of all requests fell, from each instance's request count and
    percentiles: the least latency x at which the instances' shares at or under x add up to it."""
    total = sum(count for count, _ in parts)
    latencies = [[ms for _, ms in points] for _, points in parts]

    def share_at_or_under(x: float) -> float:
        found = 0.0
        for (count, points), values in zip(parts, latencies, strict=True):
            index = bisect.bisect_right(values, x)
            found += count * (points[index - 1][0] if index else 0.0) / 100
        return found

    candidates = sorted({ms for values in latencies for ms in values})
    wanted = total * percentile / 100
    low, high = 0, len(candidates) - 1
    while low < high:  # share_at_or_under rises with x: the first candidate that reaches the share
        middle = (low + high) // 2
        if share_at_or_under(candidates[middle]) >= wanted:
            high = middle
        else:
            low = middle + 1
    return candidates[low]


# Loads


def write_script(work_dir: Path, label: str, keys: list[str]) -> Path:
    script = write_wrk_script(work_dir / f"{label}.lua", keys)
    extension = (
        SCALE_OUT_LUA.replace("__ANSWERS__", str(work_dir / f"{label}-answers-"))
        .replace("__PERCENTILES__", str(work_dir / f"{label}-percentiles.txt"))
        .replace("__STEPS__", str(PERCENTILE_STEPS))
    )
    with script.open("a") as lua:
        lua.write(extension)
    return script


def run_load(wrk: str, load: Load, work_dir: Path) -> LoadResult:
    output = run_wrk(wrk, load.wrk, f"{load.base_url}/v1/jobs", write_script(work_dir, load.label, load.keys))
    say(output)
    answered = [
        line.strip()
        for path in sorted(work_dir.glob(f"{load.label}-answers-*.txt"))
        for line in path.read_text().splitlines()
        if line.strip()
    ]
    percentiles = [
        (float(p), int(us) / 1000)
        for p, us in (line.split() for line in (work_dir / f"{load.label}-percentiles.txt").read_text().splitlines())
    ]
    sent = next((int(line.split("=")[1]) for line in output.splitlines() if line.startswith("SCALE sent=")), None)
    if sent is None:
        raise BenchError(f"no SCALE line from the wrk script of {load.label}:\n{output}")
    return LoadResult(http=parse_wrk(output), sent=sent, answered=answered, percentiles=percentiles)


def run_loads(wrk: str, loads: list[Load], work_dir: Path) -> list[LoadResult]:
    """The loads at once, each its own wrk process."""
    with ThreadPoolExecutor(max_workers=len(loads)) as pool:
        return list(pool.map(lambda load: run_load(wrk, load, work_dir), loads))


def scenarios(options: ScaleOptions, wrk: str, plan: Callable[[str, str, int], list[Load]], work_dir: Path) -> list[Scenario]:
    """Every scenario for `rounds` parts of its duration, in the order a b c, then c b a, and so on: the machine's
    other work changes while the bench runs, and alternating the order spreads a steady change over all three."""
    seconds = options.duration // options.rounds
    parts: dict[str, list[tuple[float, list[LoadResult]]]] = {name: [] for name in ROUTING}
    for round_ in range(options.rounds):
        for name in list(ROUTING) if round_ % 2 == 0 else list(ROUTING)[::-1]:
            load_average = os.getloadavg()[0]
            parts[name].append((load_average, run_loads(wrk, plan(name, f"{name}{round_ + 1}", seconds), work_dir)))
    return [
        Scenario(
            name=name,
            processes=len({load.base_url for load in plan(name, name, seconds)}),
            routing=routing,
            loads=[result for _, results in parts[name] for result in results],
            load_averages=[load_average for load_average, _ in parts[name]],
        )
        for name, routing in ROUTING.items()
    ]


# A second API process


def start_api(system_env: dict[str, str], work_dir: Path) -> System:
    """Another `pressroom api` with the system's settings but its own port, as a replica behind the proxy runs."""
    settings = replace_port(Settings.from_env(system_env), free_port())
    log_path = work_dir / "api-2.log"
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "api.cli", "api"],
            env={**os.environ, **settings.to_env()},
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    api = System(process, f"http://127.0.0.1:{settings.port}", settings.admin_token or "", settings.data_dir, log_path)
    try:
        wait_healthy(api)
    except BaseException:
        stop_system(api)
        raise
    return api


def replace_port(settings: Settings, port: int) -> Settings:
    return msgspec.structs.replace(settings, port=port)


# The ledger


def get_json(base_url: str, key: str, path: str) -> dict[str, object]:
    answer = httpx.get(f"{base_url}{path}", headers={"Authorization": f"Bearer {key}"}, timeout=30.0)
    answer.raise_for_status()
    body: dict[str, object] = answer.json()
    return body


def balances(apis: list[System], keys: list[str]) -> list[list[int]]:
    """Each workspace's balance through each API process: the processes' cached accounts must agree."""
    return [[int(str(get_json(api.base_url, key, "/v1/credits")["balance"])) for api in apis] for key in keys]


def workspace_ledgers(database_url: str, workspace_ids: list[UUID], before: list[int], now: list[list[int]]) -> list[WorkspaceLedger]:
    """From the event store itself, not a read model: the debits and refunds each account recorded."""
    app = open_application(database_url, pool_size=2)
    try:
        ledgers = []
        for workspace_id, initial, seen in zip(workspace_ids, before, now, strict=True):
            events = list(app.events.get(CreditAccount.id_for(workspace_id)))
            debits = [e for e in events if isinstance(e, CreditAccount.Debited)]
            refunded = sum(e.amount for e in events if isinstance(e, CreditAccount.Refunded))
            expected = initial - sum(e.amount for e in debits) + refunded
            ledgers.append(WorkspaceLedger(debits=[e.job_id for e in debits], expected_balance=expected, balances=seen))
        return ledgers
    finally:
        app.close()


def check_ledger(ledgers: list[WorkspaceLedger], loads: list[LoadResult]) -> LedgerCheck:
    answers = [answer for load in loads for answer in load.answered]
    debited = Counter(str(job_id) for ledger in ledgers for job_id in ledger.debits)
    answered = set(answers)
    return LedgerCheck(
        workspaces=len(ledgers),
        exact_workspaces=sum(all(balance == ledger.expected_balance for balance in ledger.balances) for ledger in ledgers),
        answers=len(answers),
        debits=sum(debited.values()),
        charged_twice=sum(1 for count in debited.values() if count > 1),
        answered_without_debit=len(answered - debited.keys()),
        repeated_answers=len(answers) - len(answered),
        debited_without_answer=len(debited.keys() - answered),
        unanswered_requests=sum(load.unanswered for load in loads),
    )


def check(
    database_url: str, apis: list[System], keys: list[str], workspace_ids: list[UUID], before: list[int], loads: list[LoadResult]
) -> LedgerCheck:
    # A refund landing between the balances and the events would look like a mismatch: read both again, a few times.
    for _ in range(2):
        time.sleep(SETTLE_SECONDS)
        found = check_ledger(workspace_ledgers(database_url, workspace_ids, before, balances(apis, keys)), loads)
        if found.sound:
            return found
    time.sleep(SETTLE_SECONDS)
    return check_ledger(workspace_ledgers(database_url, workspace_ids, before, balances(apis, keys)), loads)


# The report


def render(options: ScaleOptions, host: str, measured: Measured) -> str:
    runs, ledger = measured.runs, measured.ledger
    one, by_workspace, at_random = runs
    rows = "\n".join(
        f"| {run.name} | {run.processes} | {run.routing} | {run.requests_per_second:,.0f} | {run.percentile_ms(50):.1f} ms | "
        f"{run.percentile_ms(99):.1f} ms | {run.non2xx:,} of {run.requests:,} | {run.load_average:.1f} |"
        for run in runs
    )
    statuses = "; ".join(f"{run.name}: " + ", ".join(f"{s}: {n:,}" for s, n in sorted(run.statuses.items())) for run in runs)
    socket_errors = "; ".join(f"{run.name}: {run.socket_errors()}" for run in runs)
    verdict = "**sound**" if ledger.sound else "**NOT SOUND**"
    half = options.connections // 2
    return f"""
## Scale-out: 1 vs 2 API processes

Command: `make bench`, which also runs `{options.command()}` ({datetime.now(UTC):%Y-%m-%d %H:%M} UTC): the system as
`pressroom up` runs it on an embedded PostgreSQL, plus a second API process (`python -m api.cli api`, the same
settings, its own port) on the same database. Copy jobs, {options.connections} connections in total, {options.workspaces}
workspaces, {options.duration} s per scenario; with 2 processes, two wrk instances at once with {half} connections each,
one per process. Both processes first took {options.warm_up} s of load with every key (a warm-up, not measured). Each
scenario ran in {options.rounds} parts of {options.duration // options.rounds} s, in the order a b c, then c b a: the machine's other work
changes during the run, and alternating the order spreads a steady change over the three alike.
Machine: {host}.

| scenario | API processes | routing | req/s | p50 | p99 | non-2xx | 1-min load average before (mean of the parts) |
| --- | --- | --- | --- | --- | --- | --- | --- |
{rows}

**b ÷ a: {by_workspace.requests_per_second / one.requests_per_second:.2f}×** (c ÷ a:
{at_random.requests_per_second / one.requests_per_second:.2f}×). Statuses: {statuses}. wrk socket errors: {socket_errors}
(wrk leaves answers slower than its 2 s timeout out of its percentiles and counts them as timeouts). A scenario's p50
and p99 are merged from the percentiles of each of its wrk instances, to 0.1 of a percentile.

Ledger after the whole run (warm-up, a, b, c), from the event store against the answers: {ledger.answers:,} 2xx answers,
{ledger.debits:,} `credits.debited` events; answers without a debit: {ledger.answered_without_debit}; jobs charged twice:
{ledger.charged_twice}; job ids answered twice: {ledger.repeated_answers}; debits without an answer:
{ledger.debited_without_answer} (requests written but not answered when wrk stopped: {ledger.unanswered_requests}, each of
which may have committed); workspaces whose balance through both processes equals the balance before the load less
its debits plus its refunds: {ledger.exact_workspaces} of {ledger.workspaces}. {verdict}. Error lines in the servers'
logs: {measured.server_errors:,}. 1-minute load average after the run: {measured.load_after:.1f}.

How to read it: both API processes, wrk, PostgreSQL and the background services (projections, relay, generation
worker) share the machine's CPUs, so a second process brings no CPU of its own here: the ratio says what more
writers do for the write path (their batches take turns on the event log's advisory lock) more than what a second
machine would. With random routing both processes write every account: each brings the accounts it keeps in memory
up to date with the events the other stored before every batch, and the version check catches a write that lands
in between (the batch is retried); routing by workspace keeps each account's writes in one process, so that
catch-up query finds nothing new and its batches do not conflict.
"""


def parse_options(argv: list[str] | None) -> ScaleOptions:
    parser = argparse.ArgumentParser(prog="python -m bench.scale_out", description=__doc__)
    parser.add_argument("--duration", type=int, default=20, help="seconds of load per scenario")
    parser.add_argument("--connections", type=int, default=32, help="wrk connections in total, split between the processes")
    parser.add_argument("--workspaces", type=int, default=64, help="workspaces the requests rotate over")
    parser.add_argument("--warm-up", type=int, default=3, help="seconds of unmeasured load on both processes first")
    parser.add_argument("--rounds", type=int, default=2, help="parts each scenario's duration is run in, alternating the order")
    args = parser.parse_args(argv)
    if args.duration % args.rounds:
        parser.error("--duration must be a multiple of --rounds")
    return ScaleOptions(
        duration=args.duration, connections=args.connections, workspaces=args.workspaces, warm_up=args.warm_up, rounds=args.rounds
    )


def measure(options: ScaleOptions, wrk: str, work_dir: Path) -> Measured:
    with EmbeddedPostgres(work_dir / "services", delete_on_close=True) as postgres, EmbeddedBroker() as broker:
        env = services(postgres, broker, "scale_out")
        system = start_system(work_dir / "system", env)
        apis = [system]
        try:
            say(f"`pressroom up` is healthy at {system.base_url}; its output goes to {system.log_path}")
            system_env = {**env, "PRESSROOM_DATA_DIR": str(system.data_dir), "PRESSROOM_ADMIN_TOKEN": system.admin_token}
            apis.append(start_api({**system_env, "PRESSROOM_LOG_LEVEL": "warning"}, work_dir))
            keys = create_workspaces(system, options.workspaces)
            workspace_ids = [UUID(str(get_json(system.base_url, key, "/v1/workspace")["id"])) for key in keys]
            before = [seen[0] for seen in balances(apis[:1], keys)]
            whole = Options(duration=options.duration, connections=options.connections, workspaces=options.workspaces, threads=2)
            half = replace(whole, connections=options.connections // 2, threads=1)
            first, second = (api.base_url for api in apis)

            def plan(name: str, label: str, seconds: int) -> list[Load]:
                """The wrk instances of scenario `name` (see ROUTING)."""
                if name == "a":
                    return [Load(label, first, keys, replace(whole, duration=seconds))]
                each = replace(half, duration=seconds)
                if name == "b":
                    return [Load(f"{label}-1", first, keys[0::2], each), Load(f"{label}-2", second, keys[1::2], each)]
                return [Load(f"{label}-{n}", url, keys, each) for n, url in enumerate((first, second), 1)]

            warm_up = run_loads(wrk, plan("c", "warm-up", options.warm_up), work_dir)
            runs = scenarios(options, wrk, plan, work_dir)
            load_after = os.getloadavg()[0]
            every_load = [*warm_up, *(load for run in runs for load in run.loads)]
            ledger = check(env["PRESSROOM_DATABASE_URL"], apis, keys, workspace_ids, before, every_load)
        finally:
            for api in reversed(apis):
                stop_system(api)
            server_errors = report_server_errors(system) + sum(sum(error_lines(api.log_path).values()) for api in apis[1:])
    return Measured(runs=runs, ledger=ledger, server_errors=server_errors, load_after=load_after)


def main(argv: list[str] | None = None) -> None:
    options = parse_options(argv)
    host = machine()
    with tempfile.TemporaryDirectory(prefix="pressroom-bench-") as work:
        try:
            measured = measure(options, ensure_wrk(), Path(work))
        except BenchError as error:
            say(f"bench failed: {error}")
            sys.exit(1)
    section = render(options, host, measured)
    with REPORT.open("a") as report:
        report.write(section)
    print(section)  # noqa: T201 - the bench's answer
    if not measured.ledger.sound:
        sys.exit(1)


if __name__ == "__main__":
    main()
