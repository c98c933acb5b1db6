"""Prometheus metrics: jobs by status, read-model lag and live processes, read at scrape time, plus
this API process's request counts and latencies."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from datetime import UTC, datetime
from functools import cache
from typing import TYPE_CHECKING

from litestar import Controller, Response, get
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from adapters import heartbeats
from adapters.bootstrap import Container
from adapters.eventstore import EventLogRecorder
from projections.jobs import job_counts

if TYPE_CHECKING:
    from _typeshed import DataclassInstance

REGISTRY = CollectorRegistry()
REQUESTS = Counter("pressroom_http_requests", "HTTP requests answered", ["method", "status"], registry=REGISTRY)
LATENCY = Histogram("pressroom_http_request_seconds", "Time to answer an HTTP request", ["method"], registry=REGISTRY)


class SystemCollector(Collector):
    """What the read side and the heartbeats say, at the moment of the scrape."""

    def __init__(self, container: Container) -> None:
        self.container = container

    def collect(self) -> Iterator[Metric]:
        jobs = GaugeMetricFamily("pressroom_jobs", "Generation jobs by type and status", labels=["type", "status"])
        for jobs_in in job_counts(self.container.pool):
            jobs.add_metric([jobs_in.type, jobs_in.status], jobs_in.jobs)
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
        # This API process's two writers (docs/SCALING.md, "What to watch", says what their counts mean).
        batcher = self.container.app.job_batcher
        if batcher is not None:
            yield from writer_metrics("pressroom_group_commit", batcher.stats, batcher.waiting, "Job requests waiting for the writer")
        recorder = self.container.app.recorder
        if isinstance(recorder, EventLogRecorder) and recorder.groups is not None:
            groups, waiting_help = recorder.groups, "Commands' inserts waiting for the event log writer"
            yield from writer_metrics("pressroom_event_log", groups.stats, groups.waiting, waiting_help)


def writer_metrics(prefix: str, stats: DataclassInstance, waiting: int, waiting_help: str) -> Iterator[Metric]:
    """A writer's counts, each with the help its stats field carries, and how many wait for it."""
    for count in dataclasses.fields(stats):
        yield CounterMetricFamily(f"{prefix}_{count.name}", count.metadata["help"], value=getattr(stats, count.name))
    yield GaugeMetricFamily(f"{prefix}_waiting", waiting_help, value=waiting)


def observe_answer(method: str, status: int, seconds: float) -> None:
    """Counts and times one answer of this process (api/app.py's request middleware calls it)."""
    _answered(method, status).inc()
    _latency(method).observe(seconds)


# The metrics' children for each label value, looked up once rather than under the metric's lock on every request.
@cache
def _answered(method: str, status: int) -> Counter:
    return REQUESTS.labels(method, str(status))


@cache
def _latency(method: str) -> Histogram:
    return LATENCY.labels(method)


class MetricsController(Controller):
    tags = ["operations"]  # noqa: RUF012

    @get("/metrics", sync_to_thread=True, summary="Prometheus text format")
    def metrics(self, container: Container) -> Response[bytes]:
        registry = CollectorRegistry()
        registry.register(SystemCollector(container))
        body = generate_latest(REGISTRY) + generate_latest(registry)
        return Response(body, media_type=CONTENT_TYPE_LATEST)
