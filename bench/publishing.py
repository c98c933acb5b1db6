"""`make bench`, publishing part: how late 1,000 posts due in the same minute reach a webhook receiver that
answers in 100 ms and show as `published`, and what the scheduler costs with 100,000 future posts pending
against none, in one run of the whole system; appended to docs/BENCHMARKS.md."""

from __future__ import annotations

import argparse
import json
import math
import os
import re
import statistics
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from uuid import UUID, uuid4

import httpx
import psycopg
from psycopg_pool import ConnectionPool

from adapters.embedded import EmbeddedBroker, EmbeddedPostgres
from api.cli import EMBEDDED_MAX_CONNECTIONS
from bench.event_lag import percentile
from bench.job_pipeline import services
from bench.job_requests import BenchError, System, create_workspaces, machine, report_server_errors, say, start_system, stop_system
from domain.providers import provider
from projections.posts import due_posts, earlier_post_open

ROOT = Path(__file__).resolve().parents[1]
REPORT = ROOT / "docs" / "BENCHMARKS.md"
RECEIVER_SECONDS = 0.1
PAGE = 200
POLL_SECONDS = 0.25
# Posts per schedule envelope. An envelope takes up to 1,000 (domain/schedule.py MAX_POSTS), but applies of 1,000, and of
# 500 while the system was busy, hung in eventsourcing's `insert_events` (psycopg pipeline waiting, the server in ClientRead,
# the events table locked for everyone else), so the bench sends envelopes of 100.
PER_APPLY = 100
APPLY_TIMEOUT_SECONDS = 60.0
ORDER_DELAY = "waiting"  # the start of the reason a post is delayed behind an earlier post to its account
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")
TERMINAL = frozenset({"published", "failed", "canceled", "deleted"})


# The provider's fake: a webhook receiver on loopback that takes each post and answers after 100 ms


@dataclass
class Deliveries:
    """When each post first reached the receiver (wall clock), and how many came again."""

    first: dict[str, float] = field(default_factory=dict)
    repeats: Counter[str] = field(default_factory=Counter)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def record(self, post_id: str, at: float) -> None:
        with self.lock:
            if post_id in self.first:
                self.repeats[post_id] += 1
            else:
                self.first[post_id] = at


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 1024  # the default 5 drops SYNs under concurrent senders, and a dropped SYN costs 1 s
    deliveries: Deliveries


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive: the publisher's client reuses its connections
    server: _Server

    def do_POST(self) -> None:
        body = json.loads(self.rfile.read(int(self.headers.get("Content-Length", "0"))))
        self.server.deliveries.record(body["id"], time.time())
        time.sleep(RECEIVER_SECONDS)
        answer = json.dumps({"id": f"fake-{body['id']}", "url": f"https://fake.invalid/posts/{body['id']}"}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(answer)))
        self.end_headers()
        self.wfile.write(answer)

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - the stdlib's name
        pass


class PostReceiver:
    def __init__(self) -> None:
        self.deliveries = Deliveries()
        self._server = _Server(("127.0.0.1", 0), _Handler)
        self._server.deliveries = self.deliveries
        self._thread = threading.Thread(target=self._server.serve_forever, name="post-receiver", daemon=True)

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}/{path}"

    def __enter__(self) -> PostReceiver:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()


# Talking to the API


def workspace_client(system: System) -> httpx.Client:
    secret = create_workspaces(system, 1)[0]
    return httpx.Client(base_url=system.base_url, headers={"Authorization": f"Bearer {secret}"}, timeout=300.0)


def wait_until(done: Callable[[], bool], what: str, timeout: float, poll: float = 0.25) -> None:
    deadline = time.monotonic() + timeout
    while not done():
        if time.monotonic() > deadline:
            raise BenchError(f"{what} did not happen within {timeout:.0f} s")
        time.sleep(poll)


def connect_accounts(client: httpx.Client, receiver: PostReceiver, count: int) -> list[str]:
    """`count` webhook accounts, each posting to its own path of the receiver; their ids once `GET /v1/accounts` lists them."""

    def connect(n: int) -> str:
        created = client.post("/v1/connections", json={"provider": "webhook", "url": receiver.url(f"accounts/{n}")})
        created.raise_for_status()
        return str(created.json()["connection"]["id"])

    with ThreadPoolExecutor(max_workers=4) as pool:
        ids = list(pool.map(connect, range(count)))
    wait_until(lambda: set(ids) <= {a["id"] for a in client.get("/v1/accounts").json()["accounts"]}, "the accounts to be listed", 120)
    return ids


def rfc3339(at: datetime) -> str:
    return at.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def schedule(accounts: list[str], times: list[datetime], label: str) -> list[dict[str, str]]:
    return [{"account": accounts[n % len(accounts)], "text": f"{label} post {n}", "publishAt": rfc3339(at)} for n, at in enumerate(times)]


@dataclass(frozen=True)
class Applied:
    run_ids: list[str]
    seconds: list[float]  # each apply's round trip


