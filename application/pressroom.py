"""The Pressroom application: every use case as a method that loads, decides and saves atomically."""

from __future__ import annotations

import copy
import hashlib
import random
import re
import secrets
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from datetime import datetime, timedelta
from functools import wraps
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar, ParamSpec, TypeVar, cast
from uuid import UUID, uuid4

import msgspec
from eventsourcing.application import AggregateNotFoundError, Application, ProcessingEvent
from eventsourcing.domain import Aggregate, BaseAggregate, DomainEventProtocol, MutableOrImmutableAggregate
from eventsourcing.persistence import (
    AggregateRecorder,
    IntegrityError,
    JSONTranscoder,
    Mapper,
    Recording,
    StoredEvent,
    Transcoder,
    Transcoding,
)

from application.billing import CreditPackPurchased, PaymentNotice, SubscriptionChanged
from application.ids import new_id
from application.metadata import MetadataMapper
from application.ports import Clock, MediaFile, MediaStore
from application.snapshots import Snapshotter
from application.transcoding import MsgspecJSONTranscoder
from domain.api_key import SECRET_PREFIX, ApiKey
from domain.asset import Asset, UnsupportedMedia
from domain.base import WorkspaceAggregate
from domain.credit_account import CreditAccount, Refund
from domain.errors import DomainError, InsufficientCredits, NotFound
from domain.generation_job import GenerationJob, StaleAttempt
from domain.idempotency_key import IdempotencyKey
from domain.pricing import Pricing
from domain.webhook import Webhook
from domain.workspace import Workspace, check_name, check_plan

if TYPE_CHECKING:
    from application.group_commit import JobRequestBatcher

P = ParamSpec("P")
R = TypeVar("R")
A = TypeVar("A", bound=WorkspaceAggregate)

# A load from the aggregate cache is deep-copied (so a command that fails leaves the cached aggregate as it
# was), and copying each UUID and datetime in an aggregate's state the generic way was a fifth of a load's
# time. Both are immutable: a copy may share them, as it shares str and int.
copy._deepcopy_dispatch[UUID] = copy._deepcopy_atomic  # type: ignore[attr-defined]
copy._deepcopy_dispatch[datetime] = copy._deepcopy_atomic  # type: ignore[attr-defined]

MAX_CONFLICT_RETRIES = 8
ACCOUNT_LOCK_STRIPES = 256
# A snapshot every so many events bounds a cold load of a busy account; its state is a few fields.
ACCOUNT_SNAPSHOT_INTERVAL = 200


# The stored events of each aggregate after the version given for it (0: all of them), in version order.
EventsAfter = Callable[[Mapping[UUID, int]], list[StoredEvent]]


def select_one_by_one(recorder: AggregateRecorder, after: Mapping[UUID, int]) -> list[StoredEvent]:
    return [event for aggregate_id, version in after.items() for event in recorder.select_events(aggregate_id, gt=version)]


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


class WorkspaceSummary(msgspec.Struct, frozen=True):
    id: UUID
    name: str
    plan: str
    created_at: datetime


class NewKey(msgspec.Struct, frozen=True):
    key: ApiKey
    secret: str


class JobReceipt(msgspec.Struct, frozen=True):
    job: GenerationJob
    credits_remaining: int
    duplicate: bool


class JobRequest(msgspec.Struct, frozen=True, kw_only=True):
    """One job of several requested together (`request_jobs`)."""

    job_type: str
    job_input: dict[str, Any]
    outputs: int
    idempotency_key: str | None = None


class FastProcessingEvent(ProcessingEvent[UUID]):
    """Collects an aggregate's events when it is one (a fast check of its class), and anything else the library's way."""

    def collect_events(self, *objs: MutableOrImmutableAggregate[UUID] | DomainEventProtocol[UUID] | None, **kwargs: Any) -> None:
        for obj in objs:
            if isinstance(obj, BaseAggregate):
                self.events.extend(obj.collect_events())
                self.aggregates[obj.id] = obj
            else:
                super().collect_events(obj)
        self.saved_kwargs.update(kwargs)


