"""Webhook delivery: a Kafka consumer group queues each event for the workspace's webhooks, and a
delivery loop POSTs what is due, signed, retrying on the configured schedule.

Signature (API.md): `Pressroom-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256(secret, "<t>.<body>")>`.
A webhook's secret is derived from the server's secret key and the webhook id, so it is never stored
nor put in an event; rotating PRESSROOM_SECRET_KEY rotates every webhook secret.
Delivery is at least once: a receiver dedupes by the envelope id (also in `Pressroom-Event-Id`).
"""

from __future__ import annotations

import hashlib
import hmac
import threading
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime
from typing import Any
from uuid import UUID

import httpx
import structlog
from psycopg_pool import ConnectionPool

from adapters.webhook_deliveries import DeliveryQueue, Due
from application.integration_events import Envelope
from application.ports import Clock, ProviderError
from domain.webhook import subscribes_to
from projections.webhooks import WebhookRow, live_webhooks_of

log = structlog.get_logger()

SIGNATURE_HEADER = "Pressroom-Signature"
REPLAY_REQUESTED = "webhook.replay_requested"
ERROR_LIMIT = 300


class WebhookSigner:
    def __init__(self, secret_key: str) -> None:
        self._key = secret_key.encode()

    def secret_for(self, webhook_id: UUID) -> str:
        return "whsec_" + hmac.new(self._key, f"webhook:{webhook_id}".encode(), hashlib.sha256).hexdigest()


def signature(secret: str, timestamp: int, body: bytes) -> str:
    """The `Pressroom-Signature` header value for `body` sent at `timestamp` (unix seconds)."""
    digest = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256).hexdigest()
    return f"t={timestamp},v1={digest}"


class WebhookDispatcher:
    def __init__(
        self,
        pool: ConnectionPool[Any],
        queue: DeliveryQueue,
        signer: WebhookSigner,
        client: httpx.Client,
        clock: Clock,
        *,
        concurrency: int = 8,
    ) -> None:
        self.pool = pool
        self.queue = queue
        self.signer = signer
        self.client = client
        self.clock = clock
        self.concurrency = concurrency
        self._wake = threading.Event()
        self._lock = threading.Lock()
        self._in_flight = 0

    # The Kafka side: queue, never send, so a slow receiver cannot hold up the consumer group.

    def handle(self, envelope: Envelope) -> None:
        self.handle_batch([envelope])

    def handle_batch(self, envelopes: list[Envelope]) -> None:
        """Queues a poll's events with one read of the live webhooks of the workspaces they belong to, rather
        than one per event; an event no webhook subscribes to writes nothing. Queuing an event twice queues it once."""
        now = self.clock.now()
        live = live_webhooks_of(self.pool, {e.workspace_id for e in envelopes})
        queued = 0
        for envelope in envelopes:
            webhooks = live.get(envelope.workspace_id, [])
            if envelope.type == REPLAY_REQUESTED:
                queued += self._queue_replay(envelope, webhooks, now)
                continue
            targets = [w.id for w in webhooks if w.created_at <= envelope.occurred_at and subscribes_to(tuple(w.events), envelope.type)]
            queued += self.queue.enqueue(targets, envelope, now)
        if queued:
            self._wake.set()

    def _queue_replay(self, envelope: Envelope, live: list[WebhookRow], now: datetime) -> int:
        webhook = next((w for w in live if w.id == envelope.aggregate_id), None)
        if webhook is None:
            return 0
        queued = self.queue.enqueue_replay(
            webhook.id, int(envelope.data["replay"]), envelope.workspace_id, int(envelope.data["after"]), webhook.events, now
        )
        log.info(
            "webhook_replay_queued", event_id=str(envelope.id), webhook_id=str(webhook.id), after=envelope.data["after"], deliveries=queued
        )
        return queued

    # The delivery side.

    def run(self, stop: threading.Event) -> None:
        """Keeps every delivery thread busy: a slot freed by a finished delivery is filled at once, so one
        slow receiver holds one slot, not a whole round of deliveries to everyone."""
        with ThreadPoolExecutor(max_workers=self.concurrency, thread_name_prefix="webhook") as pool:
            while not stop.is_set():
                self._wake.clear()
                with self._lock:
                    free = self.concurrency - self._in_flight
                if free > 0:
                    try:
                        due = self.queue.claim(self.clock.now(), free)
                    except Exception as error:  # noqa: BLE001 - the next round tries again; claims lapse on their own
                        log.error("webhook_claim_failed", error=repr(error))
                        due = []
                    for delivery in due:
                        with self._lock:
                            self._in_flight += 1
                        pool.submit(self._deliver_in_slot, delivery)
                    if len(due) == free:
                        continue
                    self._wake.wait(self._idle_seconds())
                else:
                    self._wake.wait(1.0)  # every slot busy: a finished delivery wakes the loop

    def _deliver_in_slot(self, due: Due) -> None:
        try:
            self.deliver(due)
        except Exception as error:  # noqa: BLE001 - the claim lapses and the delivery is tried again
            log.error("webhook_delivery_crashed", webhook_id=str(due.webhook_id), error=repr(error))
        finally:
            with self._lock:
                self._in_flight -= 1
            self._wake.set()

    def _idle_seconds(self) -> float:
        next_at = self.queue.next_due(self.clock.now())
        if next_at is None:
            return 1.0
        return min(1.0, max(0.01, (next_at - self.clock.now()).total_seconds()))

    def deliver(self, due: Due) -> str:
        if due.url is None:
            self.queue.drop(due)
            return "canceled"
        body = due.body.encode()
        timestamp = int(self.clock.now().timestamp())
        headers = {
            "Content-Type": "application/json",
            SIGNATURE_HEADER: signature(self.signer.secret_for(due.webhook_id), timestamp, body),
            "Pressroom-Event-Id": str(due.event_id),
            "Pressroom-Event-Type": due.event_type,
            "Pressroom-Delivery-Attempt": str(due.attempts + 1),
        }
        http_status: int | None = None
        error: str | None = None
        try:
            response = self.client.post(due.url, content=body, headers=headers)
            http_status = response.status_code
            if not response.is_success:
                error = f"HTTP {response.status_code}"
        except ProviderError as refused:  # the address guard
            error = refused.message
        except httpx.HTTPError as failure:
            error = f"{type(failure).__name__}: {failure}"[:ERROR_LIMIT]
        status = self.queue.record(due, self.clock.now(), delivered=error is None, http_status=http_status, error=error)
        log.info("webhook_attempt", webhook_id=str(due.webhook_id), event_id=str(due.event_id), status=status, http_status=http_status)
        return status


def decode_signature(header: str) -> tuple[int, str]:
    """(t, v1) from a `Pressroom-Signature` header; ValueError when it is not one."""
    parts = dict(part.split("=", 1) for part in header.split(",") if "=" in part)
    return int(parts["t"]), parts["v1"]


def verify(secret: str, header: str, body: bytes, *, now: float, tolerance: float = 300.0) -> bool:
    """What a receiver does: recompute the signature and refuse stale timestamps (replayed requests)."""
    try:
        timestamp, _ = decode_signature(header)
    except (KeyError, ValueError):
        return False
    return abs(now - timestamp) <= tolerance and hmac.compare_digest(signature(secret, timestamp, body), header)
