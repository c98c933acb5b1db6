"""Group commit for job requests: requests from concurrent callers are applied in order to in-memory
aggregates by one writer thread and saved together in one transaction, so they share one wait for the
events table's lock instead of queueing on it one by one.

The writer keeps the credit accounts it wrote in memory between batches, and brings every one a batch
needs up to date with one query for the events stored after it (by anyone: other commands, other
processes) before applying the batch; the event store's version check catches whatever lands between
that query and the save, and any failure drops the batch's accounts from memory.

While no other writer has been seen changing an account for a second (the usual case when each workspace's
requests reach one process), the writer skips that query and trusts the accounts in memory: a save proves
them current all the same, since the version check refuses an account that another writer moved on. A
request refused on a trusted account has no save to prove it, so the query is then made after the batch,
from the versions it started from: if it finds nothing the refusal stands, and if it finds another
writer's events the batch is applied again to the accounts as the log has them. A batch that names an
idempotency key reads its accounts with its keys, in the one query it makes anyway."""

from __future__ import annotations

import contextlib
import random
import time
from collections import OrderedDict, deque
from collections.abc import Iterable, Sequence
from concurrent.futures import Future
from dataclasses import dataclass, field
from typing import Any
from uuid import UUID

from eventsourcing.domain import Aggregate
from eventsourcing.persistence import RecordConflictError

from application.metadata import META_FIELD, current_metadata, metadata
from application.pressroom import JobReceipt, Pressroom, charge_job, fingerprint_of, replay
from application.single_writer import SingleWriter
from domain.credit_account import CreditAccount
from domain.errors import DomainError
from domain.generation_job import GenerationJob
from domain.idempotency_key import IdempotencyKey

# Each request writes 2–3 events: 64 requests stay far below the ~1,000-event saves that hung psycopg's pipeline.
DEFAULT_MAX_BATCH = 64
DEFAULT_MAX_QUEUE = 2048
# A quarter of the queue: one workspace flooding the writer is answered 503 while the others still get in.
DEFAULT_MAX_QUEUE_PER_WORKSPACE = DEFAULT_MAX_QUEUE // 4
DEFAULT_MAX_CONFLICT_RETRIES = 8
DEFAULT_MAX_CACHED_ACCOUNTS = 10_000
# How long after another writer's change to an account (seen in a read or in a conflict) every batch reads first again.
DEFAULT_TRUST_AFTER_SECONDS = 1.0


class Busy(DomainError):
    """The write queue is full (or the process is stopping): the client should try again shortly."""

    code = "busy"


@dataclass(eq=False)
class PendingRequest:
    workspace_id: UUID
    job_type: str
    job_input: dict[str, Any]
    outputs: int
    campaign_id: UUID | None
    idempotency_key: str | None
    fingerprint: str
    cost: int
    # Who asked (request id, actor): the writer thread records the caller's metadata on the command's events.
    meta: dict[str, str]
    answer: Future[JobReceipt] = field(default_factory=Future)

    @property
    def key_id(self) -> UUID | None:
        return None if self.idempotency_key is None else IdempotencyKey.id_for(self.workspace_id, self.idempotency_key)


@dataclass
class BatchStats:
    """What the writer has done since the process started; each count's help is what /metrics says of it."""

    batches: int = field(default=0, metadata={"help": "Batches of job requests the writer saved"})
    requests: int = field(default=0, metadata={"help": "Job requests the writer took into batches"})
    conflicts: int = field(default=0, metadata={"help": "Batches applied again after another writer changed what they loaded"})
    trusted: int = field(
        default=0, metadata={"help": "Batches applied to the accounts in memory without reading the log first (no other writer seen)"}
    )
    one_at_a_time: int = field(default=0, metadata={"help": "Batches redone one request per transaction after a failed save"})
    busy: int = field(
        default=0, metadata={"help": "Job requests answered 503 busy at once: the queue, or the workspace's share of it, was full"}
    )


