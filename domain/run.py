"""Run: the batch of posts applied from one schedule envelope, and how far its posts have got.

The run hears of its posts' statuses (`record_outcome`) and keeps one phase per post: pending
(draft, scheduled), active (publishing, retry_pending, unknown) or the post's terminal status. Its
own status follows from those phases: processing from the first post that starts, completed when
every post is published (or deleted since), partial_failed when every post is terminal and some
failed or were canceled. A retried post reopens a finished run.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from datetime import datetime, timedelta
from typing import Literal
from uuid import NAMESPACE_URL, UUID, uuid5

from domain.base import WorkspaceAggregate
from domain.errors import IdempotencyKeyReused, InvalidState, ScheduleInvalid
from domain.post import utc

Status = Literal["draft", "scheduled", "processing", "completed", "partial_failed"]
SourceModel = Literal["posts_v1", "campaigns_v2"]

SUCCEEDED: frozenset[str] = frozenset({"published", "deleted"})
UNSUCCESSFUL: frozenset[str] = frozenset({"failed", "canceled"})
_PHASES: dict[str, str] = {
    "draft": "pending",
    "scheduled": "pending",
    "publishing": "active",
    "retry_pending": "active",
    "unknown": "active",
    **{status: status for status in SUCCEEDED | UNSUCCESSFUL},
}

_RUN_NAMESPACE = uuid5(NAMESPACE_URL, "pressroom:run")


def phase_of(post_status: str) -> str:
    try:
        return _PHASES[post_status]
    except KeyError:
        raise InvalidState(f"{post_status!r} is not a post status.") from None


class Run(WorkspaceAggregate):
    FAMILY = "posts"
    EVENT_PREFIX = "run"

    class Created(WorkspaceAggregate.Created):
        mode: str
        post_ids: tuple[UUID, ...]
        start_at: datetime
        source_model: str
        timezone: str
        idempotency_key: str | None
        fingerprint: str | None

    def __init__(
        self,
        workspace_id: UUID,
        mode: str,
        post_ids: Iterable[UUID],
        start_at: datetime,
        source_model: str,
        timezone: str,
        idempotency_key: str | None,
        fingerprint: str | None,
    ) -> None:
        self.workspace_id = workspace_id
        self.mode = mode
        self.post_ids = tuple(post_ids)
        self.start_at = start_at
        self.source_model = source_model
        self.timezone = timezone
        self.idempotency_key = idempotency_key
        self.fingerprint = fingerprint
        self.status: Status = "draft" if mode == "draft" else "scheduled"
        self.phases: dict[UUID, str] = {}

    @staticmethod
    def id_for(workspace_id: UUID, idempotency_key: str) -> UUID:
        """The run an idempotency key names: two applies with one key race to create the same run."""
        return uuid5(_RUN_NAMESPACE, f"{workspace_id}:{idempotency_key}")

    @classmethod
    def create(
        cls,
        run_id: UUID,
        workspace_id: UUID,
        *,
        mode: str,
        post_ids: Iterable[UUID],
        start_at: datetime,
        source_model: str,
        timezone: str,
        idempotency_key: str | None = None,
        fingerprint: str | None = None,
    ) -> Run:
        """A run of `post_ids`, the first of them due at `start_at`."""
        post_ids = tuple(post_ids)
        if mode not in ("draft", "scheduled"):
            raise ScheduleInvalid([{"path": "mode", "message": f"Unknown mode {mode!r}; use draft or scheduled."}])
        if not post_ids or len(set(post_ids)) != len(post_ids):
            raise ScheduleInvalid([{"path": "posts", "message": "A run has at least one post, each once."}])
        return cls._create(
            cls.Created,
            id=run_id,
            workspace_id=workspace_id,
            mode=mode,
            post_ids=post_ids,
            start_at=utc(start_at),
            source_model=source_model,
            timezone=timezone,
            idempotency_key=idempotency_key,
            fingerprint=fingerprint,
        )

    def replay(self, fingerprint: str | None) -> UUID:
        """This run, when the repeated apply carried the same envelope."""
        if fingerprint != self.fingerprint:
            raise IdempotencyKeyReused("This idempotencyKey was used with a different schedule.")
        return self.id

    @property
    def total_posts(self) -> int:
        return len(self.post_ids)

    @property
    def counts(self) -> dict[str, int]:
        """Posts per phase: pending, active, published, deleted, failed, canceled."""
        counted = Counter(self.phases.get(post_id, "pending") for post_id in self.post_ids)
        return dict(counted)

    @property
    def is_finished(self) -> bool:
        return self.status in ("completed", "partial_failed")

    class Published(WorkspaceAggregate.Event):
        """A draft run was scheduled, its posts shifted so that the first goes out at `start_at`."""

        start_at: datetime

        def apply(self, run: Run) -> None:
            run.mode = "scheduled"
            run.start_at = self.start_at
            run.status = run.derived_status()

    def publish(self, start_at: datetime | None = None) -> timedelta:
        """Schedules a draft run; returns how far each of its posts moves (nothing without `start_at`)."""
        if self.status != "draft":
            raise InvalidState(f"Run {self.id} is {self.status}; only a draft run can be published.")
        new_start = self.start_at if start_at is None else utc(start_at)
        shift = new_start - self.start_at
        self._record(self.Published, start_at=new_start)
        return shift

    # Outcomes

    class PostOutcomeRecorded(WorkspaceAggregate.Event):
        post_id: UUID
        phase: str

        def apply(self, run: Run) -> None:
            run.phases[self.post_id] = self.phase

    class ProcessingStarted(WorkspaceAggregate.Event):
        def apply(self, run: Run) -> None:
            run.status = "processing"

    class Completed(WorkspaceAggregate.Event):
        summary: dict[str, int]

        def apply(self, run: Run) -> None:
            run.status = "completed"

    class PartiallyFailed(WorkspaceAggregate.Event):
        summary: dict[str, int]

        def apply(self, run: Run) -> None:
            run.status = "partial_failed"

    class Reopened(WorkspaceAggregate.Event):
        """A finished run has a post on its way again (a failed post retried)."""

        def apply(self, run: Run) -> None:
            run.status = "processing"

    def record_outcome(self, post_id: UUID, post_status: str) -> bool:
        """Takes note of a post's new status; returns whether the run changed."""
        if post_id not in self.post_ids:
            raise InvalidState(f"Post {post_id} is not part of run {self.id}.")
        phase = phase_of(post_status)
        if self.phases.get(post_id, "pending") == phase:
            return False
        self._record(self.PostOutcomeRecorded, post_id=post_id, phase=phase)
        status = self.derived_status()
        if status == self.status:
            return True
        if status == "completed":
            self._record(self.Completed, summary=self.counts)
        elif status == "partial_failed":
            self._record(self.PartiallyFailed, summary=self.counts)
        elif self.is_finished:
            self._record(self.Reopened)
        elif status == "processing":
            self._record(self.ProcessingStarted)
        return True

    def derived_status(self) -> Status:
        return status_of(self.mode, self.status, [self.phases.get(post_id, "pending") for post_id in self.post_ids])


def status_of(mode: str, status: str, phases: list[str]) -> Status:
    """What a run's status is given its posts' phases; once processing, a run stays processing until it finishes."""
    if all(phase in SUCCEEDED for phase in phases):
        return "completed"
    if all(phase in SUCCEEDED | UNSUCCESSFUL for phase in phases):
        return "partial_failed"
    if mode == "draft":
        return "draft"
    if status in ("processing", "completed", "partial_failed") or any(phase not in ("pending", "canceled") for phase in phases):
        return "processing"
    return "scheduled"
