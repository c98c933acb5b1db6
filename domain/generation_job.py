"""GenerationJob: one request for AI output (ad copy for now), from queued to a terminal status.

A job is worked on in attempts. An attempt holds a lease; once it runs out another worker may
start the next attempt, and from then on only that attempt can record an outcome, so a job
ends exactly once.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any, Literal, cast
from uuid import UUID

from domain.base import WorkspaceAggregate
from domain.credit_account import Charge, Refund
from domain.errors import InvalidState
from domain.pricing import JobType

Status = Literal["queued", "processing", "completed", "partial", "failed", "canceled", "expired"]
TERMINAL: frozenset[str] = frozenset({"completed", "partial", "failed", "canceled", "expired"})


class GenerationJob(WorkspaceAggregate):
    FAMILY = "jobs"
    EVENT_PREFIX = "job"

    class Requested(WorkspaceAggregate.Created):
        job_type: str
        input: dict[str, Any]
        cost: int
        fingerprint: str
        campaign_id: UUID | None
        outputs: int
        charged_from_allowance: int
        charged_from_topup: int
        charged_in_period: int

        # v1 did not say which balance paid: the first release charged the allowance first, in period 0.
        class_version = 2

        @staticmethod
        def upcast_v1_v2(state: dict[str, Any]) -> None:
            state.setdefault("charged_from_allowance", state["cost"])
            state.setdefault("charged_from_topup", 0)
            state.setdefault("charged_in_period", 0)

    def __init__(
        self,
        workspace_id: UUID,
        job_type: str,
        input: dict[str, Any],  # noqa: A002 - the API's name for it
        cost: int,
        fingerprint: str,
        campaign_id: UUID | None,
        outputs: int,
        charged_from_allowance: int,
        charged_from_topup: int,
        charged_in_period: int,
    ) -> None:
        self.workspace_id = workspace_id
        self.job_type = cast(JobType, job_type)
        self.input = input
        self.cost = cost
        self.fingerprint = fingerprint
        self.campaign_id = campaign_id
        self.outputs = outputs
        self.status: Status = "queued"
        self.attempts = 0
        self.lease_until: datetime | None = None
        self.started_at: datetime | None = None
        self.completed_at: datetime | None = None
        self.variants: list[dict[str, Any]] = []
        self.assets: list[dict[str, Any]] = []
        self.produced_indexes: set[int] = set()
        self.last_output_at: datetime | None = None
        self.error: dict[str, str] | None = None
        self.charge = Charge(cost, charged_from_allowance, charged_from_topup, period=charged_in_period)

    @classmethod
    def request(
        cls,
        job_id: UUID,
        workspace_id: UUID,
        job_type: str,
        input: dict[str, Any],  # noqa: A002
        charge: Charge,
        fingerprint: str,
        campaign_id: UUID | None,
        outputs: int,
    ) -> GenerationJob:
        """A job that was charged `charge` when it was requested."""
        return cls._create(
            cls.Requested,
            id=job_id,
            workspace_id=workspace_id,
            job_type=job_type,
            input=input,
            cost=charge.amount,
            fingerprint=fingerprint,
            campaign_id=campaign_id,
            outputs=outputs,
            charged_from_allowance=charge.from_allowance,
            charged_from_topup=charge.from_topup,
            charged_in_period=charge.period,
        )

    @property
    def is_terminal(self) -> bool:
        return self.status in TERMINAL

    @property
    def credits_refunded(self) -> int:
        return self.charge.amount - self.charge.refundable

    @property
    def credits_consumed(self) -> int:
        return self.cost - self.credits_refunded if self.is_terminal else 0

    def can_start(self, now: datetime) -> bool:
        return self.status == "queued" or (self.status == "processing" and self.lease_until is not None and self.lease_until <= now)

    class Started(WorkspaceAggregate.Event):
        attempt: int
        worker: str
        lease_until: datetime

        def apply(self, job: GenerationJob) -> None:
            job.status = "processing"
            job.attempts = self.attempt
            job.lease_until = self.lease_until
            job.started_at = job.started_at or self.timestamp

    def start(self, worker: str, now: datetime, lease_until: datetime) -> int:
        """Begins the next attempt; returns its number."""
        if not self.can_start(now):
            raise JobNotStartable(f"Job {self.id} is {self.status} and cannot start now.")
        self._record(self.Started, attempt=self.attempts + 1, worker=worker, lease_until=lease_until)
        return self.attempts

    def is_current(self, attempt: int) -> bool:
        """Whether `attempt` is the one running now: only it may record outputs and outcomes."""
        return self.status == "processing" and attempt == self.attempts

    def _check_current(self, attempt: int) -> None:
        if not self.is_current(attempt):
            raise StaleAttempt(f"Attempt {attempt} of job {self.id} is no longer current ({self.status}).")

    @property
    def produced(self) -> int:
        """Outputs made so far: the copy job's variants come all at once, media one by one."""
        return len(self.assets) if self.job_type != "copy" else (self.outputs if self.status == "completed" else 0)

    def _unconsumed_refund(self) -> Refund:
        """What goes back when the job ends now: the cost of every output not produced."""
        consumed = self.cost * self.produced // self.outputs
        return self.charge.refund(self.charge.refundable - consumed)

    class OutputProduced(WorkspaceAggregate.Event):
        attempt: int
        index: int
        asset: dict[str, Any]
        lease_until: datetime

        def apply(self, job: GenerationJob) -> None:
            job.assets.append(self.asset)
            job.produced_indexes.add(self.index)
            job.lease_until = self.lease_until
            job.last_output_at = self.timestamp

    def produce(self, attempt: int, index: int, asset: dict[str, Any], lease_until: datetime) -> None:
        """Records one output (an image or the video) and extends the attempt's lease."""
        self._check_current(attempt)
        if index in self.produced_indexes or not 0 <= index < self.outputs:
            raise InvalidState(f"Output {index} of job {self.id} was already produced or does not exist.")
        self._record(self.OutputProduced, attempt=attempt, index=index, asset=asset, lease_until=lease_until)

    class Ended(WorkspaceAggregate.Event):
        """A terminal event: the job is over, and what it did not produce is refunded."""

        status: str
        refunded: int
        refund_to_allowance: int
        refund_to_topup: int

        def apply(self, job: GenerationJob) -> None:
            job.status = cast(Status, self.status)
            job.completed_at = self.timestamp
            job.lease_until = None
            job.charge = job.charge.after(Refund(self.refund_to_allowance, self.refund_to_topup, job.charge.period))

    def _end(self, event_class: type[Ended], status: Status, refund: Refund, **fields: Any) -> Refund:
        self._record(
            event_class,
            status=status,
            refunded=refund.amount,
            refund_to_allowance=refund.to_allowance,
            refund_to_topup=refund.to_topup,
            **fields,
        )
        return refund

    class Completed(Ended):
        attempt: int
        variants: list[dict[str, Any]]

        class_version = 2

        @staticmethod
        def upcast_v1_v2(state: dict[str, Any]) -> None:
            state.update(status="completed", refunded=0, refund_to_allowance=0, refund_to_topup=0)

        def apply(self, job: GenerationJob) -> None:
            super().apply(job)
            job.variants = self.variants

    def complete(self, attempt: int, variants: list[dict[str, Any]]) -> None:
        """Ends a copy job with its variants."""
        self._check_current(attempt)
        self._end(self.Completed, "completed", Refund(0, 0), attempt=attempt, variants=variants)

    class PartiallyCompleted(Ended):
        attempt: int
        code: str
        message: str

        def apply(self, job: GenerationJob) -> None:
            super().apply(job)
            job.error = {"code": self.code, "message": self.message}

    class Failed(Ended):
        attempt: int
        code: str
        message: str

        # v1 refunded everything and did not say to which balance: the allowance, as charged.
        class_version = 2

        @staticmethod
        def upcast_v1_v2(state: dict[str, Any]) -> None:
            state.update(status="failed", refund_to_allowance=state["refunded"], refund_to_topup=0)

        def apply(self, job: GenerationJob) -> None:
            super().apply(job)
            job.error = {"code": self.code, "message": self.message}

    def finish(self, attempt: int, failure: tuple[str, str] | None = None) -> Refund:
        """Ends a media job after every output was tried: completed, partial (the missing outputs
        refunded) or failed (all refunded). Returns the refund the account owes."""
        self._check_current(attempt)
        if self.produced == self.outputs:
            return self._end(self.Completed, "completed", Refund(0, 0), attempt=attempt, variants=[])
        code, message = failure or ("output_failed", "Some outputs could not be produced.")
        return self._end_short(attempt, code, message)

    def fail(self, attempt: int | None, code: str, message: str) -> Refund:
        """Ends the job failed; what it did not produce goes back. Returns the refund the account owes."""
        if attempt is None:
            if self.is_terminal:
                raise InvalidState(f"Job {self.id} is already {self.status}.")
        else:
            self._check_current(attempt)
        return self._end_short(self.attempts, code, message)

    def _end_short(self, attempt: int, code: str, message: str) -> Refund:
        """Partial when some outputs were made, failed when none; either way the rest is refunded."""
        ending, status = (self.PartiallyCompleted, "partial") if self.produced else (self.Failed, "failed")
        return self._end(ending, cast(Status, status), self._unconsumed_refund(), attempt=attempt, code=code, message=message)

    class Canceled(Ended):
        pass

    def cancel(self) -> Refund:
        """Stops a queued or processing job; a worker notices at its next output. Unproduced outputs are refunded."""
        if self.is_terminal:
            raise InvalidState(f"Job {self.id} is already {self.status}; only queued or processing jobs can be canceled.")
        return self._end(self.Canceled, "canceled", self._unconsumed_refund())

    class Expired(Ended):
        pass

    @property
    def last_progress_at(self) -> datetime:
        """When the job last moved forward: requested, or its latest output. Starting an attempt is not progress."""
        return self.last_output_at or self.created_on

    def is_overdue(self, now: datetime, deadline: timedelta) -> bool:
        return not self.is_terminal and self.last_progress_at + deadline <= now

    def expire(self, now: datetime, deadline: timedelta) -> Refund:
        """Ends a job that made no progress for `deadline`; unproduced outputs are refunded."""
        if not self.is_overdue(now, deadline):
            raise InvalidState(f"Job {self.id} is not overdue.")
        return self._end(self.Expired, "expired", self._unconsumed_refund())

    class Requeued(WorkspaceAggregate.Event):
        reason: str

        def apply(self, job: GenerationJob) -> None:
            job.status = "queued"
            job.lease_until = None

    def requeue(self, reason: str) -> None:
        if self.is_terminal:
            raise InvalidState(f"Job {self.id} is already {self.status}.")
        self._record(self.Requeued, reason=reason)


class JobNotStartable(InvalidState):
    pass


class StaleAttempt(InvalidState):
    pass
