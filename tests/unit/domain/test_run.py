"""Run: a batch of posts whose status follows from theirs: processing from the first one that starts, completed
when all are published, partial_failed when all are over and some failed or were canceled."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from uuid import UUID, uuid4

import pytest
from eventsourcing.application import project_aggregate
from hypothesis import given
from hypothesis import strategies as st

from domain.errors import IdempotencyKeyReused, InvalidState, InvalidTime, ScheduleInvalid
from domain.run import Run

NOW = datetime(2026, 3, 15, 14, 0, tzinfo=UTC)
POST_STATUSES = ["draft", "scheduled", "publishing", "published", "retry_pending", "failed", "canceled", "unknown", "deleted"]


def new_run(mode: str = "scheduled", posts: int = 3) -> tuple[Run, list[UUID]]:
    post_ids = [uuid4() for _ in range(posts)]
    run = Run.create(
        uuid4(),
        uuid4(),
        mode=mode,
        post_ids=post_ids,
        start_at=NOW,
        source_model="posts_v1",
        timezone="America/New_York",
        idempotency_key="launch-1",
        fingerprint="fp-1",
    )
    run.collect_events()
    return run, post_ids


def event_names(run: Run) -> list[str]:
    return [type(event).__name__ for event in run.collect_events()]


# Creating


def test_scheduled_run_when_created_then_it_is_scheduled_with_every_post_pending() -> None:
    run, post_ids = new_run()

    assert (run.status, run.total_posts, run.post_ids, run.counts) == ("scheduled", 3, tuple(post_ids), {"pending": 3})


def test_draft_run_when_created_then_it_is_a_draft() -> None:
    run, _ = new_run("draft")

    assert (run.status, run.mode) == ("draft", "draft")


def test_run_when_created_then_event_carries_its_posts_and_envelope() -> None:
    post_ids = [uuid4(), uuid4()]
    run = Run.create(uuid4(), uuid4(), mode="draft", post_ids=post_ids, start_at=NOW, source_model="campaigns_v2", timezone="UTC")

    (created,) = run.collect_events()

    assert isinstance(created, Run.Created)
    assert (created.post_ids, created.source_model, created.idempotency_key, created.fingerprint) == (
        tuple(post_ids),
        "campaigns_v2",
        None,
        None,
    )


@pytest.mark.parametrize("post_ids", [[], "duplicate"])
def test_run_without_posts_or_with_a_post_twice_when_created_then_raises_schedule_invalid(post_ids: list[UUID] | str) -> None:
    ids = [uuid4()] * 2 if post_ids == "duplicate" else []

    with pytest.raises(ScheduleInvalid):
        Run.create(uuid4(), uuid4(), mode="scheduled", post_ids=ids, start_at=NOW, source_model="posts_v1", timezone="UTC")


def test_run_when_created_in_an_unknown_mode_then_raises_schedule_invalid() -> None:
    with pytest.raises(ScheduleInvalid):
        Run.create(uuid4(), uuid4(), mode="later", post_ids=[uuid4()], start_at=NOW, source_model="posts_v1", timezone="UTC")


def test_run_when_created_with_a_naive_start_then_raises_invalid_time() -> None:
    with pytest.raises(InvalidTime):
        Run.create(
            uuid4(), uuid4(), mode="draft", post_ids=[uuid4()], start_at=datetime(2026, 3, 15), source_model="posts_v1", timezone="UTC"
        )


def test_workspace_and_key_when_given_twice_then_run_id_is_the_same() -> None:
    workspace_id = uuid4()

    assert Run.id_for(workspace_id, "k") == Run.id_for(workspace_id, "k") != Run.id_for(workspace_id, "k2") != Run.id_for(uuid4(), "k")


def test_run_when_replayed_with_the_same_envelope_then_gives_its_id() -> None:
    run, _ = new_run()

    assert run.replay("fp-1") == run.id


def test_run_when_replayed_with_another_envelope_then_raises_idempotency_key_reused() -> None:
    run, _ = new_run()

    with pytest.raises(IdempotencyKeyReused):
        run.replay("fp-2")


# Publishing a draft run


def test_draft_run_when_published_at_a_new_start_then_it_is_scheduled_and_gives_the_shift() -> None:
    run, _ = new_run("draft")
    start = NOW + timedelta(days=1, minutes=5)

    shift = run.publish(start)

    assert (shift, run.status, run.mode, run.start_at) == (timedelta(days=1, minutes=5), "scheduled", "scheduled", start)
    assert event_names(run) == ["Published"]


def test_draft_run_when_published_with_an_offset_start_then_start_is_kept_in_utc() -> None:
    run, _ = new_run("draft")

    shift = run.publish(datetime(2026, 3, 15, 12, 0, tzinfo=timezone(timedelta(hours=-4))))

    assert (shift, run.start_at) == (timedelta(hours=2), NOW + timedelta(hours=2))


def test_draft_run_when_published_without_a_start_then_its_times_stay() -> None:
    run, _ = new_run("draft")

    assert (run.publish(), run.status, run.start_at) == (timedelta(0), "scheduled", NOW)


def test_draft_run_with_a_canceled_post_when_published_then_it_is_scheduled() -> None:
    run, post_ids = new_run("draft")
    run.record_outcome(post_ids[0], "canceled")

    run.publish()

    assert (run.status, run.counts) == ("scheduled", {"canceled": 1, "pending": 2})


@pytest.mark.parametrize("status", ["scheduled", "processing", "completed", "partial_failed"])
def test_run_not_draft_when_published_then_raises_invalid_state(status: str) -> None:
    run, post_ids = new_run(posts=2)
    if status == "processing":
        run.record_outcome(post_ids[0], "publishing")
    elif status == "completed":
        for post_id in post_ids:
            run.record_outcome(post_id, "published")
    elif status == "partial_failed":
        run.record_outcome(post_ids[0], "published")
        run.record_outcome(post_ids[1], "failed")
    run.collect_events()
    assert run.status == status

    with pytest.raises(InvalidState):
        run.publish(NOW)
    assert run.collect_events() == []


# Post outcomes


def test_scheduled_run_when_its_first_post_starts_then_it_is_processing() -> None:
    run, post_ids = new_run()

    changed = run.record_outcome(post_ids[1], "publishing")

    assert (changed, run.status, run.counts) == (True, "processing", {"pending": 2, "active": 1})
    assert event_names(run) == ["PostOutcomeRecorded", "ProcessingStarted"]


def test_processing_run_when_another_post_starts_then_only_the_outcome_is_recorded() -> None:
    run, post_ids = new_run()
    run.record_outcome(post_ids[0], "publishing")
    run.collect_events()

    run.record_outcome(post_ids[1], "publishing")

    assert (run.status, event_names(run)) == ("processing", ["PostOutcomeRecorded"])


@pytest.mark.parametrize("moves", [("publishing", "retry_pending"), ("publishing", "unknown"), ("scheduled", "draft")])
def test_post_moving_within_its_phase_when_recorded_then_nothing_is_recorded(moves: tuple[str, str]) -> None:
    run, post_ids = new_run()
    run.record_outcome(post_ids[0], moves[0])
    run.collect_events()

    changed = run.record_outcome(post_ids[0], moves[1])

    assert (changed, run.collect_events()) == (False, [])


def test_run_when_every_post_is_published_then_it_is_completed_with_a_summary() -> None:
    run, post_ids = new_run()
    for post_id in post_ids:
        run.record_outcome(post_id, "publishing")
        run.record_outcome(post_id, "published")

    events = run.collect_events()

    assert run.status == "completed"
    assert isinstance(events[-1], Run.Completed)
    assert events[-1].summary == {"published": 3}


def test_completed_run_when_a_post_is_deleted_then_it_stays_completed() -> None:
    run, post_ids = new_run(posts=2)
    for post_id in post_ids:
        run.record_outcome(post_id, "published")
    run.collect_events()

    run.record_outcome(post_ids[0], "deleted")

    assert (run.status, event_names(run), run.counts) == ("completed", ["PostOutcomeRecorded"], {"deleted": 1, "published": 1})


@pytest.mark.parametrize("ending", ["failed", "canceled"])
def test_run_when_every_post_is_over_and_one_did_not_go_out_then_it_is_partial_failed(ending: str) -> None:
    run, post_ids = new_run()
    run.record_outcome(post_ids[0], "published")
    run.record_outcome(post_ids[1], ending)
    before = run.status

    run.record_outcome(post_ids[2], "published")

    events = run.collect_events()
    assert (before, run.status) == ("processing", "partial_failed")
    assert isinstance(events[-1], Run.PartiallyFailed)
    assert events[-1].summary == {"published": 2, ending: 1}


def test_run_when_one_post_is_still_unknown_then_it_is_not_finished() -> None:
    run, post_ids = new_run(posts=2)
    run.record_outcome(post_ids[0], "published")

    run.record_outcome(post_ids[1], "unknown")

    assert (run.status, run.is_finished) == ("processing", False)


def test_scheduled_run_when_one_post_is_canceled_then_it_is_still_scheduled() -> None:
    run, post_ids = new_run()

    run.record_outcome(post_ids[0], "canceled")

    assert (run.status, event_names(run)) == ("scheduled", ["PostOutcomeRecorded"])


def test_scheduled_run_when_every_post_is_canceled_then_it_is_partial_failed() -> None:
    run, post_ids = new_run(posts=2)

    for post_id in post_ids:
        run.record_outcome(post_id, "canceled")

    assert run.status == "partial_failed"


def test_partial_failed_run_when_its_failed_post_is_retried_then_it_is_reopened_and_then_completed() -> None:
    run, post_ids = new_run(posts=2)
    run.record_outcome(post_ids[0], "published")
    run.record_outcome(post_ids[1], "failed")
    run.collect_events()

    run.record_outcome(post_ids[1], "scheduled")
    assert (run.status, event_names(run)) == ("processing", ["PostOutcomeRecorded", "Reopened"])

    run.record_outcome(post_ids[1], "published")
    assert (run.status, event_names(run)) == ("completed", ["PostOutcomeRecorded", "Completed"])


def test_processing_run_when_its_only_active_post_is_delayed_then_it_stays_processing() -> None:
    run, post_ids = new_run(posts=2)
    run.record_outcome(post_ids[0], "publishing")

    run.record_outcome(post_ids[0], "scheduled")

    assert run.status == "processing"


def test_run_when_a_foreign_post_is_recorded_then_raises_invalid_state() -> None:
    run, _ = new_run()

    with pytest.raises(InvalidState):
        run.record_outcome(uuid4(), "published")
    assert run.collect_events() == []


def test_run_when_an_unknown_status_is_recorded_then_raises_invalid_state() -> None:
    run, post_ids = new_run()

    with pytest.raises(InvalidState):
        run.record_outcome(post_ids[0], "sent")


# Replay and derivable counts


def test_run_history_when_replayed_then_gives_the_same_run() -> None:
    post_ids = [uuid4(), uuid4()]
    run = Run.create(uuid4(), uuid4(), mode="draft", post_ids=post_ids, start_at=NOW, source_model="posts_v1", timezone="UTC")
    run.publish(NOW + timedelta(hours=1))
    run.record_outcome(post_ids[0], "publishing")
    run.record_outcome(post_ids[0], "failed")
    run.record_outcome(post_ids[1], "published")
    run.record_outcome(post_ids[0], "scheduled")

    assert project_aggregate(None, run.collect_events()) == run


@given(st.lists(st.tuples(st.integers(0, 3), st.sampled_from(POST_STATUSES[1:])), max_size=40))
def test_any_outcomes_when_recorded_then_status_and_counts_follow_from_the_last_status_of_each_post(
    outcomes: list[tuple[int, str]],
) -> None:
    run, post_ids = new_run(posts=4)
    last = dict.fromkeys(post_ids, "scheduled")

    for index, status in outcomes:
        run.record_outcome(post_ids[index], status)
        last[post_ids[index]] = status

    ended = [status for status in last.values() if status in ("published", "deleted", "failed", "canceled")]
    assert sum(run.counts.values()) == 4
    assert run.counts.get("pending", 0) == sum(status in ("draft", "scheduled") for status in last.values())
    if len(ended) == 4:
        assert run.status == ("completed" if set(ended) <= {"published", "deleted"} else "partial_failed")
    else:
        assert run.status in ("scheduled", "processing")
