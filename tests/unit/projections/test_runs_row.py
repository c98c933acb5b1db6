"""The runs row: what `evolve` makes of a run's events, one at a time, always agreeing with the aggregate."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from functools import reduce
from typing import Any
from uuid import UUID, uuid4

from eventsourcing.persistence import DatetimeAsISO, JSONTranscoder, Mapper, UUIDAsHex
from hypothesis import given
from hypothesis import strategies as st

from domain.post import Post
from domain.run import Run
from projections.runs import RunRow, evolve

NOW = datetime(2026, 3, 15, 14, 0, tzinfo=UTC)
LATER = NOW + timedelta(hours=1)
POST_STATUSES = ["draft", "scheduled", "publishing", "published", "retry_pending", "failed", "canceled", "unknown", "deleted"]


def new_run(mode: str = "scheduled", posts: int = 3) -> tuple[Run, list[UUID]]:
    """A new run with its Created event still pending."""
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
    return run, post_ids


def through_the_store(events: list[Any]) -> list[Any]:
    """The events as a read model gets them: through the event store's JSON."""
    transcoder = JSONTranscoder()
    transcoder.register(UUIDAsHex())
    transcoder.register(DatetimeAsISO())
    mapper: Mapper[UUID] = Mapper(transcoder=transcoder)
    return [mapper.to_domain_event(mapper.to_stored_event(event)) for event in events]


def fold(events: Any, row: RunRow | None = None) -> RunRow | None:
    return reduce(evolve, through_the_store(list(events)), row)


def assert_agrees(row: RunRow | None, run: Run) -> None:
    assert row is not None
    assert (row.id, row.workspace_id, row.mode, row.status, row.start_at) == (run.id, run.workspace_id, run.mode, run.status, run.start_at)
    assert (row.total_posts, row.source_model, row.timezone, row.idempotency_key) == (
        run.total_posts,
        run.source_model,
        run.timezone,
        run.idempotency_key,
    )
    assert row.phases == {str(post_id): phase for post_id, phase in run.phases.items()}


def test_created_event_when_evolved_from_nothing_then_row_is_the_scheduled_run() -> None:
    run, _ = new_run()
    (created,) = run.collect_events()

    row = evolve(None, created)

    assert row == RunRow(
        id=run.id,
        workspace_id=run.workspace_id,
        mode="scheduled",
        status="scheduled",
        total_posts=3,
        source_model="posts_v1",
        timezone="America/New_York",
        idempotency_key="launch-1",
        start_at=NOW,
        created_at=created.timestamp,
        updated_at=created.timestamp,
    )


def test_draft_run_when_created_then_row_is_a_draft() -> None:
    run, _ = new_run("draft")

    row = fold(run.collect_events())

    assert row is not None
    assert (row.mode, row.status) == ("draft", "draft")


def test_draft_run_when_published_then_row_is_scheduled_at_the_new_start() -> None:
    run, _ = new_run("draft")
    run.publish(LATER)
    events = run.collect_events()

    row = fold(events)

    assert row is not None
    assert (row.mode, row.status, row.start_at, row.updated_at) == ("scheduled", "scheduled", LATER, events[-1].timestamp)
    assert_agrees(row, run)


def test_draft_run_with_a_failed_post_when_published_then_row_is_processing_as_the_run() -> None:
    run, post_ids = new_run("draft")
    run.record_outcome(post_ids[0], "failed")
    run.publish()

    row = fold(run.collect_events())

    assert row is not None
    assert (row.status, run.status) == ("processing", "processing")
    assert_agrees(row, run)


def test_draft_run_with_a_canceled_post_when_published_then_row_is_scheduled() -> None:
    run, post_ids = new_run("draft")
    run.record_outcome(post_ids[0], "canceled")
    run.publish()

    row = fold(run.collect_events())

    assert row is not None
    assert row.status == "scheduled"
    assert_agrees(row, run)


def test_first_post_when_publishing_then_row_is_processing_with_its_phase() -> None:
    run, post_ids = new_run()
    run.record_outcome(post_ids[0], "publishing")

    row = fold(run.collect_events())

    assert row is not None
    assert (row.status, row.phases) == ("processing", {str(post_ids[0]): "active"})


def test_every_post_when_published_then_row_is_completed() -> None:
    run, post_ids = new_run()
    for post_id in post_ids:
        run.record_outcome(post_id, "published")

    row = fold(run.collect_events())

    assert row is not None
    assert row.status == "completed"
    assert_agrees(row, run)


def test_every_post_over_and_one_failed_when_evolved_then_row_is_partial_failed() -> None:
    run, post_ids = new_run()
    run.record_outcome(post_ids[0], "published")
    run.record_outcome(post_ids[1], "failed")
    run.record_outcome(post_ids[2], "canceled")

    row = fold(run.collect_events())

    assert row is not None
    assert row.status == "partial_failed"
    assert_agrees(row, run)


def test_finished_run_when_a_failed_post_is_retried_then_row_is_reopened_and_processing() -> None:
    run, post_ids = new_run(posts=1)
    run.record_outcome(post_ids[0], "failed")
    finished = fold(run.collect_events())
    run.record_outcome(post_ids[0], "scheduled")
    events = run.collect_events()

    row = fold(events, finished)

    assert finished is not None and row is not None
    assert (finished.status, row.status, [type(event).__name__ for event in events]) == (
        "partial_failed",
        "processing",
        ["PostOutcomeRecorded", "Reopened"],
    )
    assert_agrees(row, run)


def test_row_when_evolved_with_a_posts_event_then_row_is_unchanged() -> None:
    run, post_ids = new_run()
    row = fold(run.collect_events())
    post = Post.create(
        post_ids[0],
        run.workspace_id,
        run_id=run.id,
        account_id=uuid4(),
        provider="x",
        handle="x:acme",
        text="Hi",
        publish_at=NOW,
        timezone="UTC",
    )
    post.request_publish(NOW)

    assert fold(post.collect_events(), row) == row


def test_nothing_when_evolved_with_a_later_run_event_then_stays_nothing() -> None:
    run, post_ids = new_run()
    run.record_outcome(post_ids[0], "publishing")
    _created, *later = run.collect_events()

    assert fold(later) is None


@given(
    mode=st.sampled_from(["draft", "scheduled"]),
    steps=st.lists(st.tuples(st.integers(0, 2), st.sampled_from([*POST_STATUSES, "publish"])), max_size=25),
)
def test_any_outcomes_when_evolved_then_row_agrees_with_the_run_after_every_step(mode: str, steps: list[tuple[int, str]]) -> None:
    run, post_ids = new_run(mode)
    row = fold(run.collect_events())
    for index, status in steps:
        if status == "publish":
            if run.status != "draft":
                continue
            run.publish(NOW + timedelta(minutes=index))
        else:
            run.record_outcome(post_ids[index], status)
        row = fold(run.collect_events(), row)
        assert_agrees(row, run)