def apply(client: httpx.Client, posts: list[dict[str, str]], per_apply: int, parallel: int = 1, budget: float | None = None) -> Applied:
    """The posts in envelopes of `per_apply`, `parallel` at a time; stops starting new ones when `budget` seconds have passed."""
    chunks = [posts[i : i + per_apply] for i in range(0, len(posts), per_apply)]
    start = time.monotonic()

    def one(chunk: list[dict[str, str]]) -> tuple[str, float] | None:
        if budget is not None and time.monotonic() - start > budget:
            return None
        began = time.perf_counter()
        try:
            answer = client.post("/v1/posts/apply", json={"timezone": "UTC", "posts": chunk}, timeout=APPLY_TIMEOUT_SECONDS)
        except httpx.TimeoutException:
            raise BenchError(f"an apply of {len(chunk)} posts did not answer within {APPLY_TIMEOUT_SECONDS:.0f} s") from None
        if answer.status_code != 201:
            raise BenchError(f"apply of {len(chunk)} posts answered {answer.status_code}: {answer.text[:500]}")
        return answer.json()["run"]["id"], time.perf_counter() - began

    with ThreadPoolExecutor(max_workers=parallel) as pool:
        done = [r for r in pool.map(one, chunks) if r is not None]
    return Applied([run_id for run_id, _ in done], [seconds for _, seconds in done])


def run_posts(client: httpx.Client, run_id: str) -> Iterator[dict[str, Any]]:
    offset = 0
    while True:
        page = client.get("/v1/posts", params={"runId": run_id, "limit": PAGE, "offset": offset}).json()
        yield from page["posts"]
        offset += PAGE
        if offset >= page["total"]:
            return


@dataclass
class Watched:
    """Each post as last listed, and when `GET /v1/posts` first listed it `published` (wall clock)."""

    posts: dict[str, dict[str, Any]] = field(default_factory=dict)
    seen_published: dict[str, float] = field(default_factory=dict)
    polls: int = 0
    poll_seconds: list[float] = field(default_factory=list)

    def settled(self, expected: int) -> bool:
        return len(self.posts) == expected and all(p["status"] in TERMINAL for p in self.posts.values())


def watch(client: httpx.Client, run_ids: list[str], expected: int, timeout: float) -> Watched:
    """Lists the runs' posts over and over until every one is terminal, or `timeout` seconds pass."""
    watched = Watched()
    deadline = time.monotonic() + timeout
    while not watched.settled(expected) and time.monotonic() < deadline:
        began = time.perf_counter()
        for run_id in run_ids:
            for post in run_posts(client, run_id):
                watched.posts[post["id"]] = post
                if post["status"] == "published":
                    watched.seen_published.setdefault(post["id"], time.time())
        watched.polls += 1
        watched.poll_seconds.append(time.perf_counter() - began)
        time.sleep(POLL_SECONDS)
    return watched


def attempts(client: httpx.Client, post_ids: list[str]) -> dict[str, list[dict[str, Any]]]:
    with ThreadPoolExecutor(max_workers=8) as pool:
        answers = pool.map(lambda post_id: client.get(f"/v1/posts/{post_id}/attempts").json()["attempts"], post_ids)
        return dict(zip(post_ids, answers, strict=True))


def at(text: str) -> float:
    return datetime.fromisoformat(text).timestamp()


# The database, read directly for what the API does not show


@dataclass(frozen=True)
class History:
    """What the audit log recorded of the posts: the first hand-over of each, how often each event type occurred,
    and how many attempts a scheduler started itself (taking over a hand-over no worker had started)."""

    handed: dict[str, float]
    counts: Counter[str]
    delay_reasons: Counter[str]
    taken_over: int


def history(database_url: str, post_ids: list[str], run_ids: list[str]) -> History:
    with psycopg.connect(database_url) as conn:
        rows = conn.execute(
            "SELECT aggregate_id::text, type, occurred_at, envelope->'data'->>'reason' FROM audit_log WHERE aggregate_id = ANY(%s::uuid[])",
            (post_ids + run_ids,),
        ).fetchall()
        (taken_over,) = conn.execute(
            "SELECT count(*) FROM audit_log WHERE aggregate_id = ANY(%s::uuid[]) AND type = 'post.attempt_started' "
            "AND metadata->>'actor' LIKE 'scheduler:%%'",
            (post_ids,),
        ).fetchone() or (0,)
    handed: dict[str, float] = {}
    for post_id, event_type, occurred_at, _ in rows:
        if event_type == "post.publish_requested":
            handed[post_id] = min(handed.get(post_id, math.inf), occurred_at.timestamp())
    return History(
        handed=handed,
        counts=Counter(event_type for _, event_type, _, _ in rows),
        delay_reasons=Counter((reason or "").split(":")[0] for _, event_type, _, reason in rows if event_type == "post.delayed"),
        taken_over=taken_over,
    )


def _last_position(conn: psycopg.Connection[Any], table: str) -> int:
    row = conn.execute(f'SELECT coalesce(max(notification_id), 0) FROM "{table}"').fetchone()  # type: ignore[arg-type]
    return int(row[0]) if row is not None else 0


