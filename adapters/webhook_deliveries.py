"""The webhook delivery queue and log: what is owed to each webhook, and every attempt made.

Deliveries are transport bookkeeping, like Kafka offsets, not business facts: they live in two plain
tables rather than as events (as events they would be delivered to the webhooks in turn). A delivery
is keyed by (webhook, event, replay), so a redelivered Kafka message queues nothing twice, while a
replay (numbered by the webhook) queues its events again.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any
from uuid import UUID

import msgspec
from psycopg.rows import class_row
from psycopg_pool import ConnectionPool

from application.integration_events import Envelope
from domain.webhook import ALL_EVENTS

DDL = (
    """CREATE TABLE IF NOT EXISTS webhook_deliveries (
        webhook_id uuid NOT NULL, event_id uuid NOT NULL, replay integer NOT NULL, event_type text NOT NULL,
        body text NOT NULL, status text NOT NULL, attempts integer NOT NULL, next_at timestamptz NOT NULL,
        claimed_until timestamptz, created_at timestamptz NOT NULL,
        PRIMARY KEY (webhook_id, event_id, replay))""",
    "CREATE INDEX IF NOT EXISTS webhook_deliveries_due ON webhook_deliveries (next_at) WHERE status = 'pending'",
    """CREATE TABLE IF NOT EXISTS webhook_attempts (
        id bigserial PRIMARY KEY, webhook_id uuid NOT NULL, event_id uuid NOT NULL, event_type text NOT NULL,
        replay integer NOT NULL, attempt integer NOT NULL, status text NOT NULL, http_status integer, error text,
        at timestamptz NOT NULL)""",
    "CREATE INDEX IF NOT EXISTS webhook_attempts_by_webhook ON webhook_attempts (webhook_id, id)",
)


class Due(msgspec.Struct, kw_only=True):
    """A delivery claimed for one attempt; `url` is None when its webhook was removed meanwhile."""

    webhook_id: UUID
    event_id: UUID
    replay: int
    event_type: str
    body: str
    attempts: int
    url: str | None


class AttemptRow(msgspec.Struct, kw_only=True):
    id: int
    event_id: UUID
    event_type: str
    replay: int
    attempt: int
    status: str  # delivered | retrying | failed
    http_status: int | None
    error: str | None
    at: datetime


class DeliveryQueue:
    def __init__(self, pool: ConnectionPool[Any], retries: Sequence[float], claim_for: timedelta = timedelta(minutes=2)) -> None:
        self.pool = pool
        self.retries = tuple(retries)
        self.claim_for = claim_for

    def enqueue(self, webhook_ids: Sequence[UUID], envelope: Envelope, now: datetime) -> int:
        """Queues one live event for these webhooks; returns how many deliveries were new."""
        if not webhook_ids:
            return 0
        body = msgspec.json.encode(envelope).decode()
        with self.pool.connection() as conn:
            cursor = conn.execute(
                "INSERT INTO webhook_deliveries (webhook_id, event_id, replay, event_type, body, status, attempts, next_at, created_at) "
                "SELECT w, %s, 0, %s, %s, 'pending', 0, %s, %s FROM unnest(%s::uuid[]) AS w ON CONFLICT DO NOTHING",
                (envelope.id, envelope.type, body, now, now, list(webhook_ids)),
            )
            return int(cursor.rowcount)

    def enqueue_replay(self, webhook_id: UUID, replay: int, workspace_id: UUID, after: int, patterns: Sequence[str], now: datetime) -> int:
        """Queues again every event of the workspace after log position `after` that the webhook subscribes to."""
        every = ALL_EVENTS in patterns
        with self.pool.connection() as conn:
            cursor = conn.execute(
                "INSERT INTO webhook_deliveries (webhook_id, event_id, replay, event_type, body, status, attempts, next_at, created_at) "
                "SELECT %s, (envelope->>'id')::uuid, %s, type, envelope::text, 'pending', 0, %s, %s FROM audit_log "
                "WHERE workspace_id = %s AND position > %s "
                "AND (%s OR type = ANY(%s) OR split_part(type, '.', 1) || '.*' = ANY(%s)) "
                "ORDER BY position ON CONFLICT DO NOTHING",
                (webhook_id, replay, now, now, workspace_id, after, every, list(patterns), list(patterns)),
            )
            return int(cursor.rowcount)

    def claim(self, now: datetime, limit: int) -> list[Due]:
        """Takes up to `limit` due deliveries for one attempt each; a claim left by a crashed process lapses."""
        with self.pool.connection() as conn, conn.cursor(row_factory=class_row(Due)) as cur:
            rows: list[Due] = cur.execute(
                "UPDATE webhook_deliveries d SET claimed_until = %s FROM ("
                "  SELECT webhook_id, event_id, replay FROM webhook_deliveries"
                "  WHERE status = 'pending' AND next_at <= %s AND (claimed_until IS NULL OR claimed_until < %s)"
                "  ORDER BY next_at LIMIT %s FOR UPDATE SKIP LOCKED) due "
                "WHERE (d.webhook_id, d.event_id, d.replay) = (due.webhook_id, due.event_id, due.replay) "
                "RETURNING d.webhook_id, d.event_id, d.replay, d.event_type, d.body, d.attempts, "
                "(SELECT url FROM webhooks w WHERE w.id = d.webhook_id AND w.removed_at IS NULL) AS url",
                (now + self.claim_for, now, now, limit),
            ).fetchall()
        return rows

    def record(self, due: Due, now: datetime, *, delivered: bool, http_status: int | None, error: str | None) -> str:
        """Logs the attempt and settles the delivery: delivered, pending its next retry, or failed after the last."""
        attempt = due.attempts + 1
        if delivered:
            status, next_at = "delivered", now
        elif attempt <= len(self.retries):
            status, next_at = "retrying", now + timedelta(seconds=self.retries[attempt - 1])
        else:
            status, next_at = "failed", now
        with self.pool.connection() as conn, conn.transaction():
            conn.execute(
                "UPDATE webhook_deliveries SET status = %s, attempts = %s, next_at = %s, claimed_until = NULL "
                "WHERE webhook_id = %s AND event_id = %s AND replay = %s",
                ("pending" if status == "retrying" else status, attempt, next_at, due.webhook_id, due.event_id, due.replay),
            )
            conn.execute(
                "INSERT INTO webhook_attempts (webhook_id, event_id, event_type, replay, attempt, status, http_status, error, at) "
                "VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s)",
                (due.webhook_id, due.event_id, due.event_type, due.replay, attempt, status, http_status, error, now),
            )
        return status

    def drop(self, due: Due) -> None:
        """Forgets a delivery whose webhook was removed."""
        with self.pool.connection() as conn:
            conn.execute(
                "UPDATE webhook_deliveries SET status = 'canceled', claimed_until = NULL "
                "WHERE webhook_id = %s AND event_id = %s AND replay = %s",
                (due.webhook_id, due.event_id, due.replay),
            )

    def next_due(self, now: datetime) -> datetime | None:
        """When the next unclaimed delivery falls due (claimed ones are being sent, or lapse on their own)."""
        with self.pool.connection() as conn:
            row = conn.execute(
                "SELECT min(next_at) FROM webhook_deliveries WHERE status = 'pending' AND (claimed_until IS NULL OR claimed_until < %s)",
                (now,),
            ).fetchone()
        return row[0] if row else None


def attempts_of(pool: ConnectionPool[Any], webhook_id: UUID, *, before: int | None, limit: int) -> list[AttemptRow]:
    """A webhook's delivery log, newest first, paged by attempt id."""
    with pool.connection() as conn, conn.cursor(row_factory=class_row(AttemptRow)) as cur:
        rows: list[AttemptRow] = cur.execute(
            "SELECT id, event_id, event_type, replay, attempt, status, http_status, error, at FROM webhook_attempts "
            "WHERE webhook_id = %s AND id < %s ORDER BY id DESC LIMIT %s",
            (webhook_id, before if before is not None else 2**62, limit),
        ).fetchall()
    return rows
