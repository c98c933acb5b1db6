"""`make bench`, subscriber part: how long an event takes to reach a subscriber over
`GET /v1/events/stream` (SSE) and by webhook to a receiver on loopback, under a paced job load,
beside the round trip of `GET /v1/workspace` in the same run; appended to docs/BENCHMARKS.md."""

from __future__ import annotations

import argparse
import json
import math
import os
import statistics
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from datetime import datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import psycopg

from adapters.embedded import EmbeddedBroker, EmbeddedPostgres
from bench.job_pipeline import services
from bench.job_requests import (
    JOB_BODY,
    BenchError,
    System,
    create_workspaces,
    machine,
    report_server_errors,
    say,
    start_system,
    stop_system,
)

ROOT = Path(__file__).resolve().parents[1]
REPORT = ROOT / "docs" / "BENCHMARKS.md"
STREAM_READ_TIMEOUT_SECONDS = 2.0
BASELINE_INTERVAL_SECONDS = 0.05
DRAIN_TIMEOUT_SECONDS = 120.0


@dataclass(frozen=True)
class Arrival:
    at: float
    occurred_at: float
    type: str

    @property
    def lag_ms(self) -> float:
        return (self.at - self.occurred_at) * 1000


@dataclass
class Arrivals:
    """The first arrival of each envelope id, by wall-clock time, and how many came again."""

    by_id: dict[str, Arrival] = field(default_factory=dict)
    repeats: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)

    def record(self, envelope: dict[str, Any], at: float) -> None:
        occurred_at = datetime.fromisoformat(envelope["occurredAt"]).timestamp()
        with self.lock:
            if envelope["id"] in self.by_id:
                self.repeats += 1
            else:
                self.by_id[envelope["id"]] = Arrival(at, occurred_at, envelope["type"])

    def since(self, start: float) -> dict[str, Arrival]:
        with self.lock:
            return {key: a for key, a in self.by_id.items() if a.occurred_at >= start}

    def count(self, event_type: str, start: float) -> int:
        return sum(1 for a in self.since(start).values() if a.type == event_type)


# The webhook receiver: a minimal HTTP server on loopback answering 204


