"""Prometheus metrics: jobs by status, read-model lag and live processes, read at scrape time, plus
this API process's request counts and latencies."""

from __future__ import annotations

import time
from collections.abc import Iterable, Iterator
from datetime import UTC, datetime
from typing import Any

from litestar import Controller, Response, get
from litestar.enums import ScopeType
from litestar.types import ASGIApp, Message, Receive, Scope, Send
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from adapters import heartbeats
from adapters.bootstrap import Container
from adapters.eventstore import EventLogRecorder
from adapters.grouped_inserts import GroupedInserts
from application.group_commit import JobRequestBatcher
from application.single_writer import SingleWriter

REGISTRY = CollectorRegistry()
REQUESTS = Counter("pressroom_http_requests", "HTTP requests answered", ["method", "status"], registry=REGISTRY)
LATENCY = Histogram("pressroom_http_request_seconds", "Time to answer an HTTP request", ["method"], registry=REGISTRY)


class SystemCollector(Collector):
    """What the read side and the heartbeats say, at the moment of the scrape."""

    def __init__(self, container: Container) -> None:
        self.container = container

    def collect(self) -> Iterator[Metric]:
        jobs = GaugeMetricFamily("pressroom_jobs", "Generation jobs by type and status", labels=["type", "status"])
        with self.container.pool.connection() as conn:
            for job_type, status, count in conn.execute("SELECT type, status, count(*) FROM jobs GROUP BY type, status"):
                jobs.add_metric([job_type, status], count)
        yield jobs
        head = self.container.app.recorder.max_notification_id() or 0
        lag = GaugeMetricFamily("pressroom_projection_lag_events", "Events a read model has yet to apply", labels=["projection"])
        for view in self.container.views():
            lag.add_metric([view.name], head - (view.position() or 0))
        yield lag
        alive = GaugeMetricFamily("pressroom_processes_alive", "Background processes with a recent heartbeat", labels=["kind"])
        counts: dict[str, int] = {}
        for beat in heartbeats.recent(self.container.pool, datetime.now(UTC)):
            counts[beat.kind] = counts.get(beat.kind, 0) + 1
        for kind, count in counts.items():
            alive.add_metric([kind], count)
        yield alive
        yield from group_commit_metrics(self.container.app.job_batcher)
        recorder = self.container.app.recorder
        yield from grouped_insert_metrics(recorder.groups if isinstance(recorder, EventLogRecorder) else None)


def group_commit_metrics(batcher: JobRequestBatcher | None) -> Iterator[Metric]:
    """This API process's group-commit writer: a rising share of conflicts means requests are not routed by
    workspace; batches redone one at a time, or busy answers, mean the writer cannot keep up."""
    if batcher is None:
        return
    stats = batcher.stats
    counters = (
        ("batches", stats.batches, "Batches of job requests the writer saved"),
        ("requests", stats.requests, "Job requests the writer took into batches"),
        ("conflicts", stats.conflicts, "Batches applied again after another writer changed what they loaded"),
        ("one_at_a_time", stats.one_at_a_time, "Batches redone one request per transaction after a failed save"),
        ("busy", stats.busy, "Job requests answered 503 busy at once: the queue, or the workspace's share of it, was full"),
    )
    yield from writer_metrics("pressroom_group_commit", counters, batcher, "Job requests waiting for the writer")


def grouped_insert_metrics(groups: GroupedInserts | None) -> Iterator[Metric]:
    """This API process's event log writer, which commits concurrent commands' inserts together (job
    requests arrive as one insert per batch): groups split often mean commands collide on the same aggregates."""
    if groups is None:
        return
    stats = groups.stats
    counters = (
        ("groups", stats.groups, "Groups of commands' inserts the event log writer wrote, each in one transaction"),
        ("inserts", stats.inserts, "Commands' inserts the event log writer took into groups"),
        ("split", stats.split, "Groups whose transaction failed, their commands then written one by one"),
    )
    yield from writer_metrics("pressroom_event_log", counters, groups, "Commands' inserts waiting for the event log writer")


def writer_metrics(prefix: str, counters: Iterable[tuple[str, int, str]], writer: SingleWriter[Any], waiting: str) -> Iterator[Metric]:
    for name, value, help_text in counters:
        yield CounterMetricFamily(f"{prefix}_{name}", help_text, value=value)
    yield GaugeMetricFamily(f"{prefix}_waiting", waiting, value=writer.waiting)


def metrics_middleware(app: ASGIApp) -> ASGIApp:
    async def middleware(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != ScopeType.HTTP:
            await app(scope, receive, send)
            return
        started, method = time.perf_counter(), scope.get("method", "")

        async def observe(message: Message) -> None:
            if message["type"] == "http.response.start":
                REQUESTS.labels(method, str(message["status"])).inc()
                LATENCY.labels(method).observe(time.perf_counter() - started)
            await send(message)

        await app(scope, receive, observe)

    return middleware


class MetricsController(Controller):
    tags = ["operations"]  # noqa: RUF012

    @get("/metrics", sync_to_thread=True, summary="Prometheus text format")
    def metrics(self, container: Container) -> Response[bytes]:
        registry = CollectorRegistry()
        registry.register(SystemCollector(container))
        body = generate_latest(REGISTRY) + generate_latest(registry)
        return Response(body, media_type=CONTENT_TYPE_LATEST)