class WorkspaceQueues:
    """The requests waiting for the writer: one queue per workspace, in arrival order, taken a request per
    workspace in turn, so a workspace that floods the writer waits behind its own requests and no one else's."""

    def __init__(self, capacity: int, per_workspace: int) -> None:
        self.capacity = capacity
        self.per_workspace = per_workspace
        self._waiting: OrderedDict[UUID, deque[PendingRequest]] = OrderedDict()
        self._count = 0

    def __len__(self) -> int:
        return self._count

    def put(self, pending: PendingRequest) -> None:
        if self._count >= self.capacity:
            raise Busy("Too many job requests are waiting to be written; try again in a moment.")
        waiting = self._waiting.setdefault(pending.workspace_id, deque())
        if len(waiting) >= self.per_workspace:
            raise Busy("Too many of this workspace's job requests are waiting to be written; try again in a moment.")
        waiting.append(pending)
        self._count += 1

    def take(self, limit: int) -> list[PendingRequest]:
        taken: list[PendingRequest] = []
        while self._waiting and len(taken) < limit:
            workspace_id, waiting = next(iter(self._waiting.items()))
            taken.append(waiting.popleft())
            if waiting:
                self._waiting.move_to_end(workspace_id)
            else:
                del self._waiting[workspace_id]
        self._count -= len(taken)
        return taken


class _Dirty(Exception):
    """A command raised after it had changed an in-memory aggregate: the batch must be applied again without it."""

    def __init__(self, request: PendingRequest, error: Exception) -> None:
        super().__init__(repr(error))
        self.request = request
        self.error = error


@dataclass
class _Applied:
    """One application of a batch to freshly loaded aggregates: each request's answer, and what to save."""

    answers: dict[PendingRequest, JobReceipt | Exception] = field(default_factory=dict)
    accounts: dict[UUID, CreditAccount] = field(default_factory=dict)
    keys: dict[UUID, IdempotencyKey | None] = field(default_factory=dict)
    jobs: dict[UUID, GenerationJob] = field(default_factory=dict)
    # The accounts taken from memory without reading the log, by id, at the version the batch found them.
    trusted: dict[UUID, int] = field(default_factory=dict)

    @property
    def refused_any(self) -> bool:
        return any(isinstance(answer, Exception) for answer in self.answers.values())

    def changed(self) -> list[Aggregate]:
        touched: list[Aggregate] = [a for a in self.accounts.values() if a.pending_events]
        touched += [k for k in self.keys.values() if k is not None and k.pending_events]
        return [*touched, *self.jobs.values()]


