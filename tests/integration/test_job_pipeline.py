"""The write side, the relay, Kafka and the generation worker together, against real PostgreSQL and a real broker."""

from __future__ import annotations

import threading
from typing import Any
from uuid import UUID

from adapters.bootstrap import Container
from adapters.copy_local import LocalCopyProvider
from adapters.generation_worker import GenerationWorker
from adapters.image_local import LocalImageMaker
from adapters.integration_events import envelope_of
from adapters.video_local import LocalVideoMaker
from application.ports import CopyBrief, CopyVariant, ProviderError
from domain.generation_job import GenerationJob
from tests.conftest import Background, wait_for

BRIEF: dict[str, Any] = {
    "product": {"name": "Desk Lamp", "description": "Warm light for late work."},
    "platform": "x",
    "count": 2,
}


def events_of(container: Container, aggregate_id: UUID) -> list[str]:
    return [type(e).__name__ for e in container.app.events.get(aggregate_id)]


def request(container: Container, workspace_id: UUID) -> GenerationJob:
    return container.app.request_job(workspace_id, "copy", BRIEF, outputs=2).job


def test_requested_job_when_relay_and_worker_run_completes_once(container: Container, background: Background) -> None:
    background.start(container.run_relay)
    background.start(container.run_generation_worker)
    workspace, _ = container.app.create_workspace("Acme")

    job = request(container, workspace.id)

    done = wait_for(lambda: (j := container.app.get_job(workspace.id, job.id)).is_terminal and j, timeout=30)
    assert done.status == "completed" and len(done.variants) == 2  # type: ignore[union-attr]
    assert events_of(container, job.id) == ["Requested", "Started", "Completed"]
    assert container.app.credit_account(workspace.id).balance == 49


def test_redelivered_request_message_does_not_run_the_job_twice(container: Container) -> None:
    workspace, _ = container.app.create_workspace("Acme")
    job = request(container, workspace.id)
    _, message = envelope_of(next(iter(container.app.events.get(job.id))))
    worker = GenerationWorker(container.app, LocalCopyProvider(), LocalImageMaker(), LocalVideoMaker(), "worker-1")

    worker.handle(message)
    worker.handle(message)

    assert events_of(container, job.id) == ["Requested", "Started", "Completed"]
    assert container.app.credit_account(workspace.id).balance == 49


class SlowWriter:
    """A copy writer that holds its answer until released, as a slow provider does."""

    def __init__(self) -> None:
        self.release = threading.Event()

    def write(self, brief: CopyBrief) -> list[CopyVariant]:
        self.release.wait(10)
        return LocalCopyProvider().write(brief)


def test_output_of_a_superseded_attempt_is_dropped_and_the_job_completes_once(make_container) -> None:  # type: ignore[no-untyped-def]
    container: Container = make_container(job_lease_seconds=0.2)
    workspace, _ = container.app.create_workspace("Acme")
    job = request(container, workspace.id)
    slow = SlowWriter()
    first = threading.Thread(target=GenerationWorker(container.app, slow, LocalImageMaker(), LocalVideoMaker(), "slow").run, args=(job.id,))
    first.start()
    wait_for(lambda: container.app.get_job(workspace.id, job.id).status == "processing")
    wait_for(lambda: container.app.get_job(workspace.id, job.id).can_start(container.clock.now()))

    GenerationWorker(container.app, LocalCopyProvider(), LocalImageMaker(), LocalVideoMaker(), "fast").run(job.id)
    slow.release.set()
    first.join()

    assert events_of(container, job.id) == ["Requested", "Started", "Started", "Completed"]
    assert container.app.get_job(workspace.id, job.id).attempts == 2


class FailingWriter:
    def __init__(self, *, retryable: bool) -> None:
        self.retryable = retryable
        self.calls = 0

    def write(self, brief: CopyBrief) -> list[CopyVariant]:
        self.calls += 1
        raise ProviderError("provider_unavailable", "The provider answered 503.", retryable=self.retryable)


def test_retryable_failures_requeue_until_attempts_run_out_then_fail_and_refund(container: Container) -> None:
    workspace, _ = container.app.create_workspace("Acme")
    job = request(container, workspace.id)
    writer = FailingWriter(retryable=True)
    worker = GenerationWorker(container.app, writer, LocalImageMaker(), LocalVideoMaker(), "w")

    for _ in range(5):
        worker.run(job.id)

    failed = container.app.get_job(workspace.id, job.id)
    assert writer.calls == 3
    assert (failed.status, failed.attempts, failed.error, failed.credits_refunded) == (
        "failed",
        3,
        {"code": "provider_unavailable", "message": "The provider answered 503."},
        1,
    )
    assert container.app.credit_account(workspace.id).balance == 50


def test_permanent_failure_fails_at_once_and_refunds_everything(container: Container) -> None:
    workspace, _ = container.app.create_workspace("Acme")
    job = request(container, workspace.id)

    GenerationWorker(container.app, FailingWriter(retryable=False), LocalImageMaker(), LocalVideoMaker(), "w").run(job.id)

    failed = container.app.get_job(workspace.id, job.id)
    assert (failed.status, failed.error, failed.credits_refunded) == (
        "failed",
        {"code": "provider_unavailable", "message": "The provider answered 503."},
        1,
    )
    assert container.app.credit_account(workspace.id).balance == 50
    assert [type(e).__name__ for e in container.app.events.get(container.app.credit_account(workspace.id).id)][-1] == "Refunded"
