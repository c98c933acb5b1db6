"""The Pressroom application: every use case as a method that loads, decides and saves atomically."""

from __future__ import annotations

import hashlib
import random
import secrets
import time
from collections.abc import Callable, Iterable
from datetime import datetime, timedelta
from functools import wraps
from typing import Any, ParamSpec, TypeVar
from uuid import UUID, uuid4

import msgspec
from eventsourcing.application import AggregateNotFoundError, Application
from eventsourcing.domain import Aggregate
from eventsourcing.persistence import IntegrityError, Mapper

from application.metadata import MetadataMapper
from application.ports import Clock
from domain.api_key import SECRET_PREFIX, ApiKey
from domain.base import WorkspaceAggregate
from domain.credit_account import CreditAccount
from domain.errors import DomainError, NotFound
from domain.generation_job import GenerationJob, JobNotStartable, StaleAttempt
from domain.idempotency_key import IdempotencyKey
from domain.pricing import Pricing
from domain.workspace import Workspace, check_name, check_plan

P = ParamSpec("P")
R = TypeVar("R")
A = TypeVar("A", bound=WorkspaceAggregate)

MAX_CONFLICT_RETRIES = 8


class Conflict(DomainError):
    code = "conflict"


class Unauthenticated(DomainError):
    code = "unauthenticated"


def retry_on_conflict(command: Callable[P, R]) -> Callable[P, R]:
    """Runs the whole command again when a concurrent writer saved first, a bounded number of times."""

    @wraps(command)
    def run(*args: P.args, **kwargs: P.kwargs) -> R:
        for attempt in range(MAX_CONFLICT_RETRIES):
            try:
                return command(*args, **kwargs)
            except IntegrityError:
                # Jittered backoff, so writers racing for one aggregate spread out instead of colliding again.
                time.sleep(random.uniform(0, 0.002 * (attempt + 1)))
        raise Conflict("Too many concurrent changes to the same records; try again.")

    return run


class Principal(msgspec.Struct, frozen=True):
    workspace_id: UUID
    key_id: UUID


class NewKey(msgspec.Struct, frozen=True):
    key: ApiKey
    secret: str


class JobReceipt(msgspec.Struct, frozen=True):
    job: GenerationJob
    credits_remaining: int
    duplicate: bool