class JobRequestBatcher(SingleWriter[PendingRequest]):
    """Takes `request_job` calls from any number of threads; one writer thread answers them in batches.

    Every caller gets exactly one answer: its receipt once the batch that holds it committed, or the error
    of its own command. A command that fails (no credits, a reused key) fails alone; a batch that collides
    with another writer is applied again to fresh aggregates, and after too many collisions, or on any
    other failure of the save, its requests run one at a time on the one-command-per-transaction path."""

    def __init__(
        self,
        app: Pressroom,
        *,
        max_batch: int = DEFAULT_MAX_BATCH,
        max_queue: int = DEFAULT_MAX_QUEUE,
        max_queue_per_workspace: int = DEFAULT_MAX_QUEUE_PER_WORKSPACE,
        max_conflict_retries: int = DEFAULT_MAX_CONFLICT_RETRIES,
        max_cached_accounts: int = DEFAULT_MAX_CACHED_ACCOUNTS,
        trust_after_seconds: float = DEFAULT_TRUST_AFTER_SECONDS,
        autostart: bool = True,
    ) -> None:
        super().__init__("job-request-writer")
        self.app = app
        # Only the writer thread touches these accounts.
        self._accounts: OrderedDict[UUID, CreditAccount] = OrderedDict()
        self.max_cached_accounts = max_cached_accounts
        self.max_batch = max_batch
        self.max_conflict_retries = max_conflict_retries
        self.trust_after_seconds = trust_after_seconds
        self._trusted_from = 0.0  # time.monotonic() from which the accounts in memory are trusted
        self.stats = BatchStats()
        self._queue = WorkspaceQueues(max_queue, max_queue_per_workspace)
        self._autostart = autostart

    # Callers

    def submit(
        self,
        workspace_id: UUID,
        job_type: str,
        job_input: dict[str, Any],
        outputs: int,
        campaign_id: UUID | None = None,
        idempotency_key: str | None = None,
    ) -> Future[JobReceipt]:
        # What needs no shared state is computed here, in the caller's thread, not in the writer's.
        pending = PendingRequest(
            workspace_id=workspace_id,
            job_type=job_type,
            job_input=job_input,
            outputs=outputs,
            campaign_id=campaign_id,
            idempotency_key=idempotency_key,
            fingerprint=fingerprint_of(job_type, job_input, campaign_id),
            cost=self.app.pricing.cost_of(job_type, outputs),
            meta=current_metadata(),
        )
        # Running from the start: an answer nobody waits for any more (a caller gone) cannot cancel the command.
        pending.answer.set_running_or_notify_cancel()
        with self._ready:
            try:
                if self._closed:
                    raise Busy("This server is shutting down; send the request again.")
                self._queue.put(pending)
            except Busy:
                self.stats.busy += 1
                raise
            if self._autostart:
                self._start_locked()
            self._ready.notify()
        return pending.answer

    def start(self) -> None:
        with self._ready:
            self._start_locked()

    def close(self, timeout: float = 30.0) -> bool:
        """Stops taking requests, answers those already queued, and stops the writer."""
        stopped = super().close(timeout)
        with self._ready:
            left = self._queue.take(len(self._queue)) if stopped else []
        for pending in left:
            _answer(pending, Busy("This server is shutting down; send the request again."))
        return stopped

    # The writer

    def _count(self) -> int:
        return len(self._queue)

    def _take(self) -> list[PendingRequest]:
        return self._queue.take(self.max_batch)

    def _fail(self, item: PendingRequest, error: Exception) -> None:
        _answer(item, error)

    def _write(self, batch: list[PendingRequest]) -> None:
        self.stats.batches += 1
        self.stats.requests += len(batch)
        for attempt in range(self.max_conflict_retries):
            try:
                applied = self._apply(batch)
            except _Dirty as dirty:
                _answer(dirty.request, dirty.error)
                self._evict(pending.workspace_id for pending in batch)
                batch = [pending for pending in batch if pending is not dirty.request]
                continue
            except BaseException:
                self._evict(pending.workspace_id for pending in batch)
                raise
            if applied.trusted and applied.refused_any and not self._unchanged_since(applied.trusted):
                # A refusal decided on an account another writer had moved on: decide the batch again on the log's.
                self._evict(applied.accounts)
                continue
            changed = applied.changed()
            try:
                if changed:
                    # A batch is a group already: handing it to the event log's writer thread would only add two
                    # waits for another thread (and for the GIL) to a save that gains nothing from company.
                    self.app.save(*changed, grouped=False)
            except RecordConflictError:
                # Another writer (another process, or this one's other commands) changed an account or
                # claimed a key since it was loaded: load everything again and apply the batch again.
                self.stats.conflicts += 1
                self._distrust()
                self._evict(applied.accounts)
                time.sleep(random.uniform(0, 0.002 * (attempt + 1)))
                continue
            except Exception:  # noqa: BLE001 - what failed decides between answering and retrying one by one
                self._evict(applied.accounts)
                if not self._committed(applied):
                    # Nothing was written; the failure may be one command's (an input that cannot be stored).
                    self._one_at_a_time(batch)
                    return
                # The transaction committed and only its acknowledgement was lost (the connection dropped): the answers stand.
            for pending, answer in applied.answers.items():
                _answer(pending, answer)
            return
        self._one_at_a_time(batch)

    def _apply(self, batch: Sequence[PendingRequest]) -> _Applied:
        applied = _Applied()
        self._load(batch, applied)
        for pending in batch:
            account = applied.accounts.get(pending.workspace_id)
            if account is None:
                try:
                    account = applied.accounts[pending.workspace_id] = self._remember(self.app.credit_account(pending.workspace_id))
                except Exception as error:  # noqa: BLE001 - the request's own error, answered to it alone
                    applied.answers[pending] = error
                    continue
            mark = len(account.pending_events)
            key_mark = _pending_count(applied.keys.get(pending.key_id) if pending.key_id else None)
            try:
                answer = applied.answers[pending] = self._decide(pending, account, applied)
            except Exception as error:
                if len(account.pending_events) != mark:
                    raise _Dirty(pending, error) from error
                applied.answers[pending] = error
                continue
            if pending.meta:
                key = applied.keys.get(pending.key_id) if pending.key_id else None
                made = [*account.pending_events[mark:], *(key.pending_events[key_mark:] if key else [])]
                _stamp(pending.meta, [*made, *([] if answer.duplicate else answer.job.pending_events)])
        return applied

    def _load(self, batch: Sequence[PendingRequest], applied: _Applied) -> None:
        """In one query: the events stored since the accounts in memory were last seen (unless they are trusted),
        and every key the batch names."""
        known = {p.workspace_id: self._accounts[p.workspace_id] for p in batch if p.workspace_id in self._accounts}
        key_ids = {p.key_id for p in batch if p.key_id is not None}
        versions = {account.id: account.version for account in known.values()}
        # A batch that names a key reads anyway; its accounts come in the same query, and a replayed key's answer
        # (the balance, with no save of the account to prove it) is then current too.
        if not key_ids and time.monotonic() >= self._trusted_from:
            applied.trusted, versions = versions, {}
            self.stats.trusted += bool(applied.trusted)
        stored: dict[UUID | str, list[Any]] = {}
        for event in self.app.events_after(versions | dict.fromkeys(key_ids, 0)):
            stored.setdefault(event.originator_id, []).append(self.app.mapper.to_domain_event(event))
        for workspace_id, account in known.items():
            if account.id in stored:
                self._distrust()
            applied.accounts[workspace_id] = replay(account, stored.get(account.id, ()))
            self._accounts.move_to_end(workspace_id)
        for key_id in key_ids:
            key = replay(None, stored.get(key_id, ()))
            applied.keys[key_id] = key if isinstance(key, IdempotencyKey) else None

    def _unchanged_since(self, versions: dict[UUID, int]) -> bool:
        """Whether no other writer has stored events for these accounts after these versions."""
        if any(True for _ in self.app.events_after(versions)):
            self._distrust()
            return False
        return True

    def _distrust(self) -> None:
        self._trusted_from = time.monotonic() + self.trust_after_seconds

    def _remember(self, account: CreditAccount) -> CreditAccount:
        self._accounts[account.workspace_id] = account
        while len(self._accounts) > self.max_cached_accounts:
            self._accounts.popitem(last=False)
        return account

    def _decide(self, pending: PendingRequest, account: CreditAccount, applied: _Applied) -> JobReceipt:
        """The command of `Pressroom.request_job_alone`, on the batch's in-memory aggregates."""
        now = self.app.clock.now()
        key: IdempotencyKey | None = None
        key_id: UUID | None = None
        if pending.idempotency_key is not None:
            key_id = IdempotencyKey.id_for(pending.workspace_id, pending.idempotency_key)
            if key_id not in applied.keys:
                applied.keys[key_id] = self.app._find(IdempotencyKey, key_id)
            key = applied.keys[key_id]
            if key is not None and key.is_live(now):
                job_id = key.replay(pending.fingerprint)
                job = applied.jobs.get(job_id) or self.app._get(GenerationJob, job_id, pending.workspace_id)
                return JobReceipt(job=job, credits_remaining=account.balance, duplicate=True)
        job, key = charge_job(
            account,
            pending.workspace_id,
            pending.job_type,
            pending.job_input,
            pending.outputs,
            pending.campaign_id,
            pending.cost,
            pending.fingerprint,
            pending.idempotency_key,
            key,
            now,
        )
        if key_id is not None:
            applied.keys[key_id] = key
        applied.jobs[job.id] = job
        return JobReceipt(job=job, credits_remaining=account.balance, duplicate=False)

    def _evict(self, workspace_ids: Iterable[UUID]) -> None:
        """Forgets the accounts a failed batch touched (they may hold its unsaved changes), here and in the
        library's cache, so the next batch loads them from the store."""
        cache = self.app.repository.cache
        for workspace_id in list(workspace_ids):
            self._accounts.pop(workspace_id, None)
            if cache:
                with contextlib.suppress(KeyError):
                    cache.get(CreditAccount.id_for(workspace_id), evict=True)

    def _committed(self, applied: _Applied) -> bool:
        """Whether the batch's transaction committed: one transaction, so any one of its new jobs tells."""
        job_id = next(iter(applied.jobs))
        return bool(list(self.app.events.get(job_id, limit=1)))

    def _one_at_a_time(self, batch: Sequence[PendingRequest]) -> None:
        self.stats.one_at_a_time += 1
        for pending in batch:
            try:
                with metadata(**pending.meta):
                    receipt = self.app.request_job_alone(
                        pending.workspace_id,
                        pending.job_type,
                        pending.job_input,
                        pending.outputs,
                        pending.campaign_id,
                        pending.idempotency_key,
                    )
            except Exception as error:  # noqa: BLE001 - the request's own error, answered to it alone
                _answer(pending, error)
            else:
                _answer(pending, receipt)


def _pending_count(aggregate: Aggregate | None) -> int:
    return len(aggregate.pending_events) if aggregate is not None else 0


def _stamp(meta: dict[str, str], events: Iterable[object]) -> None:
    """What MetadataMapper does from the caller's context, done for the caller: the writer has no such context."""
    for event in events:
        if META_FIELD not in vars(event):
            object.__setattr__(event, META_FIELD, dict(meta))


def _answer(pending: PendingRequest, answer: JobReceipt | Exception) -> None:
    if pending.answer.done():
        return
    if isinstance(answer, Exception):
        pending.answer.set_exception(answer)
    else:
        pending.answer.set_result(answer)
