"""The composition root: builds every part of Pressroom from Settings, and nothing at import time."""

from __future__ import annotations

import os
import socket
import threading
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any, TypeVar, cast
from uuid import UUID

import psycopg
import structlog
from eventsourcing.postgres import PostgresDatastore
from psycopg_pool import ConnectionPool

from adapters import heartbeats, webhook_deliveries
from adapters.advisory_locks import AdvisoryLocks
from adapters.consumers import ConsumerLoop, run_in_thread
from adapters.copy_local import LocalCopyProvider
from adapters.event_batches import events_after_for
from adapters.eventstore import EventLogRecorder, SystemClock, open_application
from adapters.generation_worker import GenerationWorker
from adapters.integration_events import all_topics, dead_letter_topic, topic_for
from adapters.kafka import consumer, create_topics, producer
from adapters.key_lookup import KeyLookup
from adapters.lemonsqueezy import LemonSqueezy
from adapters.media import LocalMediaStore, MediaSigner
from adapters.notifications import EventNotifier
from adapters.oauth import OAuthClient, oauth_client_for
from adapters.outbound_http import OutboundOptions, make_client
from adapters.publishers import publisher_for
from adapters.relay import KafkaRelay
from adapters.settings import Settings, parse_pairs
from adapters.takeover import Takeover
from adapters.token_cipher import TokenCipher
from adapters.webhook_dispatcher import WebhookDispatcher, WebhookSigner
from application.campaigns import Campaigns
from application.group_commit import JobRequestBatcher
from application.integration_events import Envelope
from application.metadata import metadata
from application.oauth_connections import REFRESH_MARGIN, OAuthConnections
from application.ports import Clock, CopyWriter, ImageMaker, MediaStore, Publisher, VideoMaker
from application.pressroom import Pressroom
from application.publishing import Publishing
from domain.errors import DomainError
from projections.api_keys import USAGE_DDL, UseRecorder
from projections.campaign_pipeline import CampaignPipeline
from projections.catalog import READ_MODELS
from projections.connections import token_expiring
from projections.credit_accounts import due_for_renewal
from projections.engine import LogFollower, ProjectionGroup, ProjectionView, TrackedConsumer
from projections.jobs import overdue_jobs, unfinished_jobs
from projections.posts import due_posts, stale_handovers, unsettled_posts
from projections.publishing_queries import PublishingReadModels

log = structlog.get_logger()

T = TypeVar("T")
# Posts handed over per transaction: each makes about two events (the post's, its run's).
HANDOVER_BATCH = 100
MIGRATION_LOCK = 0x5052_4553  # any constant shared by every migrating process


def process_name(kind: str, settings: Settings) -> str:
    return settings.worker_id or f"{kind}@{socket.gethostname()}:{os.getpid()}"


class ServiceFailed(Exception):
    """A service's loop failed: the process stops, so that it is restarted whole."""


