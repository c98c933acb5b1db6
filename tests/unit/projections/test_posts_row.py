"""The posts row: what `evolve` makes of a post's events, one at a time, always agreeing with the aggregate."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from functools import reduce
from typing import Any
from uuid import UUID, uuid4

import msgspec
from eventsourcing.persistence import DatetimeAsISO, JSONTranscoder, Mapper, UUIDAsHex
from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, precondition, rule

from domain.post import Post
from domain.run import Run
from domain.workspace import Workspace
from projections.posts import AttemptRow, PostRow, evolve

NOW = datetime(2026, 3, 15, 14, 0, tzinfo=UTC)
LATER = NOW + timedelta(minutes=1)


def new_post(mode: str = "scheduled", publish_at: datetime = NOW) -> Post:
    """A new post with its Created event still pending."""
    return Post.create(
        uuid4(),
        uuid4(),
        run_id=uuid4(),
        account_id=uuid4(),
        provider="mastodon",
        handle="mastodon:acme",
        text="Spring sale starts now.",
        publish_at=publish_at,
        timezone="America/New_York",
        local_time="2026-03-15T10:00",
        mode=mode,
        assets=["https://cdn.test/a.png"],
        name="launch",
        campaign_id=uuid4(),
    )


def through_the_store(events: list[Any]) -> list[Any]:
    """The events as a read model gets them: through the event store's JSON, so tuples come back as lists."""
    transcoder = JSONTranscoder()
    transcoder.register(UUIDAsHex())
    transcoder.register(DatetimeAsISO())
    mapper: Mapper[UUID] = Mapper(transcoder=transcoder)
    return [mapper.to_domain_event(mapper.to_stored_event(event)) for event in events]


def fold(events: Any, row: PostRow | None = None) -> PostRow | None:
    return reduce(evolve, through_the_store(list(events)), row)


def attempts_of(post: Post) -> list[AttemptRow]:
    return [AttemptRow(**attempt._asdict()) for attempt in post.attempts]


def assert_agrees(row: PostRow | None, post: Post) -> None:
    """Everything the row mirrors is what the aggregate holds."""
    assert row is not None
    error = None if row.error_code is None else {"code": row.error_code, "message": row.error_message}
    assert (row.id, row.workspace_id, row.run_id, row.account_id) == (post.id, post.workspace_id, post.run_id, post.account_id)
    assert (row.status, row.due_at, row.next_attempt_at, row.publish_at) == (
        post.status,
        post.due_at,
        post.next_attempt_at,
        post.publish_at,
    )
    assert (row.attempts, error, row.delayed_reason) == (attempts_of(post), post.error, post.delayed_reason)
    assert (row.provider_post_id, row.provider_url, row.published_at) == (post.provider_post_id, post.provider_url, post.published_at)
    assert (row.local_time, row.timezone, row.assets) == (post.local_time, post.timezone, list(post.assets))


def read_back(row: PostRow) -> PostRow:
    """The row as `class_row` makes it from the table: its jsonb columns decoded from JSON."""
    columns = {name: getattr(row, name) for name in PostRow.__struct_fields__}
    for name in ("assets", "attempts"):
        columns[name] = json.loads(json.dumps(msgspec.to_builtins(columns[name])))
    return PostRow(**columns)


# Creating


def test_created_event_when_evolved_from_nothing_then_row_is_the_scheduled_post() -> None:
    post = new_post()
    (created,) = post.collect_events()

    row = evolve(None, created)

    assert row == PostRow(
        id=post.id,
        workspace_id=post.workspace_id,
        run_id=post.run_id,
        account_id=post.account_id,
        provider="mastodon",
        handle="mastodon:acme",
        text="Spring sale starts now.",
        assets=["https://cdn.test/a.png"],
        publish_at=NOW,
        due_at=NOW,
        local_time="2026-03-15T10:00",
        timezone="America/New_York",
        name="launch",
        campaign_id=post.campaign_id,
        status="scheduled",
        created_at=created.timestamp,
        updated_at=created.timestamp,
    )


def test_draft_when_created_then_row_is_a_draft_due_at_its_publish_time() -> None:
    post = new_post("draft")

    row = fold(post.collect_events())

    assert row is not None
    assert (row.status, row.due_at) == ("draft", NOW)


