"""The jobs row: what `evolve` makes of a job's events, one at a time."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from functools import reduce
from typing import Any
from uuid import uuid4

import pytest

from domain.credit_account import Charge, CreditAccount
from domain.generation_job import GenerationJob
from domain.pricing import Pricing
from domain.workspace import Workspace
from projections.jobs import JobRow, evolve

NOW = datetime(2025, 3, 15, 9, 30, tzinfo=UTC)
LEASE = timedelta(minutes=2)
VARIANTS = [{"hook": "Run lighter.", "body": "Recycled foam.", "cta": "Shop now", "hashtags": []}]


def new_job(cost: int = 3, outputs: int = 3) -> GenerationJob:
    return GenerationJob.request(
        job_id=uuid4(),
        workspace_id=uuid4(),
        job_type="copy",
        input={"product": {"name": "Stride Runner"}},
        charge=Charge(cost, from_allowance=cost, from_topup=0),
        fingerprint="fp-1",
        campaign_id=uuid4(),
        outputs=outputs,
    )


def fold(events: Any, row: JobRow | None = None) -> JobRow | None:
    return reduce(evolve, events, row)


def test_requested_event_when_evolved_from_nothing_then_row_is_queued() -> None:
    job = new_job(cost=3, outputs=4)
    (requested,) = job.collect_events()

    row = evolve(None, requested)

    assert row == JobRow(
        id=job.id,
        workspace_id=job.workspace_id,
        type="copy",
        status="queued",
        campaign_id=job.campaign_id,
        input={"product": {"name": "Stride Runner"}},
        credits_reserved=3,
        credits_refunded=0,
        progress_done=0,
        progress_total=4,
        attempts=0,
        created_at=requested.timestamp,
        last_progress_at=requested.timestamp,
        updated_at=requested.timestamp,
    )


def test_queued_row_when_started_then_row_is_processing_under_the_lease() -> None:
    job = new_job()
    queued = fold(job.collect_events())
    job.start("worker-1", NOW, NOW + LEASE)
    (started,) = job.collect_events()

    row = evolve(queued, started)

    assert row is not None and queued is not None
    assert (row.status, row.attempts, row.lease_until) == ("processing", 1, NOW + LEASE)
    assert (row.started_at, row.updated_at, row.created_at) == (started.timestamp, started.timestamp, queued.created_at)


def test_processing_row_when_completed_then_progress_is_full_and_lease_is_gone() -> None:
    job = new_job(outputs=3)
    attempt = job.start("worker-1", NOW, NOW + LEASE)
    processing = fold(job.collect_events())
    job.complete(attempt, VARIANTS)
    (completed,) = job.collect_events()

    row = evolve(processing, completed)

    assert row is not None
    assert (row.status, row.progress_done, row.progress_total, row.lease_until) == ("completed", 3, 3, None)
    assert (row.completed_at, row.updated_at) == (completed.timestamp, completed.timestamp)


def test_processing_row_when_failed_then_error_and_refund_are_recorded() -> None:
    job = new_job(cost=3)
    attempt = job.start("worker-1", NOW, NOW + LEASE)
    processing = fold(job.collect_events())
    job.fail(attempt, "provider_error", "The provider is down.")
    (failed,) = job.collect_events()

    row = evolve(processing, failed)

    assert row is not None
    assert (row.status, row.error_code, row.error_message) == ("failed", "provider_error", "The provider is down.")
    assert (row.credits_refunded, row.lease_until, row.completed_at) == (3, None, failed.timestamp)


def test_processing_row_when_requeued_then_row_is_queued_without_lease() -> None:
    job = new_job()
    job.start("worker-1", NOW, NOW + LEASE)
    processing = fold(job.collect_events())
    job.requeue("worker lost")
    (requeued,) = job.collect_events()

    row = evolve(processing, requeued)

    assert row is not None
    assert (row.status, row.lease_until, row.attempts, row.updated_at) == ("queued", None, 1, requeued.timestamp)


def test_restarted_row_when_started_again_then_started_at_is_the_first_start() -> None:
    job = new_job()
    job.start("worker-1", NOW, NOW + LEASE)
    first_start = fold(job.collect_events())
    job.requeue("worker lost")
    job.start("worker-2", NOW, NOW + LEASE)

    row = fold(job.collect_events(), first_start)

    assert row is not None and first_start is not None
    assert (row.started_at, row.attempts) == (first_start.started_at, 2)


def test_whole_life_when_folded_then_row_is_completed_after_two_attempts() -> None:
    job = new_job(cost=1, outputs=3)
    job.start("worker-1", NOW, NOW + LEASE)
    job.requeue("worker lost")
    second = job.start("worker-2", NOW + LEASE, NOW + 2 * LEASE)
    job.complete(second, VARIANTS)
    events = list(job.collect_events())

    row = fold(events)

    assert row is not None
    assert (row.status, row.attempts, row.progress_done, row.credits_refunded, row.error_code) == ("completed", 2, 3, 0, None)
    assert (row.started_at, row.completed_at, row.updated_at) == (events[1].timestamp, events[-1].timestamp, events[-1].timestamp)


@pytest.mark.parametrize("ending", ["complete", "fail", "requeue"])
def test_whole_life_when_folded_then_row_agrees_with_the_aggregate(ending: str) -> None:
    job = new_job(cost=3)
    attempt = job.start("worker-1", NOW, NOW + LEASE)
    if ending == "complete":
        job.complete(attempt, VARIANTS)
    elif ending == "fail":
        job.fail(attempt, "provider_error", "The provider is down.")
    else:
        job.requeue("worker lost")

    row = fold(job.collect_events())

    assert row is not None
    assert (row.status, row.attempts, row.lease_until, row.started_at, row.completed_at, row.credits_refunded) == (
        job.status,
        job.attempts,
        job.lease_until,
        job.started_at,
        job.completed_at,
        job.credits_refunded,
    )


def test_row_when_evolved_with_another_aggregates_event_then_row_is_unchanged() -> None:
    job = new_job()
    row = fold(job.collect_events())
    account = CreditAccount.open(job.workspace_id, "pro", NOW, Pricing())
    charge = account.debit(job.id, 3, "copy")
    account.refund(job.id, "copy", charge.refund(3), "failed")
    workspace = Workspace.open(job.workspace_id, "Acme")

    assert fold([*account.collect_events(), *workspace.collect_events()], row) == row


def test_nothing_when_evolved_with_another_aggregates_event_then_stays_nothing() -> None:
    workspace = Workspace.open(uuid4(), "Acme")

    assert fold(workspace.collect_events()) is None


def test_nothing_when_evolved_with_a_later_job_event_then_stays_nothing() -> None:
    job = new_job()
    job.start("worker-1", NOW, NOW + LEASE)
    _requested, started = job.collect_events()

    assert evolve(None, started) is None