class Container:
    """Everything one process needs, built lazily from settings."""

    def __init__(self, settings: Settings, clock: Clock | None = None) -> None:
        if settings.database_url is None:
            raise SystemExit("PRESSROOM_DATABASE_URL is not set: run `pressroom up`, which sets it, or set it to your PostgreSQL.")
        self.settings = settings
        self.database_url: str = settings.database_url
        self.clock = clock or SystemClock()
        self._parts: dict[str, Any] = {}
        # The parts are built on first use, often by several threads at once: build each once.
        self._building = threading.RLock()

    def _once(self, name: str, build: Callable[[], T]) -> T:
        with self._building:
            if name not in self._parts:
                self._parts[name] = build()
            return cast(T, self._parts[name])

    @property
    def app(self) -> Pressroom:
        def build() -> Pressroom:
            app = open_application(
                self.database_url,
                pool_size=self.settings.db_pool_size,
                lease_seconds=self.settings.job_lease_seconds,
                video_lease_seconds=self.settings.video_lease_seconds,
                max_attempts=self.settings.job_max_attempts,
                pricing=self.settings.pricing(),
                clock=self.clock,
                media=self.media_store,
            )
            app.events_after = events_after_for(app.recorder)
            if self.settings.event_log_as_shipped and isinstance(app.recorder, EventLogRecorder):
                app.recorder.write_as_shipped()
            if self.settings.group_commit:
                if isinstance(app.recorder, EventLogRecorder):
                    self._parts["grouped_inserts"] = app.recorder.group_inserts()
                app.job_batcher = JobRequestBatcher(
                    app,
                    max_batch=self.settings.group_commit_max_batch,
                    max_queue=self.settings.group_commit_max_queue,
                    max_queue_per_workspace=self.settings.group_commit_max_queue_per_workspace,
                )
            return app

        return self._once("app", build)

    @property
    def pool(self) -> ConnectionPool[Any]:
        """Connections for read models and operational tables."""
        return self._once(
            "pool",
            lambda: ConnectionPool(
                self.database_url, min_size=1, max_size=self.settings.db_pool_size, open=True, kwargs={"autocommit": True}
            ),
        )

    @property
    def key_lookup(self) -> KeyLookup:
        return self._once("key_lookup", lambda: KeyLookup(self.database_url, self.app))

    @property
    def key_use(self) -> UseRecorder:
        return self._once("key_use", lambda: UseRecorder(self.pool))

    @property
    def payments(self) -> LemonSqueezy:
        def build() -> LemonSqueezy:
            packs = {variant: int(amount) for variant, amount in parse_pairs(self.settings.credit_packs).items()}
            return LemonSqueezy(self.settings.billing_webhook_secret, packs, parse_pairs(self.settings.billing_plans))

        return self._once("payments", build)

    @property
    def media_store(self) -> MediaStore:
        return self._once("media_store", lambda: media_store(self.settings))

    @property
    def signer(self) -> MediaSigner:
        return self._once("signer", lambda: MediaSigner(required(self.settings, "secret_key", "signing media URLs")))

    @property
    def kafka_bootstrap(self) -> str:
        return required(self.settings, "kafka_bootstrap", "this process")

    @property
    def datastore(self) -> PostgresDatastore:
        def build() -> PostgresDatastore:
            env = self.app.env
            return PostgresDatastore(
                dbname=env["POSTGRES_DBNAME"],
                host=env["POSTGRES_HOST"],
                port=env["POSTGRES_PORT"],
                user=env["POSTGRES_USER"],
                password=env["POSTGRES_PASSWORD"],
                schema="public",
                pool_size=4,
                max_overflow=4,
                lock_timeout=5,
            )

        return self._once("datastore", build)

    def views(self) -> list[ProjectionView]:
        return [ProjectionView(self.datastore, read_model, self.app.name) for read_model in READ_MODELS]

    def close(self) -> None:
        for name in ("event_notifier", "grouped_inserts", "app", "pool", "datastore"):
            if name in self._parts:
                self._parts[name].close()

    async def aclose(self) -> None:
        """`close`, in the API process: the key lookup's connections belong to its event loop."""
        if "key_lookup" in self._parts:
            await self.key_lookup.close()
        self.close()

    # One-shot setup

    def migrate(self) -> None:
        """Creates every table and topic; safe to run again, and serialised across processes."""
        with psycopg.connect(self.database_url, autocommit=True) as conn:
            conn.execute("SELECT pg_advisory_lock(%s)", (MIGRATION_LOCK,))
            try:
                open_application(self.database_url, pool_size=1, create_tables=True).close()
                for view in self.views():
                    view.create_table()
                KafkaRelay(self.datastore, None, self.app.name, self.settings.kafka_namespace).create_table()  # type: ignore[arg-type]
                TrackedConsumer(self.datastore, "campaign_pipeline", self.app.name).create_table()
                conn.execute(heartbeats.DDL)  # type: ignore[arg-type]
                conn.execute(USAGE_DDL)  # type: ignore[arg-type]
                for statement in webhook_deliveries.DDL:
                    conn.execute(statement)  # type: ignore[arg-type]
            finally:
                conn.execute("SELECT pg_advisory_unlock(%s)", (MIGRATION_LOCK,))
        if self.settings.kafka_bootstrap:
            create_topics(self.settings.kafka_bootstrap, self.settings.kafka_namespace)

    # Long-running processes: each runs until `stop` is set

    def _beating(self, kind: str, stop: threading.Event) -> None:
        name, started = process_name(kind, self.settings), datetime.now(UTC)
        while True:
            try:
                heartbeats.beat(self.pool, name, kind, datetime.now(UTC), started)
            except Exception as error:  # noqa: BLE001 - a missed beat only makes /health pessimistic
                log.warning("heartbeat_failed", error=repr(error))
            if stop.wait(5.0):
                return

    def run_with_heartbeat(self, kind: str, stop: threading.Event, *bodies: Callable[[threading.Event], None]) -> None:
        """Runs a service's loops, each in a thread, and its heartbeat, until `stop` is set. A loop that ends
        by itself, or fails, stops the others and the heartbeat: the process then raises ServiceFailed and
        exits, to be started again by its supervisor, rather than beat on with a part of it dead."""
        failures: list[BaseException] = []

        def supervised(body: Callable[[threading.Event], None]) -> Callable[[threading.Event], None]:
            def run(stop: threading.Event) -> None:
                try:
                    body(stop)
                except BaseException as error:  # noqa: BLE001 - whatever ended it, the process must stop and say so
                    failures.append(error)
                    log.error("service_loop_failed", service=kind, error=repr(error))
                finally:
                    stop.set()

            return run

        threads = [run_in_thread(lambda s: self._beating(kind, s), stop, f"{kind}-heartbeat")]
        threads += [run_in_thread(supervised(body), stop, f"{kind}-{i}") for i, body in enumerate(bodies)]
        for thread in threads:
            thread.join()
        if failures:
            raise ServiceFailed(f"{kind}: {failures[0]!r}") from failures[0]

    def run_projections(self, stop: threading.Event) -> None:
        follower = LogFollower(self.app, ProjectionGroup(self.datastore, self.views()), database_url=self.database_url)
        self.run_with_heartbeat("projections", stop, follower.run)

    def run_relay(self, stop: threading.Event) -> None:
        bootstrap = self.kafka_bootstrap
        relay = KafkaRelay(self.datastore, producer(bootstrap), self.app.name, self.settings.kafka_namespace)
        gather = self.settings.relay_gather_ms / 1000
        self.run_with_heartbeat("relay", stop, LogFollower(self.app, relay, database_url=self.database_url, gather_seconds=gather).run)

    def run_generation_worker(self, stop: threading.Event) -> None:
        bootstrap = self.kafka_bootstrap
        worker = GenerationWorker(self.app, *providers(self.settings), process_name("worker", self.settings))
        namespace = self.settings.kafka_namespace
        loop = ConsumerLoop(
            consumer(self.settings, f"{namespace}-generation", [topic_for("jobs", namespace)]),
            worker.handle,
            dead_letters=producer(bootstrap),
            dead_letter_topic=dead_letter_topic(namespace),
        )
        self.run_with_heartbeat("worker", stop, loop.run)

    @property
    def event_notifier(self) -> EventNotifier:
        return self._once("event_notifier", lambda: EventNotifier(self.database_url, f"{self.app.name}_events".lower()))

    @property
    def publishing(self) -> Publishing:
        def build() -> Publishing:
            settings = self.settings
            options = OutboundOptions(
                connect_timeout=settings.publish_connect_timeout_seconds,
                read_timeout=settings.publish_read_timeout_seconds,
                attempts=1,
                allow_private=settings.allow_private_urls,
            )
            publishers: dict[str, Publisher] = {}
            lock = threading.Lock()

            def publisher(provider: str) -> Publisher:
                with lock:
                    if provider not in publishers:
                        bases = {"bluesky": settings.bluesky_base_url, "telegram": settings.telegram_base_url}
                        publishers[provider] = publisher_for(provider, options, bases)
                    return publishers[provider]

            return Publishing(
                self.app,
                publishers=publisher,
                sealer=self.sealer,
                queries=PublishingReadModels(self.pool),
                media_url=lambda asset: settings.base_url() + self.signer.url(asset.id, asset.filename),
                max_attempts=settings.publish_max_attempts,
                abandoned_after=timedelta(seconds=settings.reconcile_after_seconds),
            )

        return self._once("publishing", build)

    @property
    def sealer(self) -> TokenCipher:
        return self._once(
            "sealer",
            lambda: TokenCipher.from_config(self.settings.token_key, required(self.settings, "secret_key", "sealing account credentials")),
        )

    @property
    def oauth(self) -> OAuthConnections:
        def build() -> OAuthConnections:
            clients: dict[str, OAuthClient] = {}
            lock = threading.Lock()

            def client(provider: str) -> OAuthClient:
                with lock:
                    if provider not in clients:
                        clients[provider] = oauth_client_for(provider, self.settings, clock=self.clock)
                    return clients[provider]

            return OAuthConnections(
                self.app,
                clients=client,
                sealer=self.sealer,
                redirect_base=self.settings.base_url(),
                locks=AdvisoryLocks(self.pool, "oauth-refresh"),
            )

        return self._once("oauth", build)

    def refresh_tokens_once(self) -> int:
        """Refreshes every OAuth account whose token runs out within REFRESH_MARGIN; returns how many this call refreshed."""
        refreshed = 0
        for connection_id in token_expiring(self.pool, self.clock.now() + REFRESH_MARGIN):
            try:
                refreshed += self.oauth.refresh_due(connection_id, REFRESH_MARGIN)
            except DomainError as error:
                log.warning("token_refresh_failed", connection_id=str(connection_id), error=error.detail)
        if refreshed:
            log.info("tokens_refreshed", count=refreshed)
        return refreshed

    @property
    def campaigns(self) -> Campaigns:
        def build() -> Campaigns:
            from adapters.product_page import ProductPageAnalyzer

            analyzer = ProductPageAnalyzer(OutboundOptions(allow_private=self.settings.allow_private_urls))
            return Campaigns(self.app, analyzer=analyzer, publishing=lambda: self.publishing)

        return self._once("campaigns", build)

    def campaign_pipeline(self) -> CampaignPipeline:
        return CampaignPipeline(self.datastore, self.campaigns, self.app.name, actor=process_name("campaigns", self.settings))

    def run_campaigns(self, stop: threading.Event) -> None:
        """The campaign process manager: follows the log with its own tracking position and moves campaigns on."""
        gather = self.settings.campaigns_gather_ms / 1000
        follower = LogFollower(self.app, self.campaign_pipeline(), database_url=self.database_url, batch_size=100, gather_seconds=gather)
        self.run_with_heartbeat("campaigns", stop, follower.run)

    def schedule_once(self) -> int:
        """Hands every due post to the publishing workers; returns how many this call handed over."""
        handed = 0
        due = due_posts(self.pool, self.clock.now())
        for start in range(0, len(due), HANDOVER_BATCH):
            batch = due[start : start + HANDOVER_BATCH]
            try:
                handed += self.publishing.request_publish_many(batch)
            except DomainError as error:  # another scheduler took some of them: one at a time
                log.info("posts_handed_over_one_by_one", posts=len(batch), error=error.detail)
                handed += sum(self._hand_over(post_id) for post_id in batch)
        return handed

    def _hand_over(self, post_id: UUID) -> bool:
        try:
            return self.publishing.request_publish(post_id)
        except DomainError as error:
            log.info("post_not_handed_over", post_id=str(post_id), error=error.detail)
            return False

    @property
    def scheduler_actor(self) -> str:
        return f"scheduler:{process_name('sweeper', self.settings)}"

    @property
    def takeover(self) -> Takeover:
        return self._once(
            "takeover",
            lambda: Takeover(
                self.publishing,
                lambda handed_before: stale_handovers(self.pool, handed_before),
                self.clock,
                timedelta(seconds=self.settings.takeover_after_seconds),
                actor=self.scheduler_actor,
            ),
        )

    def settle_posts_once(self) -> int:
        """Reconciles unknown posts and re-drives posts a vanished worker left in publishing; returns how many it moved."""
        idle_since = self.clock.now() - self.publishing.abandoned_after
        moved = 0
        for post_id in unsettled_posts(self.pool, ("publishing", "unknown"), idle_since):
            try:
                outcome = self.publishing.settle_unsettled(post_id, idle_since)
            except DomainError as error:  # moved by someone else meanwhile
                log.info("post_not_settled", post_id=str(post_id), error=error.detail)
                continue
            if outcome is not None:
                log.info("post_settled", post_id=str(post_id), outcome=outcome)
                moved += 1
        return moved

    def run_publishing_worker(self, stop: threading.Event) -> None:
        namespace = self.settings.kafka_namespace
        publishing = self.publishing

        def handle(envelope: Envelope) -> None:
            if envelope.type == "post.publish_requested":
                with metadata(actor=f"publisher:{process_name('publisher', self.settings)}"):
                    publishing.publish(envelope.aggregate_id)

        loop = ConsumerLoop(
            consumer(self.settings, f"{namespace}-publishing", [topic_for("posts", namespace)]),
            handle,
            dead_letters=producer(self.kafka_bootstrap),
            dead_letter_topic=dead_letter_topic(namespace),
        )
        self.run_with_heartbeat("publisher", stop, loop.run)

    @property
    def webhook_signer(self) -> WebhookSigner:
        return self._once("webhook_signer", lambda: WebhookSigner(required(self.settings, "secret_key", "signing webhooks")))

    def webhook_dispatcher(self) -> WebhookDispatcher:
        settings = self.settings
        return WebhookDispatcher(
            self.pool,
            webhook_deliveries.DeliveryQueue(self.pool, settings.webhook_retries()),
            self.webhook_signer,
            make_client(read_timeout=settings.webhook_timeout_seconds, allow_private=settings.allow_private_urls),
            self.clock,
            concurrency=settings.webhook_concurrency,
        )

    def run_webhooks(self, stop: threading.Event) -> None:
        namespace = self.settings.kafka_namespace
        dispatcher = self.webhook_dispatcher()
        loop = ConsumerLoop(
            consumer(self.settings, f"{namespace}-webhooks", [t for t in all_topics(namespace) if t != dead_letter_topic(namespace)]),
            dispatcher.handle,
            dead_letters=producer(self.kafka_bootstrap),
            dead_letter_topic=dead_letter_topic(namespace),
            handle_batch=dispatcher.handle_batch,
        )
        try:
            self.run_with_heartbeat("webhooks", stop, loop.run, dispatcher.run)
        finally:
            dispatcher.client.close()

    def sweep_once(self) -> int:
        """Expires jobs that made no progress before their deadline, then re-drives every job nobody
        is working on; returns how many jobs it changed."""
        now = self.clock.now()
        deadline = timedelta(seconds=self.settings.job_deadline_seconds)
        expired = sum(self.app.expire_job(job_id, deadline) for job_id in overdue_jobs(self.pool, no_progress_since=now - deadline))
        if expired:
            log.info("jobs_expired", count=expired)
        stale_before = now - timedelta(seconds=self.settings.requeue_after_seconds)
        redriven = expired
        for job_id in unfinished_jobs(self.pool, idle_since=stale_before, lease_over_at=now):
            if self.app.redrive_job(job_id, stale_before):
                redriven += 1
        if redriven:
            log.info("jobs_redriven", count=redriven)
        return redriven

    def renew_periods_once(self) -> int:
        """Starts the new period of every account whose period ended; returns how many this call started."""
        renewed = sum(self.app.renew_period(workspace_id) for workspace_id in due_for_renewal(self.pool, self.clock.now()))
        if renewed:
            log.info("credit_periods_renewed", count=renewed)
        return renewed

    def run_sweeper(self, stop: threading.Event) -> None:
        def sweep(stop: threading.Event) -> None:
            while not stop.wait(self.settings.sweep_interval_seconds):
                try:
                    with metadata(actor=f"sweeper:{process_name('sweeper', self.settings)}"):
                        self.sweep_once()
                        self.renew_periods_once()
                        self.settle_posts_once()
                        self.refresh_tokens_once()
                except Exception as error:  # noqa: BLE001 - the next sweep tries again
                    log.error("sweep_failed", error=repr(error))

        def schedule(stop: threading.Event) -> None:
            while not stop.wait(self.settings.schedule_interval_seconds):
                try:
                    with metadata(actor=self.scheduler_actor):
                        self.schedule_once()
                        self.takeover.once()
                except Exception as error:  # noqa: BLE001 - the next round tries again
                    log.error("schedule_failed", error=repr(error))

        try:
            self.run_with_heartbeat("sweeper", stop, sweep, schedule)
        finally:
            self.takeover.close()