def test_draft_when_scheduled_then_row_moves_to_the_new_time() -> None:
    post = new_post("draft")
    post.schedule(LATER, "Europe/Paris", "2026-03-15T15:01")

    row = fold(post.collect_events())

    assert row is not None
    assert (row.status, row.publish_at, row.due_at, row.timezone, row.local_time) == (
        "scheduled",
        LATER,
        LATER,
        "Europe/Paris",
        "2026-03-15T15:01",
    )
    assert_agrees(row, post)


# Publishing


def test_scheduled_row_when_publish_is_requested_then_row_is_publishing() -> None:
    post = new_post()
    scheduled = fold(post.collect_events())
    post.request_publish(NOW)
    (requested,) = post.collect_events()

    row = evolve(scheduled, requested)

    assert row is not None
    assert (row.status, row.updated_at) == ("publishing", requested.timestamp)


def test_attempt_when_published_then_row_holds_the_provider_post_and_the_finished_attempt() -> None:
    post = new_post()
    post.request_publish(NOW)
    n = post.start_attempt(NOW)
    post.complete_attempt(n, "109", "https://mastodon.test/@acme/109", LATER)

    row = fold(post.collect_events())

    assert row is not None
    assert (row.status, row.provider_post_id, row.provider_url, row.published_at) == (
        "published",
        "109",
        "https://mastodon.test/@acme/109",
        LATER,
    )
    assert row.attempts == [AttemptRow(n=1, started_at=NOW, finished_at=LATER, outcome="published")]
    assert_agrees(row, post)


def test_attempt_when_started_then_row_has_it_in_flight() -> None:
    post = new_post()
    post.request_publish(NOW)
    post.start_attempt(NOW)

    row = fold(post.collect_events())

    assert row is not None
    assert (row.status, row.attempts) == ("publishing", [AttemptRow(n=1, started_at=NOW)])


def test_retryable_failure_when_evolved_then_row_is_retry_pending_and_due_at_the_retry() -> None:
    post = new_post()
    post.request_publish(NOW)
    n = post.start_attempt(NOW)
    post.fail_attempt(n, NOW, "HTTP 503", http_status=503, retry_at=LATER)

    row = fold(post.collect_events())

    assert row is not None
    assert (row.status, row.due_at, row.error_code) == ("retry_pending", LATER, None)
    assert row.attempts == [AttemptRow(n=1, started_at=NOW, finished_at=NOW, outcome="failed", error="HTTP 503", http_status=503)]
    assert_agrees(row, post)


def test_rejected_attempt_when_evolved_then_row_is_failed_with_the_reason() -> None:
    post = new_post()
    post.request_publish(NOW)
    n = post.start_attempt(NOW)
    post.fail_attempt(n, NOW, "HTTP 401: token revoked", http_status=401)

    row = fold(post.collect_events())

    assert row is not None
    assert (row.status, row.error_code, row.error_message, row.due_at) == ("failed", "rejected", "HTTP 401: token revoked", NOW)
    assert_agrees(row, post)


def test_last_attempt_of_the_budget_when_failed_then_row_is_failed_attempts_exhausted() -> None:
    post = new_post()
    post.request_publish(NOW)
    n = post.start_attempt(NOW)
    post.fail_attempt(n, NOW, "HTTP 503", http_status=503, retry_at=LATER, max_attempts=1)

    row = fold(post.collect_events())

    assert row is not None
    assert (row.status, row.error_code, row.next_attempt_at, row.due_at) == ("failed", "attempts_exhausted", None, NOW)
    assert_agrees(row, post)


def test_publishing_post_when_delayed_then_row_is_scheduled_until_then_with_the_reason() -> None:
    post = new_post()
    post.request_publish(NOW)
    post.delay(LATER, "rate_limit")

    row = fold(post.collect_events())

    assert row is not None
    assert (row.status, row.due_at, row.delayed_reason) == ("scheduled", LATER, "rate_limit")
    assert_agrees(row, post)


# Unknown outcomes and reconciling


def test_attempt_when_outcome_is_unknown_then_row_is_unknown_with_the_error() -> None:
    post = new_post()
    post.request_publish(NOW)
    n = post.start_attempt(NOW)
    post.mark_outcome_unknown(n, LATER, "timed out after sending")

    row = fold(post.collect_events())

    assert row is not None
    assert (row.status, row.error_code, row.error_message) == ("unknown", "outcome_unknown", "timed out after sending")
    assert row.attempts == [AttemptRow(n=1, started_at=NOW, finished_at=LATER, outcome="unknown", error="timed out after sending")]
    assert_agrees(row, post)