def caught_up(database_url: str) -> bool:
    """Whether every follower of the event log (each read model, the relay) has reached its last notification."""
    with psycopg.connect(database_url) as conn:
        tables = conn.execute(
            "SELECT table_name, bool_or(column_name = 'originator_id') FROM information_schema.columns "
            "WHERE table_schema = 'public' AND column_name IN ('notification_id', 'originator_id', 'application_name') "
            "GROUP BY table_name HAVING bool_or(column_name = 'notification_id')"
        ).fetchall()
        heads = [_last_position(conn, name) for name, is_log in tables if is_log]
        followers = [_last_position(conn, name) for name, is_log in tables if not is_log]
    if not heads or not followers:
        raise BenchError("found no event log or no tracking tables")
    return min(followers) >= max(heads)


def wait_caught_up(database_url: str, timeout: float) -> float:
    """Waits until every read model and the relay have taken the whole log; returns the seconds it took."""
    start = time.monotonic()
    wait_until(lambda: caught_up(database_url), "the read models and the relay catching up", timeout, poll=1.0)
    return time.monotonic() - start


@dataclass(frozen=True)
class QueryCost:
    calls: int
    p50_ms: float  # round trip from this process
    p99_ms: float
    server_ms: float  # median of the plan's actual time in the server, as auto_explain reports it
    plan: str


Query = Callable[[ConnectionPool[Any]], object]
EXPLAINED_CALLS = 200
_ACTUAL = re.compile(r"actual time=[\d.]+\.\.([\d.]+)")


def query_cost(database_url: str, query: Query, calls: int, marker: str) -> QueryCost:
    """A read-model query timed from this process (round trip included), then its plan with actual times as
    auto_explain reports it (`marker`: text of the SQL that picks its plans from the others)."""
    with ConnectionPool(database_url, min_size=1, max_size=1, open=True, kwargs={"autocommit": True}) as pool:
        query(pool)  # the pool's connection is open and warm
        samples = []
        for _ in range(calls):
            began = time.perf_counter()
            query(pool)
            samples.append((time.perf_counter() - began) * 1000)
    server_ms, plan = explained(database_url, query, marker)
    return QueryCost(calls, statistics.median(samples), percentile(samples, 0.99), server_ms, plan)


def explained(database_url: str, query: Query, marker: str) -> tuple[float, str]:
    """The median of the top plan node's actual time over EXPLAINED_CALLS calls, and the last plan, node by node."""
    notices: list[str] = []

    def explaining(conn: psycopg.Connection[Any]) -> None:
        conn.execute("LOAD 'auto_explain'")
        for setting in ("log_min_duration = 0", "log_analyze = on", "log_timing = on", "log_level = notice"):
            conn.execute(f"SET auto_explain.{setting}")  # type: ignore[arg-type]
        conn.add_notice_handler(lambda diagnostic: notices.append(diagnostic.message_primary or ""))

    with ConnectionPool(database_url, min_size=1, max_size=1, open=True, configure=explaining, kwargs={"autocommit": True}) as pool:
        for _ in range(EXPLAINED_CALLS):
            query(pool)
    plans = [n for n in notices if marker in n]
    times = [float(found.group(1)) for n in plans if (found := _ACTUAL.search(n))]
    if not plans or not times:
        return math.nan, "(auto_explain reported no plan)"
    nodes = [line.strip().removeprefix("->").strip() for line in plans[-1].splitlines() if re.match(r"\s*(->|[A-Z][a-z]+ .*\(cost=)", line)]
    return statistics.median(times), " ← ".join(re.sub(r"\s*\(cost=[^)]*\)", "", node).replace("actual time=", "") for node in nodes)


def scheduler_query(pool: ConnectionPool[Any]) -> object:
    return due_posts(pool, datetime.now(UTC))


def order_check(account_id: str) -> Query:
    """The worker's check before each attempt: is an earlier post to this account still open?"""

    def query(pool: ConnectionPool[Any]) -> object:
        return earlier_post_open(pool, UUID(account_id), uuid4(), datetime.now(UTC))

    return query


def log_problems(log_path: Path) -> Counter[str]:
    """The server log's warnings and errors, counted by process, event and the start of the error."""
    problems: Counter[str] = Counter()
    for line in log_path.read_text(errors="replace").splitlines():
        try:
            record = json.loads(line)
        except ValueError:
            continue
        if isinstance(record, dict) and record.get("level") in ("warning", "error", "critical"):
            error = str(record.get("error") or record.get("exception") or "").splitlines()
            text = f"{record.get('process', '?')} {record.get('event')} {error[0][:100] if error else ''}".strip()
            problems[re.sub(r"0x[0-9a-f]+|\d+\.\d+s", "…", text)] += 1
    return problems


# CPU from /proc


def _stat(pid: int) -> list[str] | None:
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return text[text.rindex(")") + 2 :].split()  # the fields after the command name, from `state` on


def children(pid: int) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit() and (fields := _stat(int(entry.name))) is not None and int(fields[1]) == pid:
            found.append(int(entry.name))
    return found


def cpu_ticks(pids: list[int]) -> dict[int, int]:
    ticks = {}
    for pid in pids:
        if (fields := _stat(pid)) is not None:
            ticks[pid] = int(fields[11]) + int(fields[12])  # utime, stime
    return ticks