class Pressroom(Application[UUID]):
    name = "pressroom"
    snapshotting_intervals: ClassVar[dict[type[Any], int]] = {CreditAccount: ACCOUNT_SNAPSHOT_INTERVAL}

    def __init__(
        self,
        env: dict[str, str] | None = None,
        *,
        clock: Clock,
        pricing: Pricing | None = None,
        lease: timedelta = timedelta(seconds=120),
        max_attempts: int = 3,
        media: MediaStore | None = None,
        video_lease: timedelta = timedelta(minutes=30),
    ) -> None:
        super().__init__(env)
        self.video_lease = video_lease
        self._media = media
        self.clock = clock
        self.pricing = pricing or Pricing()
        self.lease = lease
        self.max_attempts = max_attempts
        self._account_locks = [threading.RLock() for _ in range(ACCOUNT_LOCK_STRIPES)]
        # One query on PostgreSQL (adapters/event_batches.py); one per aggregate here, for any recorder.
        self.events_after: EventsAfter = lambda after: select_one_by_one(self.recorder, after)
        self.snapshotter = Snapshotter(self.take_snapshot)
        # When set, `request_job` is group-committed with concurrent requests (application/group_commit.py).
        self.job_batcher: JobRequestBatcher | None = None

    def close(self) -> None:
        if self.job_batcher is not None:
            self.job_batcher.close()
        self.snapshotter.close()
        super().close()

    def save(self, *objs: MutableOrImmutableAggregate[UUID] | DomainEventProtocol[UUID] | None, **kwargs: Any) -> list[Recording[UUID]]:
        """The library's `save`, collecting the events of aggregates without its runtime checks of protocols,
        which cost ~19 µs an aggregate on Python 3.11: a job request saves three, and every command saves some."""
        processing_event = FastProcessingEvent()
        processing_event.collect_events(*objs, **kwargs)
        recordings = self._record(processing_event)
        self._take_snapshots(processing_event)
        self._notify(recordings)
        return recordings

    def _take_snapshots(self, processing_event: ProcessingEvent[UUID]) -> None:
        """The snapshots a save calls for, handed to the snapshotter rather than taken before the save returns."""
        for event in processing_event.events:
            interval = self.snapshotting_intervals.get(type(processing_event.aggregates.get(event.originator_id)))
            if interval is not None and event.originator_version % interval == 0:
                self.snapshotter.take(event.originator_id, event.originator_version)

    def lease_for(self, job: GenerationJob) -> timedelta:
        """How long one attempt holds the job: an avatar video renders for many minutes at the provider,
        and taking it back sooner would pay for a second render."""
        return max(self.lease, self.video_lease) if job.job_type == "video" else self.lease

    @property
    def media(self) -> MediaStore:
        if self._media is None:
            raise RuntimeError("this Pressroom was built without a media store")
        return self._media

    def construct_mapper(self) -> Mapper[UUID]:
        return MetadataMapper(transcoder=self.construct_transcoder())

    def construct_transcoder(self) -> Transcoder:
        transcoder = MsgspecJSONTranscoder()
        self.register_transcodings(transcoder)
        return transcoder

    def register_transcodings(self, transcoder: JSONTranscoder) -> None:
        super().register_transcodings(transcoder)
        transcoder.register(SetAsList())

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

    def create_workspace(self, name: str, plan: str = "free", key_label: str = "default") -> tuple[WorkspaceSummary, NewKey]:
        check_name(name)
        check_plan(plan)
        workspace_id = uuid4()
        workspace = Workspace.open(workspace_id, name)
        account = CreditAccount.open(workspace_id, plan, self.clock.now(), self.pricing)
        new_key = self._new_key(workspace_id, key_label)
        self.save(workspace, account, new_key.key)
        return _summary(workspace, account), new_key

    def get_workspace(self, workspace_id: UUID) -> WorkspaceSummary:
        workspace = self._get(Workspace, workspace_id, workspace_id)
        return _summary(workspace, self.credit_account(workspace_id))

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

    # Credits

    def credit_account(self, workspace_id: UUID) -> CreditAccount:
        return self._get(CreditAccount, CreditAccount.id_for(workspace_id), workspace_id)

    @contextmanager
    def _account_exclusively(self, workspace_id: UUID) -> Iterator[None]:
        """Serialises this process's commands on one account, so they queue instead of colliding
        and retrying; writers in other processes are still caught by the version check."""
        with self._account_locks[hash(workspace_id) % len(self._account_locks)]:
            yield

    def _change_account(self, workspace_id: UUID, change: Callable[[CreditAccount], object]) -> tuple[CreditAccount, bool]:
        """Applies one change to the account; saves it and answers True if the change recorded anything."""
        with self._account_exclusively(workspace_id):
            account = self.credit_account(workspace_id)
            change(account)
            recorded = bool(account.pending_events)
            if recorded:
                self.save(account)
            return account, recorded

    @retry_on_conflict
    def top_up(self, workspace_id: UUID, amount: int, reference: str, reason: str | None = None) -> tuple[CreditAccount, bool]:
        """Adds top-up credits once per reference; returns the account and whether it was a duplicate."""
        account, granted = self._change_account(workspace_id, lambda account: account.grant("topup", amount, reference, reason))
        return account, not granted

    @retry_on_conflict
    def adjust_credits(self, workspace_id: UUID, amount: int, reference: str, reason: str) -> tuple[CreditAccount, bool]:
        """An operator's signed correction, once per reference; returns the account and whether it was a duplicate."""
        account, adjusted = self._change_account(workspace_id, lambda account: account.adjust(amount, reference, reason))
        return account, not adjusted

    @retry_on_conflict
    def change_plan(self, workspace_id: UUID, plan: str) -> CreditAccount:
        account, _ = self._change_account(workspace_id, lambda account: account.change_plan(plan, self.clock.now(), self.pricing))
        return account

    @retry_on_conflict
    def renew_period(self, workspace_id: UUID) -> bool:
        """Starts the account's current period if it is due; True when this call started it.
        Safe from any number of replicas: the version check lets one of them win."""
        _, renewed = self._change_account(workspace_id, lambda account: account.renew(self.clock.now(), self.pricing))
        return renewed

    def apply_payment(self, notice: PaymentNotice) -> CreditAccount:
        """Acts on what the payment provider said; a notice delivered twice changes things once."""
        match notice:
            case CreditPackPurchased():
                account, _ = self.top_up(notice.workspace_id, notice.credits, notice.order_reference, notice.description)
                return account
            case SubscriptionChanged():
                return self.change_plan(notice.workspace_id, notice.plan)

    # Generation jobs

    def request_job(
        self,
        workspace_id: UUID,
        job_type: str,
        job_input: dict[str, Any],
        outputs: int,
        campaign_id: UUID | None = None,
        idempotency_key: str | None = None,
    ) -> JobReceipt:
        if self.job_batcher is not None:
            return self.job_batcher.submit(workspace_id, job_type, job_input, outputs, campaign_id, idempotency_key).result()
        return self.request_job_alone(workspace_id, job_type, job_input, outputs, campaign_id, idempotency_key)

    @retry_on_conflict
    def request_job_alone(
        self,
        workspace_id: UUID,
        job_type: str,
        job_input: dict[str, Any],
        outputs: int,
        campaign_id: UUID | None = None,
        idempotency_key: str | None = None,
    ) -> JobReceipt:
        """One job request in its own transaction: the path without group commit, kept for comparison."""
        with self._account_exclusively(workspace_id):
            return self._request_job(workspace_id, job_type, job_input, outputs, campaign_id, idempotency_key)

    def _request_job(
        self,
        workspace_id: UUID,
        job_type: str,
        job_input: dict[str, Any],
        outputs: int,
        campaign_id: UUID | None,
        idempotency_key: str | None,
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
        cost = self.pricing.cost_of(job_type, outputs)
        job, key = charge_job(
            account, workspace_id, job_type, job_input, outputs, campaign_id, cost, fingerprint, idempotency_key, key, now
        )
        self.save(account, job, *([] if key is None else [key]))
        return JobReceipt(job=job, credits_remaining=account.balance, duplicate=False)

    def request_jobs(
        self,
        workspace_id: UUID,
        requests: Sequence[JobRequest],
        campaign_id: UUID | None,
        along: Callable[[list[GenerationJob]], Sequence[Aggregate]],
    ) -> list[GenerationJob]:
        """Several jobs charged together and saved in one transaction with what `along` changes (a campaign
        that records them): all are charged or none. Each request's idempotency key is claimed, so a
        repeat collides in the event store instead of charging twice; the caller retries on conflict."""
        with self._account_exclusively(workspace_id):
            now = self.clock.now()
            account = self.credit_account(workspace_id)
            needed = sum(self.pricing.cost_of(r.job_type, r.outputs) for r in requests)
            if needed > account.balance:
                raise InsufficientCredits(needed, account.balance)
            changed: list[Aggregate] = [account]
            jobs: list[GenerationJob] = []
            for r in requests:
                fingerprint = fingerprint_of(r.job_type, r.job_input, campaign_id)
                cost = self.pricing.cost_of(r.job_type, r.outputs)
                job, key = charge_job(
                    account, workspace_id, r.job_type, r.job_input, r.outputs, campaign_id, cost, fingerprint, r.idempotency_key, None, now
                )
                jobs.append(job)
                if key is not None:
                    changed.append(key)
            self.save(*changed, *jobs, *along(jobs))
            return jobs

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
            self._give_up(job)
            return None
        job.start(worker, now, now + self.lease_for(job))
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
        if not job.is_current(attempt):
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

    def _give_up(self, job: GenerationJob) -> None:
        self._fail(job, None, "attempts_exhausted", f"The job did not finish in {job.attempts} attempts.")

    def _fail(self, job: GenerationJob, attempt: int | None, code: str, message: str) -> None:
        self._end_job(job, lambda job: job.fail(attempt, code, message))

    def _end_job(self, job: GenerationJob, end: Callable[[GenerationJob], Refund]) -> None:
        """Ends the job and refunds what it did not produce, in one save with the account."""
        with self._account_exclusively(job.workspace_id):
            account = self.credit_account(job.workspace_id)
            refund = end(job)
            account.refund(job.id, job.job_type, refund, reason=job.status)
            self.save(job, account)

    @retry_on_conflict
    def record_output(self, job_id: UUID, attempt: int, index: int, file: MediaFile) -> bool:
        """Stores one output of the current attempt as an asset; False when the attempt is no longer
        current (canceled, expired, superseded), and the worker should stop."""
        job = self._get(GenerationJob, job_id)
        if not job.is_current(attempt):
            return False
        asset = self._store_media(job.workspace_id, f"{job.job_type}-{index + 1}", file.content, file, job)
        job.produce(attempt, index, asset.summary(), self.clock.now() + self.lease_for(job))
        self.save(job, asset)
        return True

    @retry_on_conflict
    def finish_job(self, job_id: UUID, attempt: int, failure: tuple[str, str] | None = None) -> bool:
        """Ends a media job once every output was tried; False when the attempt was no longer current."""
        job = self._get(GenerationJob, job_id)
        if not job.is_current(attempt):
            return False
        self._end_job(job, lambda job: job.finish(attempt, failure))
        return True

    @retry_on_conflict
    def cancel_job(self, workspace_id: UUID, job_id: UUID) -> GenerationJob:
        job = self._get(GenerationJob, job_id, workspace_id)
        self._end_job(job, GenerationJob.cancel)
        return job

    @retry_on_conflict
    def expire_job(self, job_id: UUID, deadline: timedelta) -> bool:
        """Expires a job that made no progress within `deadline`; False when it is not overdue."""
        job = self._find(GenerationJob, job_id)
        if job is None or not job.is_overdue(self.clock.now(), deadline):
            return False
        self._end_job(job, lambda job: job.expire(self.clock.now(), deadline))
        return True

    # Audit

    def as_of(self, workspace_id: UUID | None, aggregate_id: UUID, *, version: int | None = None, at: datetime | None = None) -> Any:
        """The aggregate as it was at a version, or at a moment (its last event at or before it)."""
        if at is not None:
            history = cast(list[Aggregate.Event], list(self.events.get(aggregate_id)))
            versions = [e.originator_version for e in history if e.timestamp <= at]
            if not versions:
                raise NotFound(f"{aggregate_id} did not exist at {at.isoformat()}.")
            version = versions[-1]
        try:
            aggregate = self.repository.get(aggregate_id, version=version, projector_func=replay)
        except AggregateNotFoundError:
            raise NotFound(f"No aggregate {aggregate_id} at that version.") from None
        if not isinstance(aggregate, WorkspaceAggregate) or (workspace_id is not None and aggregate.workspace_id != workspace_id):
            raise NotFound(f"No aggregate {aggregate_id}.")
        return aggregate

    # Webhooks

    def create_webhook(self, workspace_id: UUID, url: str, events: tuple[str, ...]) -> Webhook:
        webhook = Webhook.create(workspace_id, url, events)
        self.save(webhook)
        return webhook

    def get_webhook(self, workspace_id: UUID | None, webhook_id: UUID) -> Webhook:
        webhook = self._get(Webhook, webhook_id, workspace_id)
        if webhook.is_removed:
            raise NotFound(f"No Webhook {webhook_id}.")
        return webhook

    @retry_on_conflict
    def remove_webhook(self, workspace_id: UUID, webhook_id: UUID) -> None:
        webhook = self.get_webhook(workspace_id, webhook_id)
        webhook.remove()
        self.save(webhook)

    @retry_on_conflict
    def replay_webhook(self, workspace_id: UUID, webhook_id: UUID, after: int) -> Webhook:
        webhook = self.get_webhook(workspace_id, webhook_id)
        webhook.request_replay(after)
        self.save(webhook)
        return webhook

    # Assets

    def upload_asset(self, workspace_id: UUID, filename: str, content: bytes) -> Asset:
        """Stores a client's file, typed by its bytes, not by what the client says it is."""
        asset = self._store_media(workspace_id, Path(filename).stem or "upload", content, None, None)
        self.save(asset)
        return asset

    def get_asset(self, workspace_id: UUID | None, asset_id: UUID) -> Asset:
        return self._get(Asset, asset_id, workspace_id)

    def _store_media(self, workspace_id: UUID, stem: str, content: bytes, made: MediaFile | None, job: GenerationJob | None) -> Asset:
        found = self.media.inspect(content)
        if found is None:
            raise UnsupportedMedia("The file is not a PNG, JPEG, WebP image or an MP4 video.")
        mime, width, height = found
        if made is not None:
            width, height = made.width, made.height
        asset_id = uuid4()
        filename = f"{safe_name(stem)}.{EXTENSIONS[mime]}"
        key = f"{workspace_id}/{asset_id}/{filename}"
        asset = Asset.store(
            asset_id,
            workspace_id,
            mime=mime,
            width=width,
            height=height,
            size=len(content),
            filename=filename,
            storage_key=key,
            job_id=job.id if job else None,
            campaign_id=job.campaign_id if job else None,
            duration_seconds=made.duration_seconds if made else None,
        )
        self.media.put(key, content)
        return asset

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
            self._give_up(job)
        else:
            job.requeue("lease expired" if lease_over else "not picked up")
            self.save(job)
        return True


EXTENSIONS = {"image/png": "png", "image/jpeg": "jpg", "image/webp": "webp", "video/mp4": "mp4"}


def safe_name(stem: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "-", stem).strip("-.")[:80] or "file"


def _summary(workspace: Workspace, account: CreditAccount) -> WorkspaceSummary:
    return WorkspaceSummary(id=workspace.id, name=workspace.name, plan=account.plan, created_at=workspace.created_on)


class SetAsList(Transcoding):
    type = set
    name = "set"

    def encode(self, obj: set[Any]) -> list[Any]:
        return sorted(obj)

    def decode(self, data: list[Any]) -> set[Any]:
        return set(data)


def key_id_of(secret: str) -> UUID:
    """The id of the key a secret belongs to, if it is one of ours."""
    if not secret.startswith(SECRET_PREFIX):
        raise Unauthenticated("Send a workspace API key as 'Authorization: Bearer pr_live_…'.")
    return ApiKey.id_for(secret)


def admitted(secret: str, key: ApiKey | None) -> tuple[Principal, ApiKey]:
    """Whom a secret speaks for, given the key its id names (None: there is no such key)."""
    if key is None or key.is_revoked or not key.matches(secret):
        raise Unauthenticated("This API key is unknown or revoked.")
    return Principal(workspace_id=key.workspace_id, key_id=key.id), key


def replay(aggregate: Any, events: Iterable[Any]) -> Any:
    """The library's projector without its per-event runtime protocol check, which dominates load time."""
    for event in events:
        aggregate = event.mutate(aggregate)
    return aggregate


def charge_job(
    account: CreditAccount,
    workspace_id: UUID,
    job_type: str,
    job_input: dict[str, Any],
    outputs: int,
    campaign_id: UUID | None,
    cost: int,
    fingerprint: str,
    idempotency_key: str | None,
    key: IdempotencyKey | None,
    now: datetime,
) -> tuple[GenerationJob, IdempotencyKey | None]:
    """A new job, charged to the loaded `account`, and with an `idempotency_key` the key that names it: `key`
    (that key's earlier claim, loaded, when it has one) reclaimed, else a new claim. Nothing is saved: the
    account, the job and the key (None without an idempotency key) are the caller's to save together."""
    job_id = new_id()
    charge = account.debit(job_id, cost, job_type)
    job = GenerationJob.request(job_id, workspace_id, job_type, job_input, charge, fingerprint, campaign_id, outputs)
    if idempotency_key is None:
        return job, None
    if key is None:
        return job, IdempotencyKey.claim(workspace_id, idempotency_key, fingerprint, job_id, now)
    key.reclaim(fingerprint, job_id, now)
    return job, key


def fingerprint_of(job_type: str, job_input: dict[str, Any], campaign_id: UUID | None) -> str:
    canonical = msgspec.json.encode({"type": job_type, "input": job_input, "campaignId": campaign_id}, order="sorted")
    return hashlib.sha256(canonical).hexdigest()