def test_unknown_row_when_reconciled_as_published_then_row_is_published_without_error() -> None:
    post = new_post()
    post.request_publish(NOW)
    n = post.start_attempt(NOW)
    post.mark_outcome_unknown(n, NOW, "timeout")
    post.reconcile(LATER, True, "109", "https://mastodon.test/@acme/109")

    row = fold(post.collect_events())

    assert row is not None
    assert (row.status, row.error_code, row.provider_post_id, row.published_at) == ("published", None, "109", LATER)
    assert_agrees(row, post)


def test_unknown_row_when_reconciled_as_not_published_then_row_is_retry_pending_due_now() -> None:
    post = new_post()
    post.request_publish(NOW)
    n = post.start_attempt(NOW)
    post.mark_outcome_unknown(n, NOW, "timeout")
    post.reconcile(LATER, False)

    row = fold(post.collect_events())

    assert row is not None
    assert (row.status, row.due_at, row.error_code) == ("retry_pending", LATER, None)
    assert_agrees(row, post)


# Ending and starting over


def test_failed_row_when_retried_then_row_is_scheduled_due_now_without_error() -> None:
    post = new_post()
    post.request_publish(NOW)
    n = post.start_attempt(NOW)
    post.fail_attempt(n, NOW, "HTTP 401", http_status=401)
    post.retry(LATER)

    row = fold(post.collect_events())

    assert row is not None
    assert (row.status, row.due_at, row.error_code, len(row.attempts)) == ("scheduled", LATER, None, 1)
    assert_agrees(row, post)


def test_scheduled_row_when_failed_by_a_disconnect_then_row_is_failed_with_its_reason() -> None:
    post = new_post()
    post.fail("account_disconnected", "The account was disconnected.")

    row = fold(post.collect_events())

    assert row is not None
    assert (row.status, row.error_code, row.error_message) == ("failed", "account_disconnected", "The account was disconnected.")
    assert_agrees(row, post)


def test_retry_pending_row_when_canceled_then_row_is_canceled_and_due_at_its_publish_time() -> None:
    post = new_post()
    post.request_publish(NOW)
    n = post.start_attempt(NOW)
    post.fail_attempt(n, NOW, "HTTP 503", http_status=503, retry_at=LATER)
    post.cancel()

    row = fold(post.collect_events())

    assert row is not None
    assert (row.status, row.next_attempt_at, row.due_at) == ("canceled", None, NOW)
    assert_agrees(row, post)


def test_published_row_when_deleted_then_row_is_deleted_and_keeps_its_publish_time() -> None:
    post = new_post()
    post.request_publish(NOW)
    n = post.start_attempt(NOW)
    post.complete_attempt(n, "109", None, NOW)
    post.delete()
    events = post.collect_events()

    row = fold(events)

    assert row is not None
    assert (row.status, row.published_at, row.updated_at) == ("deleted", NOW, events[-1].timestamp)
    assert_agrees(row, post)


# Reading back, and other aggregates


def test_row_when_read_back_from_its_jsonb_columns_then_it_is_the_same_row() -> None:
    post = new_post()
    post.request_publish(NOW)
    n = post.start_attempt(NOW)
    post.fail_attempt(n, NOW, "HTTP 503", http_status=503, retry_at=LATER)
    post.request_publish(LATER)
    post.start_attempt(LATER)
    row = fold(post.collect_events())
    assert row is not None

    again = read_back(row)

    assert again == row
    assert all(isinstance(attempt, AttemptRow) for attempt in again.attempts)
    assert msgspec.to_builtins(row.attempts[0]) == {
        "n": 1,
        "startedAt": "2026-03-15T14:00:00Z",
        "finishedAt": "2026-03-15T14:00:00Z",
        "outcome": "failed",
        "error": "HTTP 503",
        "httpStatus": 503,
    }


def test_read_back_row_when_evolved_further_then_it_agrees_with_the_aggregate() -> None:
    post = new_post()
    post.request_publish(NOW)
    n = post.start_attempt(NOW)
    row = fold(post.collect_events())
    assert row is not None
    post.complete_attempt(n, "109", None, LATER)

    row = fold(post.collect_events(), read_back(row))

    assert_agrees(row, post)


