"""The sweeper re-drives jobs nobody is working on, and gives up on them after the attempts run out."""

from __future__ import annotations

from eventsourcing.persistence import Tracking

from adapters.bootstrap import Container
from adapters.relay import KafkaRelay
from tests.conftest import Background, catch_up_all, wait_for

BRIEF = {"product": {"name": "Lamp"}, "count": 1}


def test_queued_job_whose_message_was_lost_is_redriven_and_completes(make_container, background: Background) -> None:  # type: ignore[no-untyped-def]
    container: Container = make_container(requeue_after_seconds=0.5)
    workspace, _ = container.app.create_workspace("Acme")
    job = container.app.request_job(workspace.id, "copy", BRIEF, outputs=1).job
    # As after a broker restart that lost its topics: the relay has passed the job's message, nobody got it.
    head = container.app.recorder.max_notification_id()
    KafkaRelay(container.datastore, None, container.app.name, "void").insert_tracking(Tracking(container.app.name, head))  # type: ignore[arg-type]
    background.start(container.run_projections)
    background.start(container.run_relay)
    background.start(container.run_generation_worker)
    background.start(container.run_sweeper)

    done = wait_for(lambda: (j := container.app.get_job(workspace.id, job.id)).is_terminal and j, timeout=40)

    assert done.status == "completed"  # type: ignore[union-attr]
    assert [type(e).__name__ for e in container.app.events.get(job.id)][:2] == ["Requested", "Requeued"]


def test_processing_job_past_its_lease_with_no_attempts_left_fails_and_is_refunded(make_container) -> None:  # type: ignore[no-untyped-def]
    container: Container = make_container(job_lease_seconds=0.05, job_max_attempts=1, requeue_after_seconds=0)
    workspace, _ = container.app.create_workspace("Acme")
    job = container.app.request_job(workspace.id, "copy", BRIEF, outputs=1).job
    container.app.start_job(job.id, "a-worker-that-died")
    catch_up_all(container)
    wait_for(lambda: container.sweep_once() == 1, timeout=5)

    failed = container.app.get_job(workspace.id, job.id)
    assert (failed.status, failed.error["code"], failed.credits_refunded) == ("failed", "attempts_exhausted", 1)  # type: ignore[index]
    assert container.app.credit_account(workspace.id).balance == 50
