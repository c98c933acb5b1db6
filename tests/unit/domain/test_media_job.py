"""Media jobs: outputs one by one, partial endings, cancel and expiry refund exactly what was not made."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import uuid4

import pytest

from domain.credit_account import Charge, Refund
from domain.errors import InvalidState
from domain.generation_job import GenerationJob, StaleAttempt

NOW = datetime(2026, 7, 1, 12, tzinfo=UTC)
LEASE = NOW + timedelta(minutes=2)


def image_job(count: int = 3, unit: int = 3, from_topup: int = 0) -> GenerationJob:
    cost = unit * count
    charge = Charge(cost, cost - from_topup, from_topup)
    return GenerationJob.request(uuid4(), uuid4(), "image", {"prompt": "lamp", "count": count}, charge, "fp", None, count)


def asset(n: int) -> dict[str, Any]:
    return {"id": str(uuid4()), "type": "image", "mime": "image/png", "width": 1, "height": 1, "bytes": 1, "filename": f"image-{n}.png"}


def started(job: GenerationJob) -> int:
    return job.start("w", NOW, LEASE)


def test_started_image_job_when_an_output_is_produced_then_progress_moves_and_the_lease_extends() -> None:
    job = image_job()
    attempt = started(job)

    job.produce(attempt, 0, asset(1), LEASE + timedelta(minutes=1))

    assert (job.produced, job.lease_until, job.status) == (1, LEASE + timedelta(minutes=1), "processing")
    assert job.last_progress_at == job.last_output_at


def test_output_index_when_produced_twice_or_out_of_range_then_refused() -> None:
    job = image_job()
    attempt = started(job)
    job.produce(attempt, 0, asset(1), LEASE)

    with pytest.raises(InvalidState):
        job.produce(attempt, 0, asset(1), LEASE)
    with pytest.raises(InvalidState):
        job.produce(attempt, 3, asset(4), LEASE)


def test_every_output_made_when_finished_then_completed_with_nothing_refunded() -> None:
    job = image_job()
    attempt = started(job)
    for index in range(3):
        job.produce(attempt, index, asset(index), LEASE)

    refund = job.finish(attempt)

    assert (refund.amount, job.status, job.credits_consumed) == (0, "completed", 9)


def test_some_outputs_made_when_finished_then_partial_and_the_rest_refunded_topup_first() -> None:
    job = image_job(from_topup=4)
    attempt = started(job)
    job.produce(attempt, 0, asset(0), LEASE)

    refund = job.finish(attempt, ("content_policy", "refused"))

    assert refund == Refund(to_allowance=2, to_topup=4)
    assert (job.status, job.credits_refunded, job.credits_consumed, job.error) == (
        "partial",
        6,
        3,
        {"code": "content_policy", "message": "refused"},
    )


def test_no_output_made_when_finished_then_failed_and_everything_refunded() -> None:
    job = image_job()
    attempt = started(job)

    refund = job.finish(attempt, ("provider_rejected", "no"))

    assert (refund.amount, job.status, job.credits_consumed) == (9, "failed", 0)


def test_superseded_attempt_when_it_produces_then_stale() -> None:
    job = image_job()
    first = started(job)
    job.start("other", LEASE + timedelta(seconds=1), LEASE + timedelta(minutes=5))

    with pytest.raises(StaleAttempt):
        job.produce(first, 0, asset(0), LEASE)


def test_processing_job_when_canceled_then_unmade_outputs_are_refunded_and_the_worker_is_stale() -> None:
    job = image_job()
    attempt = started(job)
    job.produce(attempt, 0, asset(0), LEASE)

    refund = job.cancel()

    assert (refund.amount, job.status, job.credits_consumed) == (6, "canceled", 3)
    with pytest.raises(StaleAttempt):
        job.produce(attempt, 1, asset(1), LEASE)


def test_queued_job_when_canceled_then_everything_is_refunded() -> None:
    job = image_job()

    assert job.cancel().amount == 9


def test_terminal_job_when_canceled_then_invalid_state_and_nothing_refunded() -> None:
    job = image_job()
    job.cancel()

    with pytest.raises(InvalidState):
        job.cancel()
    assert job.credits_refunded == 9


def test_job_when_its_deadline_passes_without_progress_then_it_expires_with_a_refund() -> None:
    job = image_job()
    deadline = timedelta(minutes=10)
    requested_at = job.created_on

    assert not job.is_overdue(requested_at + deadline - timedelta(seconds=1), deadline)
    refund = job.expire(requested_at + deadline, deadline)

    assert (refund.amount, job.status) == (9, "expired")


def test_job_that_made_progress_when_checked_then_its_deadline_counts_from_the_latest_output() -> None:
    job = image_job()
    attempt = started(job)
    job.produce(attempt, 0, asset(0), LEASE)
    deadline = timedelta(minutes=10)

    assert not job.is_overdue(job.last_output_at + deadline - timedelta(seconds=1), deadline)  # type: ignore[operator]
    with pytest.raises(InvalidState):
        job.expire(job.created_on + deadline, deadline)


def test_copy_job_when_canceled_while_processing_then_everything_is_refunded() -> None:
    job = GenerationJob.request(uuid4(), uuid4(), "copy", {"product": {"name": "x"}}, Charge(1, 1, 0), "fp", None, 5)
    started(job)

    assert (job.cancel().amount, job.produced) == (1, 0)
