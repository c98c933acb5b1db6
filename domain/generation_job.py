"""GenerationJob: one request for AI output (ad copy for now), from queued to a terminal status.

A job is worked on in attempts. An attempt holds a lease; once it runs out another worker may
start the next attempt, and from then on only that attempt can record an outcome, so a job
ends exactly once.
"""

from __future__ import annotations

from datetime import datetime
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

    def _check_current(self, attempt: int) -> None:
        if self.status != "processing" or attempt != self.attempts:
            raise StaleAttempt(f"Attempt {attempt} of job {self.id} is no longer current ({self.status}).")

    class Completed(WorkspaceAggregate.Event):
        attempt: int
        variants: list[dict[str, Any]]

        def apply(self, job: GenerationJob) -> None:
            job.status = "completed"
            job.variants = self.variants
            job.completed_at = self.timestamp
            job.lease_until = None

    def complete(self, attempt: int, variants: list[dict[str, Any]]) -> None:
        self._check_current(attempt)
        self._record(self.Completed, attempt=attempt, variants=variants)

    class Failed(WorkspaceAggregate.Event):
        attempt: int
        code: str
        message: str
        refunded: int
        refund_to_allowance: int
        refund_to_topup: int

        def apply(self, job: GenerationJob) -> None:
            job.status = "failed"
            job.error = {"code": self.code, "message": self.message}
            job.completed_at = self.timestamp
            job.lease_until = None
            job.charge = job.charge.after(Refund(self.refund_to_allowance, self.refund_to_topup, job.charge.period))

    def fail(self, attempt: int | None, code: str, message: str) -> Refund:
        """Ends the job failed; all its credits go back. Returns the refund the account owes."""
        if attempt is None:
            if self.is_terminal:
                raise InvalidState(f"Job {self.id} is already {self.status}.")
        else:
            self._check_current(attempt)
        refund = self.charge.refund(self.charge.refundable)
        self._record(
            self.Failed,
            attempt=self.attempts,
            code=code,
            message=message,
            refunded=refund.amount,
            refund_to_allowance=refund.to_allowance,
            refund_to_topup=refund.to_topup,
        )
        return refund

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