class Pressroom(Application[UUID]):
    name = "pressroom"

    def __init__(
        self,
        env: dict[str, str] | None = None,
        *,
        clock: Clock,
        pricing: Pricing | None = None,
        lease: timedelta = timedelta(seconds=120),
        max_attempts: int = 3,
    ) -> None:
        super().__init__(env)
        self.clock = clock
        self.pricing = pricing or Pricing()
        self.lease = lease
        self.max_attempts = max_attempts

    def construct_mapper(self) -> Mapper[UUID]:
        return MetadataMapper(transcoder=self.construct_transcoder())

    def _get(self, cls: type[A], aggregate_id: UUID, workspace_id: UUID | None = None) -> A:
        try:
            aggregate: Aggregate = self.repository.get(aggregate_id, projector_func=replay)
        except AggregateNotFoundError:
            raise NotFound(f"No {cls.__name__} {aggregate_id}.") from None
        if not isinstance(aggregate, cls) or (workspace_id is not None and aggregate.workspace_id != workspace_id):
            raise NotFound(f"No {cls.__name__} {aggregate_id}.")
        return aggregate

    def _find(self, cls: type[A], aggregate_id: UUID) -> A | None:
        try:
            return self._get(cls, aggregate_id)
        except NotFound:
            return None

    # Workspaces and keys

    def create_workspace(self, name: str, plan: str = "free", key_label: str = "default") -> tuple[Workspace, NewKey]:
        check_name(name)
        check_plan(plan)
        workspace_id = uuid4()
        now = self.clock.now()
        workspace = Workspace.open(workspace_id, name, plan)
        account = CreditAccount.open(workspace_id, plan, period_start=now)
        account.grant(
            "grant",
            self.pricing.monthly_credits(plan),
            reference=f"allowance:{now.isoformat()}",
            reason=f"{plan} plan monthly allowance",
        )
        new_key = self._new_key(workspace_id, key_label)
        self.save(workspace, account, new_key.key)
        return workspace, new_key

    def get_workspace(self, workspace_id: UUID) -> Workspace:
        return self._get(Workspace, workspace_id, workspace_id)

    def _new_key(self, workspace_id: UUID, label: str) -> NewKey:
        secret = SECRET_PREFIX + secrets.token_urlsafe(32)
        return NewKey(key=ApiKey.issue(workspace_id, secret, label), secret=secret)

    def issue_key(self, workspace_id: UUID, label: str) -> NewKey:
        self.get_workspace(workspace_id)
        new_key = self._new_key(workspace_id, label)
        self.save(new_key.key)
        return new_key

    @retry_on_conflict
    def revoke_key(self, principal: Principal, key_id: UUID) -> ApiKey:
        key = self._get(ApiKey, key_id, principal.workspace_id)
        key.revoke(revoked_by=principal.key_id)
        self.save(key)
        return key

    def authenticate(self, secret: str) -> tuple[Principal, ApiKey]:
        if not secret.startswith(SECRET_PREFIX):
            raise Unauthenticated("Send a workspace API key as 'Authorization: Bearer pr_live_…'.")
        key = self._find(ApiKey, ApiKey.id_for(secret))
        if key is None or key.is_revoked or not key.matches(secret):
            raise Unauthenticated("This API key is unknown or revoked.")
        return Principal(workspace_id=key.workspace_id, key_id=key.id), key

    # Credits

    def credit_account(self, workspace_id: UUID) -> CreditAccount:
        return self._get(CreditAccount, CreditAccount.id_for(workspace_id), workspace_id)

    @retry_on_conflict
    def top_up(self, workspace_id: UUID, amount: int, reference: str, reason: str | None = None) -> tuple[CreditAccount, bool]:
        """Adds top-up credits once per reference; returns the account and whether it was a duplicate."""
        account = self.credit_account(workspace_id)
        granted = account.grant("topup", amount, reference=reference, reason=reason)
        if granted:
            self.save(account)
        return account, not granted

    # Generation jobs

    @retry_on_conflict
    def request_job(
        self,
        workspace_id: UUID,
        job_type: str,
        job_input: dict[str, Any],
        outputs: int,
        campaign_id: UUID | None = None,
        idempotency_key: str | None = None,
    ) -> JobReceipt:
        now = self.clock.now()
        fingerprint = fingerprint_of(job_type, job_input, campaign_id)
        account = self.credit_account(workspace_id)
        key = None
        if idempotency_key is not None:
            key = self._find(IdempotencyKey, IdempotencyKey.id_for(workspace_id, idempotency_key))
            if key is not None and key.is_live(now):
                job = self._get(GenerationJob, key.replay(fingerprint), workspace_id)
                return JobReceipt(job=job, credits_remaining=account.balance, duplicate=True)
        job_id = uuid4()
        cost = self.pricing.cost_of(job_type, outputs)
        account.debit(job_id, cost, job_type)
        job = GenerationJob.request(job_id, workspace_id, job_type, job_input, cost, fingerprint, campaign_id, outputs)
        changed: list[Aggregate] = [account, job]
        if idempotency_key is not None:
            if key is None:
                key = IdempotencyKey.claim(workspace_id, idempotency_key, fingerprint, job_id, now)
            else:
                key.reclaim(fingerprint, job_id, now)
            changed.append(key)
        self.save(*changed)
        return JobReceipt(job=job, credits_remaining=account.balance, duplicate=False)

    def get_job(self, workspace_id: UUID, job_id: UUID) -> GenerationJob:
        return self._get(GenerationJob, job_id, workspace_id)

    @retry_on_conflict
    def start_job(self, job_id: UUID, worker: str) -> GenerationJob | None:
        """Claims the job for one attempt by this worker; None when it is not this worker's to run."""
        job = self._find(GenerationJob, job_id)
        now = self.clock.now()
        if job is None or not job.can_start(now):
            return None
        if job.attempts >= self.max_attempts:
            self._fail(job, None, "attempts_exhausted", f"The job did not finish in {job.attempts} attempts.")
            return None
        try:
            job.start(worker, now, now + self.lease)
        except JobNotStartable:
            return None
        self.save(job)
        return job

    @retry_on_conflict
    def complete_job(self, job_id: UUID, attempt: int, variants: list[dict[str, Any]]) -> bool:
        """Records the job's output; False when the attempt was superseded and the output is dropped."""
        job = self._get(GenerationJob, job_id)
        try:
            job.complete(attempt, variants)
        except StaleAttempt:
            return False
        self.save(job)
        return True

    @retry_on_conflict
    def fail_job(self, job_id: UUID, attempt: int, code: str, message: str, *, retryable: bool) -> bool:
        """Records a failed attempt: requeued while attempts remain and it may help, else failed and refunded."""
        job = self._get(GenerationJob, job_id)
        if job.status != "processing" or job.attempts != attempt:
            return False
        if retryable and job.attempts < self.max_attempts:
            job.requeue(f"{code}: {message}")
            self.save(job)
            return True
        try:
            self._fail(job, attempt, code, message)
        except StaleAttempt:
            return False
        return True

    def _fail(self, job: GenerationJob, attempt: int | None, code: str, message: str) -> None:
        account = self.credit_account(job.workspace_id)
        refund = job.fail(attempt, code, message)
        account.refund(job.id, refund, reason="failed")
        self.save(job, account)

    @retry_on_conflict
    def redrive_job(self, job_id: UUID, stale_before: datetime) -> bool:
        """Puts back a job nobody is working on: queued with no activity since `stale_before`, or past its lease."""
        job = self._find(GenerationJob, job_id)
        if job is None or job.is_terminal:
            return False
        now = self.clock.now()
        lease_over = job.status == "processing" and job.can_start(now)
        forgotten = job.status == "queued" and job.modified_on < stale_before
        if not (lease_over or forgotten):
            return False
        if job.attempts >= self.max_attempts:
            self._fail(job, None, "attempts_exhausted", f"The job did not finish in {job.attempts} attempts.")
        else:
            job.requeue("lease expired" if lease_over else "not picked up")
            self.save(job)
        return True


def replay(aggregate: Any, events: Iterable[Any]) -> Any:
    """The library's projector without its per-event runtime protocol check, which dominates load time."""
    for event in events:
        aggregate = event.mutate(aggregate)
    return aggregate


def fingerprint_of(job_type: str, job_input: dict[str, Any], campaign_id: UUID | None) -> str:
    canonical = msgspec.json.encode({"type": job_type, "input": job_input, "campaignId": campaign_id}, order="sorted")
    return hashlib.sha256(canonical).hexdigest()
