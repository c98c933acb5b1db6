"""GenerationJob: attempts under a lease, outcomes only from the current attempt, one end; it keeps
the Charge it was requested with, so it is never refunded more than it was charged."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from uuid import uuid4

import pytest
from eventsourcing.application import project_aggregate
from hypothesis import given
from hypothesis import strategies as st

from domain.credit_account import Charge, Refund
from domain.errors import InvalidState
from domain.generation_job import GenerationJob, JobNotStartable, StaleAttempt

NOW = datetime(2025, 3, 15, 9, 30, tzinfo=UTC)
LEASE = timedelta(minutes=2)
VARIANTS = [{"hook": "Run lighter.", "body": "Recycled foam.", "cta": "Shop now", "hashtags": []}]


def queued_job(cost: int = 3, charge: Charge | None = None) -> GenerationJob:
    """A job charged `charge`, or `cost` credits all from the allowance."""
    job = GenerationJob.request(
        job_id=uuid4(),
        workspace_id=uuid4(),
        job_type="image",
        input={"prompt": "a running shoe"},
        charge=Charge(cost, from_allowance=cost, from_topup=0) if charge is None else charge,
        fingerprint="fp-1",
        campaign_id=None,
        outputs=1,
    )
    job.collect_events()
    return job


def started_job(cost: int = 3, charge: Charge | None = None) -> tuple[GenerationJob, int]:
    job = queued_job(cost, charge)
    attempt = job.start("worker-1", NOW, NOW + LEASE)
    job.collect_events()
    return job, attempt


# Starting


def test_requested_job_when_looked_at_then_it_is_queued() -> None:
    job = queued_job()

    assert (job.status, job.attempts, job.lease_until, job.is_terminal) == ("queued", 0, None, False)


def test_requested_job_when_looked_at_then_it_keeps_its_charge() -> None:
    job = queued_job(charge=Charge(8, from_allowance=5, from_topup=3))

    assert (job.cost, job.charge, job.credits_refunded) == (8, Charge(8, 5, 3), 0)


def test_requested_job_when_looked_at_then_event_records_cost_and_split() -> None:
    job = GenerationJob.request(uuid4(), uuid4(), "image", {"prompt": "shoe"}, Charge(8, 5, 3), "fp-1", None, 1)

    (requested,) = job.collect_events()

    assert isinstance(requested, GenerationJob.Requested)
    assert (requested.cost, requested.charged_from_allowance, requested.charged_from_topup) == (8, 5, 3)


def test_queued_job_when_started_then_it_is_processing_under_a_lease() -> None:
    job = queued_job()

    attempt = job.start("worker-1", NOW, NOW + LEASE)

    assert (attempt, job.status, job.attempts, job.lease_until) == (1, "processing", 1, NOW + LEASE)


def test_queued_job_when_started_then_started_at_is_set() -> None:
    job = queued_job()

    job.start("worker-1", NOW, NOW + LEASE)

    assert job.started_at is not None


def test_queued_job_when_asked_then_it_can_start() -> None:
    assert queued_job().can_start(NOW) is True


def test_processing_job_when_lease_is_live_then_it_cannot_start() -> None:
    job, _ = started_job()

    assert job.can_start(NOW + LEASE - timedelta(seconds=1)) is False


def test_processing_job_when_lease_ran_out_then_it_can_start() -> None:
    job, _ = started_job()

    assert job.can_start(NOW + LEASE) is True


def test_processing_job_when_started_during_its_lease_then_raises_and_records_nothing() -> None:
    job, _ = started_job()

    with pytest.raises(JobNotStartable):
        job.start("worker-2", NOW + timedelta(seconds=30), NOW + timedelta(seconds=30) + LEASE)
    assert job.collect_events() == []
    assert job.attempts == 1


def test_processing_job_when_started_after_its_lease_then_a_new_attempt_begins() -> None:
    job, _ = started_job()
    later = NOW + LEASE + timedelta(seconds=1)

    attempt = job.start("worker-2", later, later + LEASE)

    assert (attempt, job.status, job.lease_until) == (2, "processing", later + LEASE)


def test_restarted_job_when_looked_at_then_started_at_is_the_first_start() -> None:
    job, _ = started_job()
    first_started_at = job.started_at
    later = NOW + LEASE + timedelta(seconds=1)

    job.start("worker-2", later, later + LEASE)

    assert job.started_at == first_started_at


def test_completed_job_when_asked_then_it_cannot_start() -> None:
    job, attempt = started_job()
    job.complete(attempt, VARIANTS)

    assert job.can_start(NOW + timedelta(days=1)) is False


def test_completed_job_when_started_then_raises_job_not_startable() -> None:
    job, attempt = started_job()
    job.complete(attempt, VARIANTS)

    with pytest.raises(JobNotStartable):
        job.start("worker-2", NOW + timedelta(days=1), NOW + timedelta(days=1) + LEASE)


def test_job_not_startable_when_raised_then_it_is_an_invalid_state() -> None:
    assert issubclass(JobNotStartable, InvalidState)


# Completing


def test_processing_job_when_completed_by_current_attempt_then_it_is_completed() -> None:
    job, attempt = started_job()

    job.complete(attempt, VARIANTS)

    assert (job.status, job.variants, job.lease_until, job.is_terminal) == ("completed", VARIANTS, None, True)
    assert job.completed_at is not None


def test_restarted_job_when_completed_by_superseded_attempt_then_raises_stale_attempt() -> None:
    job, first = started_job()
    later = NOW + LEASE + timedelta(seconds=1)
    job.start("worker-2", later, later + LEASE)
    job.collect_events()

    with pytest.raises(StaleAttempt):
        job.complete(first, VARIANTS)
    assert job.collect_events() == []
    assert job.status == "processing"


def test_restarted_job_when_completed_by_current_attempt_then_it_is_completed() -> None:
    job, _ = started_job()
    later = NOW + LEASE + timedelta(seconds=1)
    second = job.start("worker-2", later, later + LEASE)

    job.complete(second, VARIANTS)

    assert job.status == "completed"


def test_queued_job_when_completed_then_raises_stale_attempt() -> None:
    job = queued_job()

    with pytest.raises(StaleAttempt):
        job.complete(0, VARIANTS)


def test_completed_job_when_completed_again_then_raises_stale_attempt() -> None:
    job, attempt = started_job()
    job.complete(attempt, VARIANTS)
    job.collect_events()

    with pytest.raises(StaleAttempt):
        job.complete(attempt, VARIANTS)
    assert job.collect_events() == []


def test_requeued_job_when_completed_by_its_old_attempt_then_raises_stale_attempt() -> None:
    job, attempt = started_job()
    job.requeue("worker lost")

    with pytest.raises(StaleAttempt):
        job.complete(attempt, VARIANTS)


# Failing


def test_processing_job_when_failed_by_current_attempt_then_whole_cost_is_refunded() -> None:
    job, attempt = started_job(cost=40)

    refund = job.fail(attempt, "provider_error", "The provider is down.")

    assert (refund, job.credits_refunded, job.status) == (Refund(to_allowance=40, to_topup=0), 40, "failed")


def test_job_charged_from_both_balances_when_failed_then_each_balance_gets_its_part_back() -> None:
    job, attempt = started_job(charge=Charge(8, from_allowance=5, from_topup=3))

    refund = job.fail(attempt, "provider_error", "The provider is down.")

    assert refund == Refund(to_allowance=5, to_topup=3)


def test_failed_job_when_looked_at_then_nothing_is_left_to_refund() -> None:
    job, attempt = started_job(charge=Charge(8, from_allowance=5, from_topup=3))

    job.fail(attempt, "provider_error", "The provider is down.")

    assert (job.charge.refundable, job.charge.refund(8)) == (0, Refund(0, 0))


def test_processing_job_when_failed_then_error_is_recorded() -> None:
    job, attempt = started_job()

    job.fail(attempt, "provider_error", "The provider is down.")

    assert job.error == {"code": "provider_error", "message": "The provider is down."}
    assert (job.lease_until, job.completed_at is not None) == (None, True)


def test_processing_job_when_failed_then_event_names_the_attempt_and_refund() -> None:
    job, attempt = started_job(charge=Charge(8, from_allowance=5, from_topup=3))

    job.fail(attempt, "provider_error", "The provider is down.")

    (failed,) = job.collect_events()
    assert isinstance(failed, GenerationJob.Failed)
    assert (failed.attempt, failed.refunded, failed.refund_to_allowance, failed.refund_to_topup) == (attempt, 8, 5, 3)


def test_queued_job_when_failed_without_attempt_then_whole_cost_is_refunded() -> None:
    job = queued_job(cost=3)

    refund = job.fail(None, "expired", "No worker picked the job up.")

    assert (refund.amount, job.status, job.credits_refunded) == (3, "failed", 3)


def test_failed_job_when_failed_again_without_attempt_then_raises_and_refunds_nothing_more() -> None:
    job, attempt = started_job(cost=3)
    job.fail(attempt, "provider_error", "The provider is down.")
    job.collect_events()

    with pytest.raises(InvalidState):
        job.fail(None, "expired", "Swept.")
    assert (job.collect_events(), job.credits_refunded) == ([], 3)


def test_failed_job_when_failed_again_by_same_attempt_then_raises_stale_attempt() -> None:
    job, attempt = started_job(cost=3)
    job.fail(attempt, "provider_error", "The provider is down.")

    with pytest.raises(StaleAttempt):
        job.fail(attempt, "provider_error", "The provider is down.")
    assert job.credits_refunded == 3


def test_completed_job_when_failed_without_attempt_then_raises_invalid_state() -> None:
    job, attempt = started_job()
    job.complete(attempt, VARIANTS)

    with pytest.raises(InvalidState):
        job.fail(None, "expired", "Swept.")
    assert job.status == "completed"


def test_restarted_job_when_failed_by_superseded_attempt_then_raises_stale_attempt() -> None:
    job, first = started_job()
    later = NOW + LEASE + timedelta(seconds=1)
    job.start("worker-2", later, later + LEASE)
    job.collect_events()

    with pytest.raises(StaleAttempt):
        job.fail(first, "provider_error", "Too late.")
    assert (job.collect_events(), job.credits_refunded) == ([], 0)


# Requeueing


def test_processing_job_when_requeued_then_it_is_queued_without_a_lease() -> None:
    job, _ = started_job()

    job.requeue("worker lost")

    assert (job.status, job.lease_until, job.attempts) == ("queued", None, 1)


def test_requeued_job_when_started_then_attempt_number_grows() -> None:
    job, _ = started_job()
    job.requeue("worker lost")

    assert job.start("worker-2", NOW, NOW + LEASE) == 2


@pytest.mark.parametrize("ending", ["complete", "fail"])
def test_terminal_job_when_requeued_then_raises_invalid_state_and_records_nothing(ending: str) -> None:
    job, attempt = started_job()
    if ending == "complete":
        job.complete(attempt, VARIANTS)
    else:
        job.fail(attempt, "provider_error", "The provider is down.")
    job.collect_events()

    with pytest.raises(InvalidState):
        job.requeue("sweeper")
    assert job.collect_events() == []


# Credits consumed


def test_unfinished_job_when_asked_then_no_credits_are_consumed() -> None:
    job, _ = started_job(cost=3)

    assert job.credits_consumed == 0


def test_completed_job_when_asked_then_its_whole_cost_is_consumed() -> None:
    job, attempt = started_job(cost=3)
    job.complete(attempt, VARIANTS)

    assert job.credits_consumed == 3


def test_failed_job_when_asked_then_nothing_is_consumed() -> None:
    job, attempt = started_job(cost=3)
    job.fail(attempt, "provider_error", "The provider is down.")

    assert job.credits_consumed == job.cost - job.credits_refunded == 0


# Replay


def test_job_history_when_replayed_then_gives_the_same_job() -> None:
    job = GenerationJob.request(uuid4(), uuid4(), "copy", {"product": "shoe"}, Charge(3, 1, 2), "fp", uuid4(), 3)
    job.start("worker-1", NOW, NOW + LEASE)
    job.requeue("worker lost")
    second = job.start("worker-2", NOW, NOW + LEASE)
    job.fail(second, "provider_error", "The provider is down.")

    assert project_aggregate(None, job.collect_events()) == job


# Never refunded more than charged


@st.composite
def charges(draw: st.DrawFn) -> Charge:
    from_allowance = draw(st.integers(0, 100))
    from_topup = draw(st.integers(0 if from_allowance else 1, 100))
    return Charge(from_allowance + from_topup, from_allowance, from_topup)


@given(charges(), st.booleans())
def test_any_charge_when_job_fails_then_refund_is_exactly_the_charge_split_as_charged(charge: Charge, started: bool) -> None:
    if started:
        job, attempt = started_job(charge=charge)
        refund = job.fail(attempt, "provider_error", "The provider is down.")
    else:
        job = queued_job(charge=charge)
        refund = job.fail(None, "expired", "Swept.")

    assert refund == Refund(to_allowance=charge.from_allowance, to_topup=charge.from_topup)
    assert (job.credits_refunded, job.credits_consumed) == (charge.amount, 0)


@given(charges())
def test_any_failed_job_when_failed_again_then_refunds_nothing_more(charge: Charge) -> None:
    job, attempt = started_job(charge=charge)
    job.fail(attempt, "provider_error", "The provider is down.")

    for again in (lambda: job.fail(None, "expired", "Swept."), lambda: job.fail(attempt, "provider_error", "Again.")):
        with pytest.raises(InvalidState):
            again()

    assert job.credits_refunded == charge.amount
