"""The webhooks read model: each workspace's live subscriptions, for listing and for the dispatcher."""

from __future__ import annotations

from collections.abc import Collection
from datetime import datetime
from typing import Any
from uuid import UUID

import msgspec
import psycopg
from psycopg.rows import class_row
from psycopg_pool import ConnectionPool

from domain.webhook import Webhook
from projections.engine import Batch


class WebhookRow(msgspec.Struct, kw_only=True):
    id: UUID
    workspace_id: UUID
    url: str
    events: list[str]
    created_at: datetime


class WebhooksReadModel:
    name = "webhooks"
    handles = Webhook.Event
    ddl = (
        """CREATE TABLE IF NOT EXISTS webhooks (
            id uuid PRIMARY KEY, workspace_id uuid NOT NULL, url text NOT NULL, events text[] NOT NULL,
            created_at timestamptz NOT NULL, removed_at timestamptz)""",
        "CREATE INDEX IF NOT EXISTS webhooks_by_workspace ON webhooks (workspace_id) WHERE removed_at IS NULL",
    )

    def apply(self, cursor: psycopg.Cursor[Any], batch: Batch) -> None:
        for _, event in batch:
            match event:
                case Webhook.Created():
                    cursor.execute(
                        "INSERT INTO webhooks VALUES (%s, %s, %s, %s, %s, NULL) ON CONFLICT (id) DO NOTHING",
                        (event.originator_id, event.workspace_id, event.url, list(event.events), event.timestamp),
                    )
                case Webhook.Removed():
                    cursor.execute("UPDATE webhooks SET removed_at = %s WHERE id = %s", (event.timestamp, event.originator_id))


def live_webhooks(pool: ConnectionPool[Any], workspace_id: UUID) -> list[WebhookRow]:
    """The workspace's webhooks that are not removed, oldest first."""
    return live_webhooks_of(pool, {workspace_id}).get(workspace_id, [])


def live_webhooks_of(pool: ConnectionPool[Any], workspace_ids: Collection[UUID]) -> dict[UUID, list[WebhookRow]]:
    """`live_webhooks` of each of these workspaces, in one query; a workspace without any is left out."""
    if not workspace_ids:
        return {}
    with pool.connection() as conn, conn.cursor(row_factory=class_row(WebhookRow)) as cur:
        rows: list[WebhookRow] = cur.execute(
            "SELECT id, workspace_id, url, events, created_at FROM webhooks WHERE workspace_id = ANY(%b) AND removed_at IS NULL "
            "ORDER BY created_at, id",
            (list(workspace_ids),),
        ).fetchall()
    found: dict[UUID, list[WebhookRow]] = {}
    for row in rows:
        found.setdefault(row.workspace_id, []).append(row)
    return found