class _Receiver(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 128  # the default 5 overflows under 8 concurrent senders, and a dropped SYN costs 1 s
    arrivals: Arrivals


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive: the dispatcher's client reuses its connections
    server: _Receiver

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
        at = time.time()
        self.send_response(204)  # no body, and so no Content-Length, on a 204
        self.end_headers()
        self.server.arrivals.record(json.loads(body), at)

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - the stdlib's name
        pass


class WebhookReceiver:
    def __init__(self) -> None:
        self.arrivals = Arrivals()
        self._server = _Receiver(("127.0.0.1", 0), _Handler)
        self._server.arrivals = self.arrivals
        self._thread = threading.Thread(target=self._server.serve_forever, name="webhook-receiver", daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}/hooks"

    def __enter__(self) -> WebhookReceiver:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()


# The SSE reader: one stream per workspace, resumed with Last-Event-ID when it idles out


class StreamReader(threading.Thread):
    def __init__(self, base_url: str, key: str, arrivals: Arrivals, stop: threading.Event) -> None:
        super().__init__(name="sse-reader", daemon=True)
        self.client = httpx.Client(base_url=base_url, headers={"Authorization": f"Bearer {key}"})
        self.arrivals = arrivals
        self.stop = stop
        self.connected = threading.Event()
        self.last_id: str | None = None
        self.reconnects = 0

    def run(self) -> None:
        timeout = httpx.Timeout(10.0, read=STREAM_READ_TIMEOUT_SECONDS)
        while not self.stop.is_set():
            headers = {"Last-Event-ID": self.last_id} if self.last_id else {}
            try:
                with self.client.stream("GET", "/v1/events/stream", headers=headers, timeout=timeout) as response:
                    response.raise_for_status()
                    self.connected.set()
                    self._read(response)
            except httpx.ReadTimeout:
                self.reconnects += 1  # idle for a while: resume after the last id seen
        self.client.close()

    def _read(self, response: httpx.Response) -> None:
        for line in response.iter_lines():
            if line.startswith("id: "):
                self.last_id = line[4:]
            elif line.startswith("data: "):
                self.arrivals.record(json.loads(line[6:]), time.time())
            if self.stop.is_set():
                return


# The baseline: a trivial authenticated read, timed over the same period


class Baseline(threading.Thread):
    def __init__(self, base_url: str, key: str, stop: threading.Event) -> None:
        super().__init__(name="baseline", daemon=True)
        self.client = httpx.Client(base_url=base_url, headers={"Authorization": f"Bearer {key}"}, timeout=30.0)
        self.stop = stop
        self.samples_ms: list[float] = []

    def run(self) -> None:
        while not self.stop.wait(BASELINE_INTERVAL_SECONDS):
            start = time.perf_counter()
            self.client.get("/v1/workspace").raise_for_status()
            self.samples_ms.append((time.perf_counter() - start) * 1000)
        self.client.close()


# Load and measurement


@dataclass(frozen=True)
class Summary:
    count: int
    p50: float
    p99: float
    max: float


def percentile(values: list[float], fraction: float) -> float:
    """Nearest rank."""
    ordered = sorted(values)
    return ordered[max(math.ceil(fraction * len(ordered)) - 1, 0)]


def summarise(values: list[float]) -> Summary:
    if not values:
        raise BenchError("no samples")
    return Summary(len(values), statistics.median(values), percentile(values, 0.99), max(values))


@dataclass(frozen=True)
class Result:
    jobs: int
    rate: float
    workspaces: int
    load_seconds: float
    sse: Summary
    webhooks: Summary
    baseline: Summary
    queued: Summary
    sent: Summary
    sse_by_fifth: list[float]
    webhooks_by_fifth: list[float]
    repeats: int
    missing: int
    reconnects: int
    server_errors: int


def subscribe(system: System, key: str, url: str) -> None:
    headers = {"Authorization": f"Bearer {key}"}
    created = httpx.post(f"{system.base_url}/v1/webhooks", json={"url": url, "events": ["*"]}, headers=headers, timeout=30.0)
    created.raise_for_status()


def drive(clients: list[httpx.Client], jobs: int, rate: float) -> float:
    """`jobs` copy jobs, one every 1/rate s, round-robin over the workspaces; returns the seconds it took."""
    start = time.monotonic()

    def request(n: int) -> None:
        time.sleep(max(0.0, start + n / rate - time.monotonic()))
        clients[n % len(clients)].post("/v1/jobs", json=JOB_BODY).raise_for_status()

    with ThreadPoolExecutor(max_workers=16) as pool:
        list(pool.map(request, range(jobs)))
    return time.monotonic() - start


def wait_until(done: Any, what: str, timeout: float = DRAIN_TIMEOUT_SECONDS) -> None:
    deadline = time.monotonic() + timeout
    while not done():
        if time.monotonic() > deadline:
            raise BenchError(f"{what} did not happen within {timeout:.0f} s")
        time.sleep(0.1)


def warm_up(clients: list[httpx.Client], sse: Arrivals, webhooks: Arrivals) -> None:
    """A job per workspace, seen on both paths: the consumer groups have their partitions before the timing starts."""
    start = time.time()
    for client in clients:
        client.post("/v1/jobs", json=JOB_BODY).raise_for_status()
    wanted = len(clients)
    wait_until(
        lambda: sse.count("job.completed", start) >= wanted and webhooks.count("job.completed", start) >= wanted,
        "the warm-up jobs' completion on both paths",
    )


def webhook_stages(database_url: str, arrivals: dict[str, Arrival]) -> tuple[Summary, Summary]:
    """Each delivery split where the webhooks process queued it: event made → queued (relay, Kafka, consumer
    group) and queued → received (delivery queue, POST)."""
    with psycopg.connect(database_url) as conn:
        rows = conn.execute("SELECT event_id, created_at FROM webhook_deliveries WHERE replay = 0").fetchall()
    queued_at = {str(event_id): created_at.timestamp() for event_id, created_at in rows}
    pairs = [(queued_at[key], a) for key, a in arrivals.items() if key in queued_at]
    return (
        summarise([(queued - a.occurred_at) * 1000 for queued, a in pairs]),
        summarise([(a.at - queued) * 1000 for queued, a in pairs]),
    )


def measure(system: System, args: argparse.Namespace, receiver: WebhookReceiver, database_url: str) -> Result:
    keys = create_workspaces(system, args.workspaces)
    for key in keys:
        subscribe(system, key, receiver.url)
    stop = threading.Event()
    sse = Arrivals()
    readers = [StreamReader(system.base_url, key, sse, stop) for key in keys]
    for reader in readers:
        reader.start()
    for reader in readers:
        if not reader.connected.wait(30):
            raise BenchError("the event stream did not answer within 30 s")
    clients = [httpx.Client(base_url=system.base_url, headers={"Authorization": f"Bearer {key}"}, timeout=60.0) for key in keys]
    baseline = Baseline(system.base_url, keys[0], stop)
    try:
        warm_up(clients, sse, receiver.arrivals)
        say(f"warm; {args.jobs} jobs at {args.rate:g}/s over {args.workspaces} workspaces")
        start = time.time()
        baseline.start()
        reconnects = sum(r.reconnects for r in readers)
        load_seconds = drive(clients, args.jobs, args.rate)
        reconnects = sum(r.reconnects for r in readers) - reconnects
        wait_until(
            lambda: sse.count("job.completed", start) >= args.jobs and receiver.arrivals.count("job.completed", start) >= args.jobs,
            "every job's completion on both paths",
        )
        time.sleep(1.0)  # stragglers of other types
    finally:
        stop.set()
        for client in clients:
            client.close()
    for thread in [baseline, *readers]:
        thread.join(10)
    by_sse, by_webhook = sse.since(start), receiver.arrivals.since(start)
    queued, sent = webhook_stages(database_url, by_webhook)
    return Result(
        jobs=args.jobs,
        rate=args.rate,
        workspaces=args.workspaces,
        load_seconds=load_seconds,
        sse=summarise([a.lag_ms for a in by_sse.values()]),
        webhooks=summarise([a.lag_ms for a in by_webhook.values()]),
        baseline=summarise(baseline.samples_ms),
        queued=queued,
        sent=sent,
        sse_by_fifth=medians_by_fifth(list(by_sse.values()), start, load_seconds),
        webhooks_by_fifth=medians_by_fifth(list(by_webhook.values()), start, load_seconds),
        repeats=sse.repeats + receiver.arrivals.repeats,
        missing=len(by_sse.keys() ^ by_webhook.keys()),
        reconnects=reconnects,
        server_errors=0,
    )


def medians_by_fifth(arrivals: list[Arrival], start: float, seconds: float) -> list[float]:
    """Median lag of the events made in each fifth of the load: flat when a path keeps up, rising when it queues."""
    fifths: list[list[float]] = [[] for _ in range(5)]
    for a in arrivals:
        fifths[min(int((a.occurred_at - start) / seconds * 5), 4)].append(a.lag_ms)
    return [statistics.median(lags) if lags else math.nan for lags in fifths]


# The report


def keeping_up(path: str, medians: list[float]) -> str:
    first, last = medians[0], medians[-1]
    if last > 2 * first:
        return f"{path} fell behind the load: its median lag grew from {first:.0f} ms to {last:.0f} ms, so at this rate it queues."
    return f"{path} kept up with the load (median lag {first:.0f} ms in the first fifth, {last:.0f} ms in the last)."


def dominant(result: Result) -> str:
    if result.sent.p50 > result.queued.p50:
        return f"the delivery queue (p50 {result.sent.p50:.0f} ms against {result.queued.p50:.0f} ms to get into it)"
    return f"getting into the delivery queue (p50 {result.queued.p50:.0f} ms against {result.sent.p50:.0f} ms from there to the receiver)"


def render(result: Result, host: str, command: str, load_after: float) -> str:
    base = result.baseline

    def row(name: str, s: Summary) -> str:
        return (
            f"| {name} | {s.count:,} | **{s.p50:.0f} ms** ({s.p50 / base.p50:.1f}×) | **{s.p99:.0f} ms** ({s.p99 / base.p99:.1f}×) "
            f"| {s.max:.0f} ms |"
        )

    def plain(name: str, s: Summary) -> str:
        return f"| {name} | {s.count:,} | {s.p50:.1f} ms | {s.p99:.1f} ms | {s.max:.0f} ms |"

    def fifths(name: str, medians: list[float]) -> str:
        return f"| {name} | " + " | ".join(f"{m:.0f} ms" for m in medians) + " |"

    return f"""
## Event stream and webhook lag

Command: `make bench`, which also runs `{command}` (the system as `pressroom up` runs it).
Machine: {host}.

{result.jobs} copy jobs at {result.rate:g}/s ({result.load_seconds:.1f} s) over {result.workspaces} workspaces, each
subscribed twice: a `GET /v1/events/stream` reader and a webhook for `*` to a receiver on loopback answering 204.
Lag is the wall-clock arrival time minus the envelope's `occurredAt`, for every event of the load
(`job.requested`, `credits.debited`, `job.started`, `job.completed`, …). `occurredAt` is taken in the
writing process when the command makes the event, a few milliseconds before its transaction commits,
so these figures slightly overstate commit → received. The baseline is the round trip of
`GET /v1/workspace` (one authenticated read), sampled every {BASELINE_INTERVAL_SECONDS * 1000:.0f} ms during the same load.

| path | events | p50 (× baseline p50) | p99 (× baseline p99) | max |
| --- | --- | --- | --- | --- |
{row("`GET /v1/events/stream` (SSE)", result.sse)}
{row("webhook delivery", result.webhooks)}
{plain("… of which event made → queued for delivery (relay, Kafka, consumer group)", result.queued)}
{plain("… of which queued → received (delivery queue, signed POST)", result.sent)}
{plain("baseline: `GET /v1/workspace` round trip", base)}

Median lag of the events made in each fifth of the load (flat when a path keeps up with the load, rising when it queues):

| path | 1st | 2nd | 3rd | 4th | 5th |
| --- | --- | --- | --- | --- | --- |
{fifths("SSE", result.sse_by_fifth)}
{fifths("webhook", result.webhooks_by_fifth)}

{keeping_up("SSE", result.sse_by_fifth)} {keeping_up("Webhook delivery", result.webhooks_by_fifth)}
Events seen on one path only: {result.missing}; seen twice: {result.repeats}; stream reconnections during the load: {result.reconnects}.
Error lines in the server's log: {result.server_errors}. 1-minute load average after the run: {load_after:.1f}.

What the lag is made of. A webhook goes event store → relay (woken by LISTEN/NOTIFY; it waits for the broker's
acknowledgement) → Kafka → the webhooks consumer group (a fetch returns on the first record, or after 100 ms) →
the `webhook_deliveries` table → the delivery loop, which claims up to 32 due deliveries, POSTs them on 8
threads, writes each attempt in its own transaction, and claims again only when the whole round is done.
In this run, {dominant(result)} took most of a webhook's lag.
SSE reads the `audit_log` read model, which the projections process fills (also woken by LISTEN/NOTIFY),
and the stream polls it every 0.2 s when it has nothing to send (`STREAM_POLL_SECONDS` in
`api/controllers/audit.py`), so an event that lands while it sleeps waits up to 200 ms more; waking the
stream on the projection's commit (LISTEN/NOTIFY) would remove that wait.

The receiver keeps connections alive and listens with a backlog of 128. With `http.server`'s defaults (a
connection per delivery, a backlog of 5) the kernel dropped connection attempts, each retried after 1 s
while the rest of its round of 32 waited, and webhook p50 was 4–7 s at the same load: one slow receiver
delays every webhook's deliveries.
"""


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.event_lag", description=__doc__)
    parser.add_argument("--jobs", type=int, default=300, help="copy jobs requested during the measurement")
    parser.add_argument("--rate", type=float, default=20.0, help="jobs requested per second")
    parser.add_argument("--workspaces", type=int, default=3, help="workspaces the jobs rotate over, each subscribed")
    args = parser.parse_args(argv)
    command = f"python -m bench.event_lag --jobs {args.jobs} --rate {args.rate:g} --workspaces {args.workspaces}"
    host = machine()
    with (
        tempfile.TemporaryDirectory(prefix="pressroom-bench-") as work,
        EmbeddedPostgres(Path(work) / "services", delete_on_close=True) as postgres,
        EmbeddedBroker() as broker,
        WebhookReceiver() as receiver,
    ):
        env = {**services(postgres, broker, "lag"), "PRESSROOM_ALLOW_PRIVATE_URLS": "true"}
        system = start_system(Path(work) / "lag", env)
        try:
            result = measure(system, args, receiver, env["PRESSROOM_DATABASE_URL"])
            load_after = os.getloadavg()[0]
        finally:
            stop_system(system)
        result = replace(result, server_errors=report_server_errors(system))
    section = render(result, host, command, load_after)
    with REPORT.open("a") as report:
        report.write(section)
    print(section)  # noqa: T201 - the bench's answer


if __name__ == "__main__":
    main()