def providers(settings: Settings) -> tuple[CopyWriter, ImageMaker, VideoMaker]:
    """The copy writer, image maker and video maker that settings choose; the `local` ones need no key."""
    from adapters.fal_provider import FalImageMaker
    from adapters.heygen_provider import HeyGenVideoMaker
    from adapters.image_local import LocalImageMaker
    from adapters.openai_provider import OpenAICopyWriter, OpenAIImageMaker
    from adapters.outbound_http import OutboundOptions
    from adapters.video_local import LocalVideoMaker

    options = OutboundOptions(
        read_timeout=settings.provider_read_timeout_seconds,
        attempts=settings.provider_attempts,
        allow_private=settings.allow_private_urls,
    )

    def key(name: str) -> str:
        return required(settings, name, f"the chosen {name.split('_', maxsplit=1)[0]} provider")

    copy: CopyWriter = (
        OpenAICopyWriter(settings.openai_base_url, key("openai_api_key"), settings.openai_copy_model, options=options)
        if settings.copy_provider == "openai"
        else LocalCopyProvider()
    )
    image: ImageMaker
    if settings.image_provider == "openai":
        image = OpenAIImageMaker(settings.openai_base_url, key("openai_api_key"), settings.openai_image_model, options=options)
    elif settings.image_provider == "fal":
        image = FalImageMaker(key("fal_api_key"), settings.fal_model, queue_base=settings.fal_queue_url, options=options)
    else:
        image = LocalImageMaker()
    video: VideoMaker = (
        HeyGenVideoMaker(key("heygen_api_key"), key("heygen_avatar_id"), base_url=settings.heygen_base_url, options=options)
        if settings.video_provider == "heygen"
        else LocalVideoMaker()
    )
    return copy, image, video


def required(settings: Settings, name: str, needed_by: str) -> str:
    value = getattr(settings, name)
    if not value:
        raise SystemExit(f"PRESSROOM_{name.upper()} is not set, and {needed_by} needs it.")
    return str(value)


def media_store(settings: Settings) -> MediaStore:
    """The local filesystem under DATA_DIR/media, or any S3 API."""
    if settings.media_store != "s3":
        return LocalMediaStore(settings.data_dir / "media")
    from adapters.media_s3 import S3MediaStore

    return S3MediaStore(
        required(settings, "s3_bucket", "PRESSROOM_MEDIA_STORE=s3"),
        endpoint_url=settings.s3_endpoint_url,
        access_key_id=required(settings, "s3_access_key_id", "PRESSROOM_MEDIA_STORE=s3"),
        secret_access_key=required(settings, "s3_secret_access_key", "PRESSROOM_MEDIA_STORE=s3"),
        region=settings.s3_region,
        prefix=settings.s3_prefix,
    )