def command_line(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
    except OSError:
        return ""


@dataclass(frozen=True)
class Processes:
    up: int  # `pressroom up`, whose children are the services
    postmaster: int

    def groups(self) -> dict[str, list[int]]:
        services = children(self.up)
        return {
            "sweeper": [pid for pid in services if command_line(pid).rstrip().endswith("api.cli sweeper")],
            "services": services,
            "postgres": [self.postmaster, *children(self.postmaster)],
        }

    def sample(self, seconds: float) -> dict[str, float]:
        """CPU % of one core over `seconds`: the sweeper, all Pressroom services, and PostgreSQL with its backends.
        A process that started during the sample counts whole; one that ended during it is left out."""
        before = {name: cpu_ticks(pids) for name, pids in self.groups().items()}
        began = time.monotonic()
        time.sleep(seconds)
        elapsed = time.monotonic() - began
        after = {name: cpu_ticks(pids) for name, pids in self.groups().items()}
        return {
            name: sum(t - before[name].get(pid, 0) for pid, t in ticks.items()) / CLOCK_TICKS / elapsed * 100
            for name, ticks in after.items()
        }


def processes(system: System, postgres: EmbeddedPostgres) -> Processes:
    postmaster = int((Path(postgres.server.pgdata) / "postmaster.pid").read_text().split()[0])
    found = Processes(system.process.pid, postmaster)
    if len(found.groups()["sweeper"]) != 1:
        raise BenchError(f"expected one sweeper process under `pressroom up`, found {found.groups()['sweeper']}")
    return found


def wait_idle(procs: Processes, timeout: float) -> float:
    """Waits until the services' CPU over 5 s stops falling (the Kafka consumers have read what the relay sent);
    returns the seconds waited."""
    start = time.monotonic()
    last = procs.sample(5.0)["services"]
    while time.monotonic() - start < timeout:
        now = procs.sample(5.0)["services"]
        if now >= 0.8 * last or now < 15:
            break
        last = now
    return time.monotonic() - start


def wait_quiet(procs: Processes, idle: dict[str, float], timeout: float) -> tuple[float, dict[str, float]]:
    """Waits until the services use no more CPU than when idle (Kafka consumers are still reading the
    relayed backlog after the read models catch up); returns the seconds waited and the last sample."""
    start = time.monotonic()
    while True:
        sample = procs.sample(5.0)
        if sample["services"] <= max(1.5 * idle["services"], idle["services"] + 5) or time.monotonic() - start > timeout:
            return time.monotonic() - start, sample


# The two measurements


@dataclass(frozen=True)
class Stage:
    """Lags to one stage over every post of a scenario; a post that never got there counts as infinitely late."""

    reached: int
    posts: int
    p50: float
    p99: float
    max: float

    @classmethod
    def of(cls, lags_ms: list[float], posts: int) -> Stage:
        values = lags_ms + [math.inf] * (posts - len(lags_ms))
        if not values:
            raise BenchError("no posts")
        return cls(len(lags_ms), posts, statistics.median(values), percentile(values, 0.99), max(values))


@dataclass(frozen=True)
class Lag:
    name: str
    posts: int
    accounts: int
    per_apply: int
    window: float
    lead: float
    drain: float
    apply_seconds: list[float]
    spare: float  # seconds between the last apply's answer and the first due time
    handed: Stage
    started: Stage
    received: Stage
    published: Stage
    seen: Stage
    poll_seconds: float
    throughput: float
    handover_rate: float  # posts the scheduler handed over a second, from the first due time to the last first hand-over
    span: float
    first_tenth: float  # median publish lag of the first and last tenth of posts by due time
    last_tenth: float
    repeats: int
    statuses: dict[str, int]  # when the measurement ended
    attempts_over_one: int
    events: Counter[str]
    delay_reasons: Counter[str]
    taken_over: int
    unknown_errors: Counter[str]


def warm_up(client: httpx.Client, accounts: list[str], receiver: PostReceiver) -> None:
    """A post per account, due in 5 s: the consumer group has its partitions and the publisher its connections."""
    due = datetime.now(UTC) + timedelta(seconds=5)
    applied = apply(client, schedule(accounts, [due] * len(accounts), "warm-up"), PER_APPLY)
    watched = watch(client, applied.run_ids, len(accounts), timeout=180)
    if not watched.settled(len(accounts)) or len(receiver.deliveries.first) < len(accounts):
        raise BenchError(f"warm-up posts did not all publish: {Counter(p['status'] for p in watched.posts.values())}")


def measure_lag(
    name: str, client: httpx.Client, accounts: list[str], receiver: PostReceiver, database_url: str, args: argparse.Namespace, drain: float
) -> Lag:
    """`args.posts` posts due evenly over `args.window` s, round-robin over `accounts`."""
    first_due = datetime.now(UTC) + timedelta(seconds=args.lead)
    times = [first_due + timedelta(seconds=args.window * n / args.posts) for n in range(args.posts)]
    applied = apply(client, schedule(accounts, times, name), args.per_apply)
    spare = first_due.timestamp() - time.time()
    say(f"{name}: applied {args.posts} posts in {sum(applied.seconds):.1f} s; the first is due in {spare:.0f} s")
    if spare < 5:
        raise BenchError(f"the applies took too long: only {spare:.1f} s were left before the first post was due; raise --lead")
    time.sleep(max(0.0, spare - 2))
    watched = watch(client, applied.run_ids, args.posts, timeout=args.window + drain)
    statuses = Counter(p["status"] for p in watched.posts.values())
    say(f"{name}: {dict(statuses)} after {watched.polls} polls")
    posts = watched.posts
    tried = attempts(client, list(posts))
    past = history(database_url, list(posts), applied.run_ids)
    due = {post_id: at(p["publishAtUtc"]) for post_id, p in posts.items()}
    published = {
        post_id: at(a["finishedAt"]) for post_id, tries in tried.items() for a in tries if a["outcome"] == "published" and a["finishedAt"]
    }
    started = {post_id: at(a["startedAt"]) for post_id, tries in tried.items() for a in tries if a["outcome"] == "published"}

    def stage(when: dict[str, float]) -> Stage:
        return Stage.of([(when[p] - due[p]) * 1000 for p in posts if p in when], len(posts))

    by_due = sorted(published, key=due.__getitem__)
    tenth = max(len(by_due) // 10, 1)
    span = max(published.values()) - min(due.values()) if published else math.nan
    return Lag(
        name=name,
        posts=args.posts,
        accounts=len(accounts),
        per_apply=args.per_apply,
        window=args.window,
        lead=args.lead,
        drain=drain,
        apply_seconds=applied.seconds,
        spare=spare,
        handed=stage(past.handed),
        started=stage(started),
        received=stage(receiver.deliveries.first),
        published=stage(published),
        seen=stage(watched.seen_published),
        poll_seconds=statistics.median(watched.poll_seconds) + POLL_SECONDS,
        throughput=len(published) / span if published else 0.0,
        handover_rate=len(past.handed) / (max(past.handed.values()) - min(due.values())) if past.handed else 0.0,
        span=span,
        first_tenth=statistics.median((published[p] - due[p]) * 1000 for p in by_due[:tenth]) if by_due else math.nan,
        last_tenth=statistics.median((published[p] - due[p]) * 1000 for p in by_due[-tenth:]) if by_due else math.nan,
        repeats=sum(n for p, n in receiver.deliveries.repeats.items() if p in posts),
        statuses=dict(statuses),
        attempts_over_one=sum(1 for tries in tried.values() if len(tries) > 1),
        events=past.counts,
        delay_reasons=past.delay_reasons,
        taken_over=past.taken_over,
        unknown_errors=Counter(tries[-1]["error"] or "" for p, tries in tried.items() if posts[p]["status"] == "unknown" and tries),
    )


@dataclass(frozen=True)
class SchedulerCost:
    pending: int
    asked: int
    per_apply: int
    create_seconds: float
    apply_p50: float
    catch_up_seconds: float
    quiet_seconds: float
    settle_seconds: float  # before the "0 pending" column: until the services' CPU stopped falling
    due: tuple[QueryCost, QueryCost]  # the scheduler's query with none pending, then with the future posts
    order: tuple[QueryCost, QueryCost]  # the worker's order check, likewise
    cpu: tuple[dict[str, float], dict[str, float]]
    cpu_seconds: float
    accounts: int


def costs(database_url: str, account_id: str, args: argparse.Namespace) -> tuple[QueryCost, QueryCost]:
    return (
        query_cost(database_url, scheduler_query, args.calls, "due_at <="),
        query_cost(database_url, order_check(account_id), args.calls, "publish_at <"),
    )


def measure_scheduler(
    client: httpx.Client, accounts: list[str], procs: Processes, database_url: str, args: argparse.Namespace
) -> SchedulerCost:
    wait_caught_up(database_url, timeout=300)
    settle_seconds = wait_idle(procs, timeout=300)
    say(f"no posts pending: timing the queries {args.calls} times each, then the processes' CPU for {args.cpu_seconds:.0f} s")
    idle_due, idle_order = costs(database_url, accounts[0], args)
    idle_cpu = procs.sample(args.cpu_seconds)
    say(f"idle: due_posts {idle_due.p50_ms:.2f} ms, order check {idle_order.p50_ms:.2f} ms, CPU {idle_cpu}")
    start = datetime.now(UTC).replace(microsecond=0) + timedelta(days=30)
    times = [start + timedelta(seconds=n * 2_592_000 / args.pending) for n in range(args.pending)]  # over the following 30 days
    began = time.monotonic()
    applied = apply(client, schedule(accounts, times, "future"), args.per_apply_pending, parallel=2, budget=args.pending_budget)
    create_seconds = time.monotonic() - began
    say(f"applied {len(applied.run_ids)} envelopes of future posts in {create_seconds:.0f} s")
    catch_up = wait_caught_up(database_url, timeout=900)
    with psycopg.connect(database_url) as conn:
        row = conn.execute("SELECT count(*) FROM posts WHERE status IN ('scheduled', 'retry_pending')").fetchone()
    pending = int(row[0]) if row is not None else 0
    quiet_seconds, _ = wait_quiet(procs, idle_cpu, timeout=300)
    say(f"{pending:,} posts pending; caught up in {catch_up:.0f} s, quiet after {quiet_seconds:.0f} s more")
    busy_due, busy_order = costs(database_url, accounts[0], args)
    busy_cpu = procs.sample(args.cpu_seconds)
    say(f"pending: due_posts {busy_due.p50_ms:.2f} ms, order check {busy_order.p50_ms:.2f} ms, CPU {busy_cpu}")
    return SchedulerCost(
        pending=pending,
        asked=args.pending,
        per_apply=args.per_apply_pending,
        create_seconds=create_seconds,
        apply_p50=statistics.median(applied.seconds),
        catch_up_seconds=catch_up,
        quiet_seconds=quiet_seconds,
        settle_seconds=settle_seconds,
        due=(idle_due, busy_due),
        order=(idle_order, busy_order),
        cpu=(idle_cpu, busy_cpu),
        cpu_seconds=args.cpu_seconds,
        accounts=len(accounts),
    )


# The report


def ms(value: float) -> str:
    if math.isinf(value):
        return "never"
    return f"{value:,.0f} ms" if value >= 10 else f"{value:.2f} ms"


def lag_section(lag: Lag, title: str, setting: str) -> str:
    def row(name: str, s: Stage, strong: bool = False) -> str:
        mark = "**" if strong else ""
        reached = f"{s.reached:,}" if s.reached == s.posts else f"{s.reached:,} of {s.posts:,}"
        return f"| {name} | {reached} | {mark}{ms(s.p50)}{mark} | {mark}{ms(s.p99)}{mark} | {ms(s.max)} |"

    statuses = ", ".join(f"{status} {n:,}" for status, n in sorted(lag.statuses.items()))
    events = ", ".join(f"`{name}` {n:,}" for name, n in sorted(lag.events.items()))
    reasons = ", ".join(f"{reason or '(none)'} {n:,}" for reason, n in lag.delay_reasons.most_common()) or "none"
    unknown = "; ".join(f"{n} × “{error[:120]}”" for error, n in lag.unknown_errors.most_common(3))
    return f"""
### {title}

{setting} Applied as {len(lag.apply_seconds)} schedule envelopes of {lag.per_apply:,} posts
(`POST /v1/posts/apply`, {sum(lag.apply_seconds):.1f} s in all), due evenly over {lag.window:g} s starting {lag.lead:g} s
after the apply ({lag.spare:.0f} s after its last answer); watched until every post was settled or
{lag.window + lag.drain:.0f} s after the first due time. "never" is a post that had not got there when the watch ended
(percentiles count those as infinitely late).

| from the post's due time to … | posts | p50 | p99 | max |
| --- | --- | --- | --- | --- |
{row("the scheduler's first `post.publish_requested` (`occurredAt`, audit log)", lag.handed)}
{row("the start of the attempt that went out (`startedAt`)", lag.started)}
{row("**received by the fake**", lag.received, strong=True)}
{row("**`published`** (attempt `finishedAt`)", lag.published, strong=True)}
{row(f"`published` listed by `GET /v1/posts` (polled about every {lag.poll_seconds:.1f} s)", lag.seen)}

Throughput: **{lag.throughput:.1f} posts/s** ({lag.published.reached:,} published within {lag.span:.1f} s of the first due time;
offered {lag.posts / lag.window:.0f} posts/s). Median publish lag of the first tenth of the published posts by due time
{ms(lag.first_tenth)}, of the last tenth {ms(lag.last_tenth)}. Posts the fake received twice: **{lag.repeats}**.
Statuses when the watch ended: {statuses}.{f" Unknown posts' last error: {unknown}." if unknown else ""}
Posts with more than one attempt: {lag.attempts_over_one}. Events of these posts and their runs ({sum(lag.events.values()) / lag.posts:.1f}
a post): {events}; `post.delayed` reasons: {reasons}. Attempts a scheduler started itself (a hand-over no worker had
started in time): {lag.taken_over:,}.
"""


def render(
    lags: list[Lag], cost: SchedulerCost, host: str, command: str, load_after: float, server_errors: int, problems: Counter[str]
) -> str:
    spread, shared = lags
    limit = provider("webhook").posts_per_minute

    def query(name: str, pair: tuple[QueryCost, QueryCost], which: str) -> str:
        a, b = pair
        values = {"p50": (a.p50_ms, b.p50_ms), "p99": (a.p99_ms, b.p99_ms), "server": (a.server_ms, b.server_ms)}[which]
        label = f"in the server, median of {EXPLAINED_CALLS} (auto_explain)" if which == "server" else f"round trip {which}"
        return f"| {name}, {label} | {values[0]:.3f} ms | {values[1]:.3f} ms | {values[1] / values[0]:.2f}× |"

    def cpu(name: str, key: str) -> str:
        a, b = cost.cpu[0][key], cost.cpu[1][key]
        ratio = f"{b / a:.2f}×" if a else "—"
        return f"| {name}, CPU % of one core over {cost.cpu_seconds:.0f} s | {a:.1f} % | {b:.1f} % | {ratio} |"

    shortfall = "" if cost.pending >= cost.asked else f" (fewer than the {cost.asked:,} asked: applying stopped at the time budget)"
    per_account = cost.pending // cost.accounts
    return f"""
## Publishing

Command: `make bench`, which also runs `{command}` (the system as `pressroom up` runs it).
Machine: {host}; after the run: {load_after:.1f}.

The fake provider is a webhook receiver on loopback that keeps connections alive and answers each POST after
{RECEIVER_SECONDS * 1000:.0f} ms with `{{"id", "url"}}`. Each lag is a wall-clock instant minus the post's `publishAtUtc`;
"published" is the successful attempt's `finishedAt` (`GET /v1/posts/{{id}}/attempts`), the instant `Published` was
recorded. One publisher process runs, with 8 attempts at a time.
{
        lag_section(
            spread,
            f"Publish lag: {spread.posts:,} posts due in the same minute, one per account",
            f"{spread.posts:,} posts, each to its own webhook account, so neither the per-account order nor the rate limit holds any back.",
        )
    }{
        lag_section(
            shared,
            f"Publish lag: {shared.posts:,} posts due in the same minute over {shared.accounts} accounts",
            f"{shared.posts:,} posts over {shared.accounts} webhook accounts, {shared.posts // shared.accounts} each: under the"
            f" webhook provider's {limit} posts a minute per account, but each account's posts go out in order.",
        )
    }
### Scheduler cost with {cost.pending:,} future posts pending

{cost.pending:,} posts pending{shortfall} over {cost.accounts} accounts, due over the 30 days starting a month ahead, made
through the API like any schedule: {-(-cost.pending // cost.per_apply):,} applies of {cost.per_apply:,} posts, two at a time, in
{cost.create_seconds:.0f} s ({cost.pending / cost.create_seconds:.0f} posts/s, p50 {cost.apply_p50:.2f} s per apply). The read models
and the relay had taken the whole log {cost.catch_up_seconds:.0f} s after the last apply, and the services were back to idle CPU
{cost.quiet_seconds:.0f} s after that. The "0 pending" column was measured just before, once the first lag measurement's posts
were all published, the read models had caught up and the services' CPU had stopped falling ({
        cost.settle_seconds:.0f} s). The scheduler runs `projections.posts.due_posts(pool, now)` every 0.25 s in the sweeper process; the
publishing worker runs `earlier_post_open` (is an earlier post to this account still open?) before every attempt. Both are
timed {cost.due[0].calls:,} times from the bench process (round trip included), with nothing due.

| measurement | 0 pending | {cost.pending:,} pending | ratio |
| --- | --- | --- | --- |
{query("scheduler's `due_posts`", cost.due, "p50")}
{query("scheduler's `due_posts`", cost.due, "p99")}
{query("scheduler's `due_posts`", cost.due, "server")}
{query(f"worker's `earlier_post_open` (an account with {per_account:,} pending)", cost.order, "p50")}
{query(f"worker's `earlier_post_open` (an account with {per_account:,} pending)", cost.order, "p99")}
{query(f"worker's `earlier_post_open` (an account with {per_account:,} pending)", cost.order, "server")}
{cpu("sweeper process (scheduler)", "sweeper")}
{cpu("all Pressroom services", "services")}
{cpu("PostgreSQL, all backends", "postgres")}

The last plan of each, as auto_explain reported it (actual ms, rows):
- `due_posts`, 0 pending: {cost.due[0].plan}
- `due_posts`, {cost.pending:,} pending: {cost.due[1].plan}
- `earlier_post_open`, 0 pending: {cost.order[0].plan}
- `earlier_post_open`, {cost.pending:,} pending: {cost.order[1].plan}

Error lines in the server's log: {server_errors}. Warnings and errors by process and event:
{"; ".join(f"{n:,} × `{problem}`" for problem, n in problems.most_common(8)) or "none"}.

{what_dominates(spread, shared)} {scheduler_verdict(cost)}
"""


def what_dominates(spread: Lag, shared: Lag) -> str:
    stages = {
        "waiting for the scheduler's hand-over": spread.handed.p50,
        "from the hand-over to the attempt's start (relay, Kafka, the worker's batches)": spread.started.p50 - spread.handed.p50,
        f"the attempt itself (the fake's {RECEIVER_SECONDS * 1000:.0f} ms and recording `Published`)": spread.published.p50
        - spread.started.p50,
    }
    name, value = max(stages.items(), key=lambda item: item[1])
    text = (
        f"What dominates. With one post per account, the largest part of the median post's {ms(spread.published.p50)} to"
        f" `published` was {name}: {ms(value)} (the others: {', '.join(f'{ms(v)} {k}' for k, v in stages.items() if k != name)})."
        f" Posts fell due at {spread.posts / spread.window:.0f} a second; the scheduler handed them over at"
        f" {spread.handover_rate:.1f} a second (up to 100 posts and their runs a save) and the worker published"
        f" {spread.throughput:.1f} a second, against the {8 / RECEIVER_SECONDS:.0f} that 8 attempts of"
        f" {RECEIVER_SECONDS * 1000:.0f} ms allow. Each post cost {sum(spread.events.values()) / spread.posts:.1f} events"
        " (post and run) in at least three saves (hand-over, attempt started, published), the first and last also updating the post's run,"
        " which every post of a run shares (saves of one run's posts take turns), each holding the event log's writers'"
        " lock, on a machine shared with other work (see the load averages)."
    )
    if spread.taken_over:
        text += (
            f" {spread.taken_over:,} posts waited more than the take-over time (`PRESSROOM_TAKEOVER_AFTER_SECONDS`) for a"
            " worker to start them, and a scheduler published them itself."
        )
    ordered = shared.delay_reasons.get(ORDER_DELAY, 0)
    how = (
        f"a post whose earlier sibling is still open is put back for 1 s and handed over again ({ordered:,} `post.delayed` “waiting”)"
        if ordered
        else "the scheduler hands over only each account's first open post (`due_posts` skips the others)"
    )
    text += (
        f" With {shared.posts // shared.accounts} posts per account, each account's posts go out one after another, in order:"
        f" {how}, so the hand-over itself waited p50 {ms(shared.handed.p50)} and {shared.published.reached:,} of"
        f" {shared.posts:,} posts were published {shared.window + shared.drain:.0f} s after the first was due"
        f" ({shared.throughput:.1f} posts/s)."
    )
    return text


def scheduler_verdict(cost: SchedulerCost) -> str:
    server = cost.due[1].server_ms / cost.due[0].server_ms
    trip = cost.due[1].p50_ms / cost.due[0].p50_ms
    idle_cpu, busy_cpu = cost.cpu[0]["sweeper"], cost.cpu[1]["sweeper"]
    if server < 1.5:
        verdict = (
            f"The scheduler's query costs the server about the same with {cost.pending:,} future posts as with none"
            f" ({cost.due[0].server_ms:.3f} against {cost.due[1].server_ms:.3f} ms, {server:.2f}×): it reads the partial index"
            " `posts_due` from its low end and stops at the first row not yet due."
        )
    else:
        verdict = f"The scheduler's query cost the server {server:.1f}× more with {cost.pending:,} future posts pending."
    if abs(trip - server) > 0.5:
        verdict += (
            f" Its round trip from the bench moved {trip:.2f}× between the two measurements, with the machine's load"
            " (a round trip is a few tenths of a millisecond, most of it outside the query)."
        )
    verdict += f" The sweeper used {idle_cpu:.1f} % of a core with none pending and {busy_cpu:.1f} % with them."
    order = cost.order[1].server_ms / cost.order[0].server_ms
    if order >= 1.5:
        verdict += f" The worker's order check cost the server {order:.1f}× more per attempt (see its plan)."
    return verdict


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.publishing", description=__doc__)
    parser.add_argument("--posts", type=int, default=1000, help="posts due in each lag measurement")
    parser.add_argument("--shared-accounts", type=int, default=20, help="accounts the posts of the second lag measurement share")
    parser.add_argument("--per-apply", type=int, default=PER_APPLY, help="posts per schedule envelope")
    parser.add_argument("--window", type=float, default=10.0, help="seconds the due times spread over")
    parser.add_argument("--lead", type=float, default=60.0, help="seconds from the apply to the first due time")
    parser.add_argument("--drain", type=float, default=240.0, help="seconds after the window to wait for every post to settle")
    parser.add_argument("--shared-drain", type=float, default=120.0, help="the same, for the posts that share accounts")
    parser.add_argument("--pending", type=int, default=100_000, help="future posts pending for the scheduler measurement")
    parser.add_argument("--pending-budget", type=float, default=480.0, help="seconds after which no more future posts are applied")
    parser.add_argument("--calls", type=int, default=2000, help="calls of each query timed in each state")
    parser.add_argument("--cpu-seconds", type=float, default=30.0, help="seconds the processes' CPU is sampled in each state")
    args = parser.parse_args(argv)
    args.per_apply_pending = args.per_apply
    command = (
        f"python -m bench.publishing --posts {args.posts} --shared-accounts {args.shared_accounts} --per-apply {args.per_apply}"
        f" --window {args.window:g} --pending {args.pending}"
    )
    host = machine()
    with (
        tempfile.TemporaryDirectory(prefix="pressroom-bench-") as work,
        EmbeddedPostgres(Path(work) / "services", delete_on_close=True) as postgres,
        EmbeddedBroker() as broker,
        PostReceiver() as receiver,
    ):
        # As `pressroom up` does for its own: the services need more than 100.
        postgres.ensure(at_least={"max_connections": EMBEDDED_MAX_CONNECTIONS})
        env = {**services(postgres, broker, "publishing"), "PRESSROOM_ALLOW_PRIVATE_URLS": "true"}
        database_url = env["PRESSROOM_DATABASE_URL"]
        system = start_system(Path(work) / "publishing", env)
        try:
            procs = processes(system, postgres)
            with workspace_client(system) as client:
                accounts = connect_accounts(client, receiver, args.posts)
                shared = accounts[: args.shared_accounts]
                warm_up(client, shared, receiver)
                say(f"warm: {len(accounts)} accounts, {len(shared)} of them have published to the receiver")
                spread_lag = measure_lag("spread", client, accounts, receiver, database_url, args, args.drain)
                future = accounts[len(shared) : 2 * len(shared)]
                cost = measure_scheduler(client, future, procs, database_url, args)
                # Last: posts that share accounts may still be going round when the watch ends.
                shared_lag = measure_lag("shared", client, shared, receiver, database_url, args, args.shared_drain)
            load_after = os.getloadavg()[0]
        finally:
            stop_system(system)
        server_errors = report_server_errors(system)
        problems = log_problems(system.log_path)
    section = render([spread_lag, shared_lag], cost, host, command, load_after, server_errors, problems)
    with REPORT.open("a") as report:
        report.write(section)
    print(section)  # noqa: T201 - the bench's answer


if __name__ == "__main__":
    main()
