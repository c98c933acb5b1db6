"""Publishing: connected accounts, schedules applied as runs of posts, and each post's way to the platform.

Never double-posting rests on three things: the scheduler's `request_publish` is a version-checked
command (of several schedulers one wins); the worker records `AttemptStarted` before it calls the
platform, so a redelivered command or a crashed worker finds the attempt in flight and never sends
it again blindly; and an attempt whose outcome cannot be known (`sent`) is settled only by asking
the platform (reconcile), where it can be asked.
"""

from __future__ import annotations

import hashlib
import threading
from collections.abc import Callable, Iterator, Sequence
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Protocol
from uuid import UUID, uuid4

import msgspec

from application.ports import Attachment, Clock, MediaStore, Outgoing, Publisher, PublishError, Receipt, Sealer
from application.pressroom import Pressroom, retry_on_conflict
from domain.asset import Asset
from domain.connection import Connection
from domain.errors import DomainError, InvalidState
from domain.post import Post
from domain.providers import provider as provider_spec
from domain.run import Run
from domain.schedule import AccountRef, AssetRef, Envelope, Plan, index_accounts, parse_envelope, plan

RUN_LOCK_STRIPES = 64
RETRY_BASE = timedelta(seconds=30)
RETRY_MAX = timedelta(minutes=30)
ORDER_WAIT = timedelta(seconds=1)


class UnsupportedByProvider(DomainError):
    code = "unsupported_by_provider"


class CredentialsRefused(DomainError):
    code = "credentials_refused"


class ProviderRefused(DomainError):
    """The platform refused the credentials or the call a client asked for."""

    code = "provider_refused"


class PublishingQueries(Protocol):
    """What publishing reads from its read models."""

    def account_refs(self, workspace_id: UUID) -> list[AccountRef]: ...

    def open_posts_of_account(self, account_id: UUID) -> list[UUID]: ...

    def published_since(self, account_id: UUID, since: datetime) -> int: ...

    def earlier_post_open(self, account_id: UUID, post_id: UUID, publish_at: datetime) -> bool: ...


@dataclass(frozen=True)
class Applied:
    run: Run
    posts: list[Post]
    duplicate: bool