def test_row_when_evolved_with_another_aggregates_event_then_row_is_unchanged() -> None:
    post = new_post()
    row = fold(post.collect_events())
    run = Run.create(
        post.run_id, post.workspace_id, mode="scheduled", post_ids=[post.id], start_at=NOW, source_model="posts_v1", timezone="UTC"
    )
    run.record_outcome(post.id, "publishing")
    workspace = Workspace.open(post.workspace_id, "Acme")

    assert fold([*run.collect_events(), *workspace.collect_events()], row) == row


def test_nothing_when_evolved_with_a_later_post_event_then_stays_nothing() -> None:
    post = new_post()
    post.request_publish(NOW)
    _created, requested = post.collect_events()

    assert evolve(None, requested) is None


# Any sequence of commands

# What a post in each status may be told, weighted toward moving on (a cancel ends the sequence).
COMMANDS: dict[str, list[str]] = {
    "draft": ["schedule", "schedule", "schedule", "cancel", "fail"],
    "scheduled": ["request_publish", "request_publish", "request_publish", "request_publish", "cancel", "fail"],
    "retry_pending": ["request_publish", "request_publish", "request_publish", "request_publish", "cancel", "fail"],
    "idle": ["start_attempt", "start_attempt", "start_attempt", "start_attempt", "delay", "fail"],
    "in_flight": ["complete_attempt", "fail_attempt", "fail_attempt", "fail_attempt", "mark_outcome_unknown"],
    "unknown": ["reconcile"],
    "failed": ["retry"],
    "published": ["delete"],
}


class PostRowFollowsThePost(RuleBasedStateMachine):
    """Valid commands in any order: after every one, the row folded from the events agrees with the aggregate."""

    @initialize(mode=st.sampled_from(["draft", "scheduled"]))
    def create(self, mode: str) -> None:
        self.now = NOW
        self.post = new_post(mode, NOW)
        self.row = fold(self.post.collect_events())

    @invariant()
    def row_agrees_with_the_post(self) -> None:
        assert self.row is not None
        assert (self.row.status, self.row.due_at) == (self.post.status, self.post.due_at)
        assert_agrees(self.row, self.post)

    def _state(self) -> str:
        if self.post.status == "publishing":
            return "idle" if self.post.in_flight is None else "in_flight"
        return self.post.status

    @rule(seconds=st.integers(0, 120))
    def time_passes(self, seconds: int) -> None:
        self.now += timedelta(seconds=seconds)

    @precondition(lambda self: self._state() in COMMANDS)
    @rule(data=st.data())
    def command(self, data: st.DataObject) -> None:
        post, now = self.post, self.now
        name = data.draw(st.sampled_from(COMMANDS[self._state()]), label="command")
        seconds = data.draw(st.integers(-60, 120), label="seconds")
        max_attempts = data.draw(st.integers(1, 4), label="max_attempts")
        n = len(post.attempts)
        if name == "schedule":
            post.schedule(now + timedelta(seconds=seconds), "UTC", None)
        elif name == "request_publish":
            self.now = max(now, post.due_at)
            post.request_publish(self.now)
        elif name == "start_attempt":
            post.start_attempt(now)
        elif name == "delay":
            post.delay(now + timedelta(seconds=abs(seconds)), "rate_limit")
        elif name == "complete_attempt":
            post.complete_attempt(n, "109", data.draw(st.none() | st.just("https://mastodon.test/@acme/109")), now)
        elif name == "fail_attempt":
            retry_at = data.draw(st.none() | st.just(now + timedelta(seconds=abs(seconds))), label="retry_at")
            http_status = data.draw(st.sampled_from([None, 429, 500, 503]), label="http_status")
            post.fail_attempt(n, now, "HTTP 500", http_status=http_status, retry_at=retry_at, max_attempts=max_attempts)
        elif name == "mark_outcome_unknown":
            post.mark_outcome_unknown(n, now, "timeout")
        elif name == "reconcile":
            published = data.draw(st.booleans(), label="published")
            post.reconcile(now, published, "109" if published else None, max_attempts=max_attempts)
        elif name == "fail":
            post.fail("account_disconnected", "The account was disconnected.")
        elif name == "cancel":
            post.cancel()
        elif name == "retry":
            post.retry(now)
        else:
            post.delete()
        events = post.collect_events()
        assert events
        self.row = fold(events, self.row)


PostRowFollowsThePost.TestCase.settings = settings(max_examples=200, stateful_step_count=40)
test_post_row_follows_the_post = PostRowFollowsThePost.TestCase
