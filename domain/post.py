"""Post: one message to one account, from draft or scheduled to published, failed or canceled.

A post is published at most once. The scheduler asks for it when it is due (`PublishRequested`: of
several scheduler replicas only one wins, by version check or by the status it leaves behind); the
worker records `AttemptStarted` before it calls the provider, so an attempt that started and never
finished (the worker died, the request timed out after it was sent) is never sent again: it makes
the post `unknown`, which only reconciling with the provider settles. A reconcile that finds the
post was not published sends it again at once (`retry_pending`, due now) within the same attempt
budget; one that finds it published settles it as published.

Failed attempts are retried at the time the worker proposes (backoff, Retry-After) until the
attempts of this round reach the budget; then, or when the error is not retryable, the post fails.
A manual retry starts a new round.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Literal, NamedTuple, cast
from uuid import NAMESPACE_URL, UUID, uuid5

from domain.base import WorkspaceAggregate
from domain.errors import AttemptInFlight, InvalidState, InvalidTime, NotCurrentAttempt, PostNotDue, ScheduleInvalid

Status = Literal["draft", "scheduled", "publishing", "published", "retry_pending", "failed", "canceled", "unknown", "deleted"]
Mode = Literal["draft", "scheduled"]
Outcome = Literal["published", "failed", "unknown"]

MAX_ATTEMPTS = 5
DUE: frozenset[str] = frozenset({"scheduled", "retry_pending"})
CANCELABLE: frozenset[str] = frozenset({"draft", "scheduled", "retry_pending"})
# Posts that will not move again unless a person acts (retry, delete).
TERMINAL: frozenset[str] = frozenset({"published", "failed", "canceled", "deleted"})

_POST_NAMESPACE = uuid5(NAMESPACE_URL, "pressroom:post")


class Attempt(NamedTuple):
    n: int
    started_at: datetime
    finished_at: datetime | None = None
    outcome: Outcome | None = None
    error: str | None = None
    http_status: int | None = None


def utc(moment: datetime) -> datetime:
    """`moment` in UTC; a time without an offset is refused rather than guessed."""
    if moment.utcoffset() is None:
        raise InvalidTime(f"{moment.isoformat()} has no UTC offset.")
    return moment.astimezone(UTC)


class Post(WorkspaceAggregate):
    FAMILY = "posts"
    EVENT_PREFIX = "post"

    class Created(WorkspaceAggregate.Created):
        run_id: UUID
        account_id: UUID
        provider: str
        handle: str
        text: str
        assets: tuple[str, ...]
        publish_at: datetime
        local_time: str | None
        timezone: str
        name: str | None
        campaign_id: UUID | None
        status: str

    def __init__(
        self,
        workspace_id: UUID,
        run_id: UUID,
        account_id: UUID,
        provider: str,
        handle: str,
        text: str,
        assets: Iterable[str],
        publish_at: datetime,
        local_time: str | None,
        timezone: str,
        name: str | None,
        campaign_id: UUID | None,
        status: str,
    ) -> None:
        self.workspace_id = workspace_id
        self.run_id = run_id
        self.account_id = account_id
        self.provider = provider
        self.handle = handle
        self.text = text
        self.assets = tuple(assets)
        self.publish_at = publish_at
        self.local_time = local_time
        self.timezone = timezone
        self.name = name
        self.campaign_id = campaign_id
        self.status = cast(Status, status)
        self.attempts: tuple[Attempt, ...] = ()
        # Attempts before this index belong to earlier rounds (before a manual retry).
        self.round_start = 0
        self.next_attempt_at: datetime | None = None
        self.delayed_reason: str | None = None
        self.publish_requested_at: datetime | None = None
        self.provider_post_id: str | None = None
        self.provider_url: str | None = None
        self.published_at: datetime | None = None
        self.error: dict[str, str] | None = None

    @classmethod
    def create(
        cls,
        post_id: UUID,
        workspace_id: UUID,
        *,
        run_id: UUID,
        account_id: UUID,
        provider: str,
        handle: str,
        text: str,
        publish_at: datetime,
        timezone: str,
        mode: str = "scheduled",
        assets: Iterable[str] = (),
        local_time: str | None = None,
        name: str | None = None,
        campaign_id: UUID | None = None,
    ) -> Post:
        """A draft or scheduled post; `local_time` and `timezone` keep the time as the client gave it."""
        if mode not in ("draft", "scheduled"):
            raise ScheduleInvalid([{"path": "mode", "message": f"Unknown mode {mode!r}; use draft or scheduled."}])
        return cls._create(
            cls.Created,
            id=post_id,
            workspace_id=workspace_id,
            run_id=run_id,
            account_id=account_id,
            provider=provider,
            handle=handle,
            text=text,
            assets=tuple(assets),
            publish_at=utc(publish_at),
            local_time=local_time,
            timezone=timezone,
            name=name,
            campaign_id=campaign_id,
            status=mode,
        )

    @staticmethod
    def id_for(run_id: UUID, index: int) -> UUID:
        """The id of a run's `index`-th post: applying the same envelope twice makes the same posts."""
        return uuid5(_POST_NAMESPACE, f"{run_id}:{index}")

    @property
    def idempotency_key(self) -> str:
        """Sent to providers that dedupe (Mastodon's Idempotency-Key): the same for every attempt of this post."""
        return f"pressroom-post-{self.id}"

    @property
    def due_at(self) -> datetime:
        """When the post goes out: the next attempt's time (a retry, a delay) or its publish time."""
        return self.next_attempt_at or self.publish_at

    def is_due(self, now: datetime) -> bool:
        return self.status in DUE and self.due_at <= now

    @property
    def in_flight(self) -> Attempt | None:
        """The attempt that started and has not finished: its request may have reached the provider."""
        last = self.attempts[-1] if self.attempts else None
        return last if last is not None and last.finished_at is None else None

    @property
    def is_terminal(self) -> bool:
        return self.status in TERMINAL

    @property
    def attempts_this_round(self) -> int:
        return len(self.attempts) - self.round_start

    def _finish(self, n: int, at: datetime, outcome: Outcome, error: str | None = None, http_status: int | None = None) -> None:
        attempts = list(self.attempts)
        index = next(i for i, attempt in enumerate(attempts) if attempt.n == n)
        attempts[index] = attempts[index]._replace(finished_at=at, outcome=outcome, error=error, http_status=http_status)
        self.attempts = tuple(attempts)

    # Scheduling

    class Scheduled(WorkspaceAggregate.Event):
        publish_at: datetime
        local_time: str | None
        timezone: str

        def apply(self, post: Post) -> None:
            post.status = "scheduled"
            post.publish_at = self.publish_at
            post.local_time = self.local_time
            post.timezone = self.timezone

    def schedule(self, publish_at: datetime, timezone: str, local_time: str | None = None) -> None:
        """A draft is scheduled to go out at `publish_at` (a draft run published, shifted to its start)."""
        if self.status != "draft":
            raise InvalidState(f"Post {self.id} is {self.status}; only a draft can be scheduled.")
        self._record(self.Scheduled, publish_at=utc(publish_at), local_time=local_time, timezone=timezone)

    class PublishRequested(WorkspaceAggregate.Event):
        due_at: datetime
        at: datetime

        def apply(self, post: Post) -> None:
            post.status = "publishing"
            post.publish_requested_at = self.at

    def request_publish(self, now: datetime) -> None:
        """The scheduler hands a due post to the publishing worker."""
        if self.status not in DUE:
            raise InvalidState(f"Post {self.id} is {self.status}; only a scheduled or retry_pending post is published.")
        if self.due_at > now:
            raise PostNotDue(f"Post {self.id} is due at {self.due_at.isoformat()}.")
        self._record(self.PublishRequested, due_at=self.due_at, at=now)

    class Delayed(WorkspaceAggregate.Event):
        until: datetime
        reason: str

        def apply(self, post: Post) -> None:
            post.status = "scheduled"
            post.next_attempt_at = self.until
            post.delayed_reason = self.reason

    def delay(self, until: datetime, reason: str) -> None:
        """Puts a post back until `until` without trying it (the account's rate limit or daily cap)."""
        self._check_publishing_idle("delayed")
        self._record(self.Delayed, until=utc(until), reason=reason)

    def _check_publishing_idle(self, doing: str) -> None:
        if self.in_flight is not None:
            raise AttemptInFlight(f"Attempt {self.in_flight.n} of post {self.id} started and never finished; it cannot be {doing}.")
        if self.status != "publishing":
            raise InvalidState(f"Post {self.id} is {self.status}; it is not being published.")

    # Attempts

    class AttemptStarted(WorkspaceAggregate.Event):
        n: int
        at: datetime

        def apply(self, post: Post) -> None:
            post.attempts = (*post.attempts, Attempt(self.n, self.at))

    def start_attempt(self, at: datetime) -> int:
        """Records the attempt before the provider is called; returns its number. A redelivered publish
        command finds the attempt in flight and is refused (the post must become unknown, not be resent)."""
        self._check_publishing_idle("started again")
        n = len(self.attempts) + 1
        self._record(self.AttemptStarted, n=n, at=at)
        return n

    def _check_in_flight(self, n: int) -> None:
        in_flight = self.in_flight
        if self.status != "publishing" or in_flight is None or in_flight.n != n:
            raise NotCurrentAttempt(f"Attempt {n} of post {self.id} is not in flight ({self.status}).")

    class Published(WorkspaceAggregate.Event):
        n: int
        provider_post_id: str
        url: str | None
        at: datetime

        def apply(self, post: Post) -> None:
            post._finish(self.n, self.at, "published")
            _settle_published(post, self.provider_post_id, self.url, self.at)

    def complete_attempt(self, n: int, provider_post_id: str, url: str | None, at: datetime) -> None:
        """The provider accepted attempt `n` and named the post it made."""
        if self.status == "unknown" and self.attempts and self.attempts[-1].n == n:
            # The answer came after the attempt was given up on as unknown: it settles that outcome.
            self.reconcile(at, published=True, provider_post_id=provider_post_id, url=url)
            return
        self._check_in_flight(n)
        self._record(self.Published, n=n, provider_post_id=provider_post_id, url=url, at=at)

    class AttemptFailed(WorkspaceAggregate.Event):
        """An attempt the provider refused or that never reached it; `retry_at` is None when the post will not be retried."""

        n: int
        error: str
        http_status: int | None
        retry_at: datetime | None
        at: datetime

        def apply(self, post: Post) -> None:
            post._finish(self.n, self.at, "failed", self.error, self.http_status)
            if self.retry_at is not None:
                post.status = "retry_pending"
                post.next_attempt_at = self.retry_at

    def fail_attempt(
        self,
        n: int,
        at: datetime,
        error: str,
        *,
        http_status: int | None = None,
        retry_at: datetime | None = None,
        max_attempts: int = MAX_ATTEMPTS,
    ) -> None:
        """Attempt `n` failed without publishing. The worker proposes `retry_at` for a retryable error (None when
        it is not); the post decides: retry_pending until then, or failed once this round's attempts are spent."""
        self._check_in_flight(n)
        exhausted = self.attempts_this_round >= max_attempts
        retry = None if exhausted or retry_at is None else utc(retry_at)
        self._record(self.AttemptFailed, n=n, error=error, http_status=http_status, retry_at=retry, at=at)
        if retry is None:
            reason = "attempts_exhausted" if retry_at is not None else "rejected"
            self._record(self.Failed, reason=reason, message=error)

    class OutcomeUnknown(WorkspaceAggregate.Event):
        n: int
        error: str
        at: datetime

        def apply(self, post: Post) -> None:
            post._finish(self.n, self.at, "unknown", self.error)
            post.status = "unknown"
            post.error = {"code": "outcome_unknown", "message": self.error}

    def mark_outcome_unknown(self, n: int, at: datetime, error: str) -> None:
        """Attempt `n` may have reached the provider and no answer came (a timeout after sending, a worker that
        died mid-attempt). It is never retried blindly: only reconcile settles it."""
        self._check_in_flight(n)
        self._record(self.OutcomeUnknown, n=n, error=error, at=at)

    class Reconciled(WorkspaceAggregate.Event):
        published: bool
        provider_post_id: str | None
        url: str | None
        at: datetime

        def apply(self, post: Post) -> None:
            post.error = None
            if self.published:
                _settle_published(post, self.provider_post_id, self.url, self.at)
            else:
                post.status = "retry_pending"
                post.next_attempt_at = self.at

    def reconcile(
        self,
        at: datetime,
        published: bool,
        provider_post_id: str | None = None,
        url: str | None = None,
        *,
        max_attempts: int = MAX_ATTEMPTS,
    ) -> None:
        """Settles an unknown post with what the provider says: published, or not (then it is sent again now,
        unless this round's attempts are spent)."""
        if self.status != "unknown":
            raise InvalidState(f"Post {self.id} is {self.status}; only an unknown post is reconciled.")
        self._record(self.Reconciled, published=published, provider_post_id=provider_post_id, url=url, at=at)
        if not published and self.attempts_this_round >= max_attempts:
            self._record(self.Failed, reason="attempts_exhausted", message="The provider did not publish the post.")

    # Ending and starting over

    class Failed(WorkspaceAggregate.Event):
        reason: str
        message: str

        def apply(self, post: Post) -> None:
            post.status = "failed"
            post.next_attempt_at = None
            post.error = {"code": self.reason, "message": self.message}

    def fail(self, reason: str, message: str) -> None:
        """Fails a post that is not out yet and has no attempt in flight (its account was disconnected)."""
        if self.status not in CANCELABLE:
            self._check_publishing_idle("failed")
        self._record(self.Failed, reason=reason, message=message)

    class Canceled(WorkspaceAggregate.Event):
        def apply(self, post: Post) -> None:
            post.status = "canceled"
            post.next_attempt_at = None

    def cancel(self) -> None:
        if self.status not in CANCELABLE:
            raise InvalidState(f"Post {self.id} is {self.status}; only a draft, scheduled or retry_pending post can be canceled.")
        self._record(self.Canceled)

    class RetryRequested(WorkspaceAggregate.Event):
        at: datetime

        def apply(self, post: Post) -> None:
            post.status = "scheduled"
            post.next_attempt_at = self.at
            post.error = None
            post.round_start = len(post.attempts)

    def retry(self, now: datetime) -> None:
        """A failed post is scheduled again, due now, with a fresh budget of attempts."""
        if self.status != "failed":
            raise InvalidState(f"Post {self.id} is {self.status}; only a failed post can be retried.")
        self._record(self.RetryRequested, at=now)

    class Deleted(WorkspaceAggregate.Event):
        def apply(self, post: Post) -> None:
            post.status = "deleted"

    def delete(self) -> None:
        """The published post was deleted at the provider."""
        if self.status != "published":
            raise InvalidState(f"Post {self.id} is {self.status}; only a published post can be deleted.")
        self._record(self.Deleted)


def _settle_published(post: Post, provider_post_id: str | None, url: str | None, at: datetime) -> None:
    post.status = "published"
    post.provider_post_id = provider_post_id
    post.provider_url = url
    post.published_at = at
    post.next_attempt_at = None
    post.error = None