class Publishing:
    def __init__(
        self,
        app: Pressroom,
        *,
        publishers: Callable[[str], Publisher],
        sealer: Sealer,
        queries: PublishingQueries,
        media_url: Callable[[Asset], str],
        max_attempts: int = 5,
        abandoned_after: timedelta = timedelta(seconds=60),
    ) -> None:
        self.app = app
        self.publishers = publishers
        self.sealer = sealer
        self.queries = queries
        self.media_url = media_url
        self.max_attempts = max_attempts
        self.abandoned_after = abandoned_after
        self._run_locks = [threading.RLock() for _ in range(RUN_LOCK_STRIPES)]

    @property
    def clock(self) -> Clock:
        return self.app.clock

    @property
    def media(self) -> MediaStore:
        return self.app.media

    # Connections

    def connect_manual(self, workspace_id: UUID, provider: str, credentials: dict[str, str]) -> Connection:
        """Checks the credentials with the platform, then keeps them sealed: the account is connected at once."""
        spec = provider_spec(provider)
        if spec.auth != "manual":
            raise UnsupportedByProvider(f"{provider} connects through OAuth; follow the authorizeUrl instead.")
        try:
            profile = self.publishers(provider).verify(credentials)
        except PublishError as error:
            raise CredentialsRefused(f"{spec.display_name} refused these credentials: {error.message}") from None
        connection_id = uuid4()
        connection = Connection.connect_manual(
            connection_id,
            workspace_id,
            provider,
            name=profile.name,
            display_name=profile.display_name,
            credentials_sealed=self.sealer.seal(credentials, context=str(connection_id)),
        )
        self.app.save(connection)
        return connection

    def get_connection(self, workspace_id: UUID, connection_id: UUID) -> Connection:
        return self.app._get(Connection, connection_id, workspace_id)

    def disconnect(self, workspace_id: UUID, account_id: UUID) -> Connection:
        """Disconnects the account and fails every post still waiting to go out on it."""
        connection = self._disconnect(workspace_id, account_id)
        for post_id in self.queries.open_posts_of_account(account_id):
            self._fail_open_post(post_id, "account_disconnected", f"The account {connection.handle} was disconnected.")
        return connection

    @retry_on_conflict
    def _disconnect(self, workspace_id: UUID, account_id: UUID) -> Connection:
        connection = self.get_connection(workspace_id, account_id)
        connection.disconnect()
        self.app.save(connection)
        return connection

    @retry_on_conflict
    def _fail_open_post(self, post_id: UUID, reason: str, message: str) -> None:
        post = self.app._get(Post, post_id)
        if post.status not in ("draft", "scheduled", "retry_pending"):
            return
        post.fail(reason, message)
        self._save_with_run(post)

    # Schedules

    def validate(self, workspace_id: UUID, raw: bytes) -> Plan:
        envelope = parse_envelope(raw)
        return self._plan(workspace_id, envelope)

    def _plan(self, workspace_id: UUID, envelope: Envelope) -> Plan:
        accounts = index_accounts(self.queries.account_refs(workspace_id))
        return plan(envelope, now=self.clock.now(), accounts=accounts, assets=self._assets_named(workspace_id, envelope))

    def _assets_named(self, workspace_id: UUID, envelope: Envelope) -> dict[str, AssetRef]:
        named: set[str] = set()
        for post in envelope.posts or ():
            named.update(post.assets or ())
        for campaign in envelope.campaigns or ():
            for target in campaign.targets:
                for step in target.steps:
                    named.update(step.assets or ())
        found: dict[str, AssetRef] = {}
        for name in named:
            try:
                asset_id = UUID(name)
            except ValueError:
                continue
            asset = self.app._find(Asset, asset_id)
            if asset is not None and asset.workspace_id == workspace_id:
                found[str(asset_id)] = AssetRef(id=asset_id, mime=asset.mime)
        return found

    def apply(self, workspace_id: UUID, raw: bytes) -> Applied:
        """Makes the run and its posts in one save; the same idempotencyKey again answers the same run."""
        envelope = parse_envelope(raw)
        fingerprint = hashlib.sha256(msgspec.json.encode(envelope)).hexdigest()
        if envelope.idempotency_key is not None:
            existing = self.app._find(Run, Run.id_for(workspace_id, envelope.idempotency_key))
            if existing is not None and existing.workspace_id == workspace_id:
                existing.replay(fingerprint)
                return Applied(existing, [self.app._get(Post, p) for p in existing.post_ids], duplicate=True)
        planned = self._plan(workspace_id, envelope)
        run_id = Run.id_for(workspace_id, envelope.idempotency_key) if envelope.idempotency_key else uuid4()
        posts = [
            Post.create(
                Post.id_for(run_id, index),
                workspace_id,
                run_id=run_id,
                account_id=p.account_id,
                provider=p.provider,
                handle=p.handle,
                text=p.text,
                publish_at=p.publish_at.utc,
                timezone=p.publish_at.zone,
                local_time=p.publish_at.local,
                mode=planned.mode,
                assets=p.assets,
                name=p.name,
                campaign_id=p.campaign_id,
            )
            for index, p in enumerate(planned.posts)
        ]
        run = Run.create(
            run_id,
            workspace_id,
            mode=planned.mode,
            post_ids=[p.id for p in posts],
            start_at=min(p.publish_at for p in posts),
            source_model=planned.source_model,
            timezone=planned.timezone,
            idempotency_key=envelope.idempotency_key,
            fingerprint=fingerprint,
        )
        try:
            self.app.save(run, *posts)
        except Exception:
            if envelope.idempotency_key is None:
                raise
            # Two applies with one key raced: the other made the run; answer it.
            existing = self.app._get(Run, run_id, workspace_id)
            existing.replay(fingerprint)
            return Applied(existing, [self.app._get(Post, p) for p in existing.post_ids], duplicate=True)
        return Applied(run, posts, duplicate=False)

    def get_run(self, workspace_id: UUID, run_id: UUID) -> Run:
        return self.app._get(Run, run_id, workspace_id)

    def get_post(self, workspace_id: UUID, post_id: UUID) -> Post:
        return self.app._get(Post, post_id, workspace_id)

    @retry_on_conflict
    def publish_run(self, workspace_id: UUID, run_id: UUID, start_at: datetime | None) -> Run:
        """A draft run becomes scheduled, every post shifted by as much as its start moves."""
        run = self.get_run(workspace_id, run_id)
        shift = run.publish(start_at)
        posts = [self.app._get(Post, p) for p in run.post_ids]
        for post in posts:
            if post.status == "draft":
                post.schedule(post.publish_at + shift, post.timezone, None if shift else post.local_time)
        self.app.save(run, *posts)
        return run

    # A post's commands from clients

    @retry_on_conflict
    def cancel_post(self, workspace_id: UUID, post_id: UUID) -> Post:
        post = self.get_post(workspace_id, post_id)
        post.cancel()
        self._save_with_run(post)
        return post

    @retry_on_conflict
    def retry_post(self, workspace_id: UUID, post_id: UUID) -> Post:
        post = self.get_post(workspace_id, post_id)
        post.retry(self.clock.now())
        self._save_with_run(post)
        return post

    def reconcile_post(self, workspace_id: UUID, post_id: UUID) -> Post:
        """Asks the platform what became of an `unknown` post and settles it."""
        post = self.get_post(workspace_id, post_id)
        if post.status != "unknown":
            raise InvalidState(f"Post {post_id} is {post.status}; only an unknown post is reconciled.")
        receipt = self._find_at_provider(post)
        return self._settle(post.id, receipt)

    def settle_unsettled(self, post_id: UUID, idle_since: datetime) -> str | None:
        """The sweeper's pass over a post nobody has moved since `idle_since`: an `unknown` post is
        reconciled where the platform can be asked; a `publishing` post whose worker vanished mid-attempt
        becomes `unknown` (one nobody started is the scheduler's to take over). Returns what it did."""
        post = self.app._find(Post, post_id)
        if post is None or post.modified_on >= idle_since:
            return None
        if post.status == "publishing" and post.in_flight is not None:
            return self._give_up_attempt(post_id, idle_since)
        if post.status == "unknown" and provider_spec(post.provider).supports_reconcile:
            try:
                receipt = self._find_at_provider(post)
            except (UnsupportedByProvider, ProviderRefused):
                return None
            return f"reconciled:{self._settle(post.id, receipt).status}"
        return None

    @retry_on_conflict
    def _give_up_attempt(self, post_id: UUID, idle_since: datetime) -> str | None:
        post = self.app._get(Post, post_id)
        if post.status != "publishing" or post.in_flight is None or post.modified_on >= idle_since:
            return None
        post.mark_outcome_unknown(post.in_flight.n, self.clock.now(), "The attempt never finished; no worker answered for it.")
        self._save_with_run(post)
        return post.status

    def _find_at_provider(self, post: Post) -> Receipt | None:
        connection = self.app._get(Connection, post.account_id)
        try:
            return self.publishers(post.provider).find(self._credentials(connection), self._outgoing(post))
        except PublishError as error:
            if error.code == "reconcile_unsupported":
                raise UnsupportedByProvider(f"{post.provider} cannot be asked what became of a post; check the channel.") from None
            raise ProviderRefused(f"{post.provider} could not be asked: {error.message}") from None

    @retry_on_conflict
    def _settle(self, post_id: UUID, receipt: Receipt | None) -> Post:
        post = self.app._get(Post, post_id)
        if post.status != "unknown":
            return post  # settled meanwhile (another sweeper, a client's reconcile)
        now = self.clock.now()
        if receipt is None:
            post.reconcile(now, published=False, max_attempts=self.max_attempts)
        else:
            post.reconcile(now, published=True, provider_post_id=receipt.provider_post_id, url=receipt.url)
        self._save_with_run(post)
        return post

    def delete_at_provider(self, workspace_id: UUID, post_id: UUID) -> Post:
        post = self.get_post(workspace_id, post_id)
        if post.status != "published" or post.provider_post_id is None:
            raise InvalidState(f"Post {post_id} is {post.status}; only a published post is deleted at the provider.")
        connection = self.app._get(Connection, post.account_id)
        try:
            self.publishers(post.provider).delete(
                self._credentials(connection), Receipt(provider_post_id=post.provider_post_id, url=post.provider_url)
            )
        except PublishError as error:
            if error.code == "delete_unsupported":
                raise UnsupportedByProvider(f"{post.provider} does not let published posts be deleted.") from None
            raise ProviderRefused(f"{post.provider} did not delete the post: {error.message}") from None
        return self._mark_deleted(post_id)

    @retry_on_conflict
    def _mark_deleted(self, post_id: UUID) -> Post:
        post = self.app._get(Post, post_id)
        post.delete()
        self._save_with_run(post)
        return post

    # The scheduler and the publishing worker

    @retry_on_conflict
    def request_publish_many(self, post_ids: Sequence[UUID]) -> int:
        """Hands several due posts over in one transaction with their runs; returns how many were due.
        Keep batches small (the scheduler uses HANDOVER_BATCH): a conflict redoes the whole batch."""
        now = self.clock.now()
        posts = [post for post_id in post_ids if (post := self.app._find(Post, post_id)) is not None and post.is_due(now)]
        if not posts:
            return 0
        run_ids = sorted({post.run_id for post in posts}, key=lambda run_id: run_id.int % RUN_LOCK_STRIPES)
        with ExitStack() as held:
            for stripe in sorted({run_id.int % RUN_LOCK_STRIPES for run_id in run_ids}):
                held.enter_context(self._run_locks[stripe])
            runs = {run_id: self.app._get(Run, run_id) for run_id in run_ids}
            for post in posts:
                post.request_publish(now)
                runs[post.run_id].record_outcome(post.id, post.status)
            self.app.save(*posts, *runs.values())
        return len(posts)

    @retry_on_conflict
    def request_publish(self, post_id: UUID) -> bool:
        """Hands a due post to the workers; False when it is not due (another scheduler was first)."""
        post = self.app._find(Post, post_id)
        now = self.clock.now()
        if post is None or not post.is_due(now):
            return False
        post.request_publish(now)
        self._save_with_run(post)
        return True

    def take_over(self, post_id: UUID, handed_before: datetime) -> str | None:
        """Publishes a post handed over before `handed_before` that no worker has started (its worker died
        and the partition has not moved yet, or the workers are behind); the post's version lets only one
        of the scheduler and a worker start it. Returns the post's new status (None: nothing to do)."""
        return self.publish(post_id, handed_before=handed_before)

    def publish(self, post_id: UUID, *, handed_before: datetime | None = None) -> str | None:
        """One attempt at a post the scheduler handed over (before `handed_before`, if given, and not started
        since); returns the post's new status (None: nothing to do)."""
        started = self._start_attempt(post_id, handed_before)
        if started is None:
            return None
        post, n = started
        if n == 0:
            return post.status
        connection = self.app._get(Connection, post.account_id)
        try:
            receipt = self.publishers(post.provider).publish(self._credentials(connection), self._outgoing(post))
        except PublishError as error:
            return self._attempt_failed(post.id, n, error)
        return self._attempt_published(post.id, n, receipt)

    @retry_on_conflict
    def _start_attempt(self, post_id: UUID, handed_before: datetime | None) -> tuple[Post, int] | None:
        post = self.app._find(Post, post_id)
        if post is None or post.status != "publishing":
            return None
        if handed_before is not None and (
            post.in_flight is not None or post.publish_requested_at is None or post.publish_requested_at >= handed_before
        ):
            return None  # a take-over, of a hand-over that is recent or that a worker has started
        now = self.clock.now()
        if post.in_flight is not None:
            if post.in_flight.started_at + self.abandoned_after > now:
                return None  # handed over twice: the first worker is still on it
            # Redelivered after a crash mid-attempt: the platform may have the post. Never resend blindly;
            # the sweeper reconciles it with the platform where the platform can be asked.
            post.mark_outcome_unknown(post.in_flight.n, now, "The publishing worker stopped during the attempt.")
            self._save_with_run(post)
            return post, 0
        connection = self.app._find(Connection, post.account_id)
        if connection is None or not connection.is_connected:
            post.fail_attempt(post.start_attempt(now), now, "The account is not connected.")
            self._save_with_run(post)
            return post, 0
        limited = self._held_back(post, now)
        if limited is not None:
            post.delay(*limited)
            self._save_with_run(post)
            return post, 0
        n = post.start_attempt(now)
        self.app.save(post)  # the run follows its posts' phases, and a post being sent stays in the one it was in
        return post, n

    def _held_back(self, post: Post, now: datetime) -> tuple[datetime, str] | None:
        """Why the post must wait, and until when: posts go out in order per account, within its rate limits."""
        if self.queries.earlier_post_open(post.account_id, post.id, post.publish_at):
            return now + ORDER_WAIT, "waiting: an earlier post to this account has not gone out yet"
        spec = provider_spec(post.provider)
        if spec.posts_per_minute and self.queries.published_since(post.account_id, now - timedelta(minutes=1)) >= spec.posts_per_minute:
            return now + timedelta(minutes=1), f"rate_limited: {spec.posts_per_minute} posts a minute on {spec.display_name}"
        if spec.daily_cap and self.queries.published_since(post.account_id, now - timedelta(days=1)) >= spec.daily_cap:
            return now + timedelta(hours=1), f"daily_cap: {spec.daily_cap} posts a day on {spec.display_name}"
        return None

    @retry_on_conflict
    def _attempt_published(self, post_id: UUID, n: int, receipt: Receipt) -> str:
        post = self.app._get(Post, post_id)
        post.complete_attempt(n, receipt.provider_post_id, receipt.url, self.clock.now())
        self._save_with_run(post)
        return post.status

    @retry_on_conflict
    def _attempt_failed(self, post_id: UUID, n: int, error: PublishError) -> str:
        post = self.app._get(Post, post_id)
        now = self.clock.now()
        if error.sent:
            post.mark_outcome_unknown(n, now, error.message)
        else:
            retry_at = now + self._backoff(post.attempts_this_round, error.retry_after) if error.retryable else None
            post.fail_attempt(n, now, error.message, http_status=error.http_status, retry_at=retry_at, max_attempts=self.max_attempts)
        self._save_with_run(post)
        return post.status

    @staticmethod
    def _backoff(attempts: int, retry_after: float | None) -> timedelta:
        if retry_after is not None:
            return timedelta(seconds=retry_after)
        backoff: timedelta = RETRY_BASE * 2 ** max(attempts - 1, 0)
        return min(RETRY_MAX, backoff)

    # Helpers

    def _credentials(self, connection: Connection) -> dict[str, str]:
        if connection.credentials_sealed is None:
            raise InvalidState(f"Account {connection.id} is {connection.status}; it has no credentials.")
        return self.sealer.open(connection.credentials_sealed, context=str(connection.id))

    def _outgoing(self, post: Post) -> Outgoing:
        return Outgoing(post_id=str(post.id), idempotency_key=post.idempotency_key, text=post.text, media=tuple(self._attachments(post)))

    def _attachments(self, post: Post) -> Iterator[Attachment]:
        for name in post.assets:
            try:
                asset = self.app._get(Asset, UUID(name), post.workspace_id)
            except ValueError:
                continue  # a URL the platform fetches itself
            content = self.media.read(asset.storage_key)
            yield Attachment(content=content, mime=asset.mime, url=self.media_url(asset), filename=asset.filename)

    @contextmanager
    def _run_exclusively(self, run_id: UUID) -> Iterator[None]:
        # Posts of one run finish together; queueing them here beats colliding on the run's version.
        with self._run_locks[run_id.int % RUN_LOCK_STRIPES]:
            yield

    def _save_with_run(self, post: Post, *others: Any) -> None:
        """Saves the post, and its run with the post's new status, in one transaction."""
        with self._run_exclusively(post.run_id):
            run = self.app._get(Run, post.run_id)
            run.record_outcome(post.id, post.status)
            self.app.save(post, run, *others)
