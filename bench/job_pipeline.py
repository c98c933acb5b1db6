"""`make bench`, third part: a job's whole trip (request → `completed` visible over HTTP) with the local
copy provider, and job throughput with a provider that answers in 500 ms, for 1 and 2 worker
processes; appended to docs/BENCHMARKS.md."""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import httpx
import psycopg
from psycopg.conninfo import make_conninfo

from adapters.embedded import EmbeddedBroker, EmbeddedPostgres
from api.cli import EMBEDDED_MAX_CONNECTIONS
from bench.job_requests import System, create_workspaces, start_system, stop_system
from tests.fakes import FakeOpenAI

ROOT = Path(__file__).resolve().parents[1]
REPORT = ROOT / "docs" / "BENCHMARKS.md"
COPY_JOB = {"type": "copy", "input": {"product": {"name": "Bench Lamp", "description": "A lamp."}, "platform": "x", "count": 1}}
PROVIDER_SECONDS = 0.5


@dataclass(frozen=True)
class Throughput:
    workers: int
    jobs: int
    seconds: float

    @property
    def per_second(self) -> float:
        return self.jobs / self.seconds


def workspace_client(system: System) -> httpx.Client:
    """A client with the key of a new, well-funded workspace."""
    secret = create_workspaces(system, 1)[0]
    return httpx.Client(base_url=system.base_url, headers={"Authorization": f"Bearer {secret}"}, timeout=60)


def until_done(client: httpx.Client, job_id: str, poll: float = 0.005, timeout: float = 120.0) -> None:
    deadline = time.monotonic() + timeout
    while client.get(f"/v1/jobs/{job_id}").json()["status"] != "completed":
        if time.monotonic() > deadline:
            raise RuntimeError(f"job {job_id} did not complete in {timeout} s")
        time.sleep(poll)


def trip_latencies(system: System, jobs: int) -> list[float]:
    """One job at a time: milliseconds from sending the request to seeing `completed`."""
    client = workspace_client(system)
    latencies = []
    for _ in range(jobs):
        start = time.perf_counter()
        until_done(client, client.post("/v1/jobs", json=COPY_JOB).json()["jobId"])
        latencies.append((time.perf_counter() - start) * 1000)
    return sorted(latencies)


def throughput(system: System, jobs: int, workers: int) -> Throughput:
    """`jobs` requested at once; the time until every one of them is completed."""
    client = workspace_client(system)
    start = time.perf_counter()
    with ThreadPoolExecutor(max_workers=16) as pool:
        ids = list(pool.map(lambda _: client.post("/v1/jobs", json=COPY_JOB).json()["jobId"], range(jobs)))
        list(pool.map(lambda job_id: until_done(client, job_id, poll=0.1), ids))
    return Throughput(workers=workers, jobs=jobs, seconds=time.perf_counter() - start)


def extra_worker(env: dict[str, str]) -> subprocess.Popen[bytes]:
    """Another worker process in the same consumer group."""
    quiet = {"PRESSROOM_LOG_LEVEL": "warning"}
    return subprocess.Popen([sys.executable, "-m", "api.cli", "worker"], env={**os.environ, **env, **quiet}, start_new_session=True)


def services(postgres: EmbeddedPostgres, broker: EmbeddedBroker, name: str) -> dict[str, str]:
    """Settings for one run on its own database and topics of the shared PostgreSQL and broker."""
    postgres.ensure(at_least={"max_connections": EMBEDDED_MAX_CONNECTIONS})  # every service keeps its own connections
    with psycopg.connect(postgres.url, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')  # type: ignore[arg-type]
    return {
        "PRESSROOM_DATABASE_URL": make_conninfo(postgres.url, dbname=name),
        "PRESSROOM_KAFKA_BOOTSTRAP": broker.bootstrap,
        "PRESSROOM_KAFKA_NAMESPACE": name,
        "PRESSROOM_SECRET_KEY": "bench",
        "PRESSROOM_KAFKA_SESSION_TIMEOUT_MS": "6000",
        "PRESSROOM_KAFKA_HEARTBEAT_INTERVAL_MS": "1000",
    }


def render(trips: list[float], runs: list[Throughput]) -> str:
    p99 = trips[max(int(len(trips) * 0.99) - 1, 0)]
    rows = "\n".join(f"| {r.workers} | {r.jobs} | {r.seconds:.1f} s | {r.per_second:.1f} jobs/s |" for r in runs)
    ratio = runs[1].per_second / runs[0].per_second
    return f"""
## Jobs end to end

Command: `make bench`, which also runs `python -m bench.job_pipeline` (the system as `pressroom up` runs it).

Local copy job, one at a time, from sending `POST /v1/jobs` to `GET /v1/jobs/{{id}}` answering
`completed` ({len(trips)} jobs): **p50 {statistics.median(trips):.0f} ms, p99 {p99:.0f} ms**.

Throughput with a provider that answers in {PROVIDER_SECONDS * 1000:.0f} ms (an OpenAI-compatible fake on loopback),
copy jobs requested at once, until all are completed:

| worker processes | jobs | time | throughput |
| --- | --- | --- | --- |
{rows}

Two workers did {ratio:.2f}× the work of one. Each worker runs up to 8 jobs at once, so a slow
provider does not serialise it; a second process in the same consumer group takes half the partitions.
"""


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.job_pipeline", description=__doc__)
    parser.add_argument("--trips", type=int, default=100, help="jobs timed one at a time")
    parser.add_argument("--jobs", type=int, default=160, help="jobs per throughput run")
    args = parser.parse_args(argv)
    with (
        tempfile.TemporaryDirectory(prefix="pressroom-bench-") as work,
        EmbeddedPostgres(Path(work) / "services", delete_on_close=True) as postgres,
        EmbeddedBroker() as broker,
    ):
        system = start_system(Path(work) / "local", services(postgres, broker, "trips"))
        try:
            trips = trip_latencies(system, args.trips)
        finally:
            stop_system(system)
        with FakeOpenAI() as fake:
            fake.stall("POST", "/v1/chat/completions", seconds=PROVIDER_SECONDS)
            env = {
                **services(postgres, broker, "slow"),
                "PRESSROOM_COPY_PROVIDER": "openai",
                "PRESSROOM_OPENAI_BASE_URL": fake.base_url,
                "PRESSROOM_OPENAI_API_KEY": fake.api_key,
                "PRESSROOM_ALLOW_PRIVATE_URLS": "true",
            }
            system = start_system(Path(work) / "slow", env)
            try:
                one = throughput(system, args.jobs, workers=1)
                second = extra_worker(env)
                try:
                    time.sleep(8)  # the group rebalances onto both workers
                    two = throughput(system, args.jobs, workers=2)
                finally:
                    second.terminate()
                    second.wait(15)
            finally:
                stop_system(system)
    section = render(trips, [one, two])
    with REPORT.open("a") as report:
        report.write(section)
    print(section)  # noqa: T201 - the bench's answer


if __name__ == "__main__":
    main()
