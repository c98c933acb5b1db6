"""The campaigns read model: one row per campaign, for lists and stats."""

from __future__ import annotations

from datetime import datetime
from typing import Any
from uuid import UUID

import msgspec
import psycopg
from psycopg.rows import class_row
from psycopg.types.json import Jsonb
from psycopg_pool import ConnectionPool

from domain.campaign import IN_PROGRESS, Campaign
from projections.engine import Batch, Event, evolve_rows, upsert_statement
from projections.paging import InvalidCursor, decode_cursor, encode_cursor

STATUS_OF_EVENT: dict[type[Any], str] = {
    Campaign.AnalysisStarted: "analyzing",
    Campaign.GenerationRequested: "generating",
    Campaign.RegenerationRequested: "generating",
    Campaign.ReadyForApproval: "awaiting_approval",
    Campaign.ApprovalInvalidated: "awaiting_approval",
    Campaign.Approved: "approved",
    Campaign.PublishingScheduled: "publishing",
    Campaign.Completed: "completed",
    Campaign.Failed: "failed",
    Campaign.Deleted: "deleted",
}


class CampaignRow(msgspec.Struct, kw_only=True):
    id: UUID
    workspace_id: UUID
    title: str
    product_url: str | None
    platforms: list[str]
    status: str
    jobs: int = 0
    run_id: UUID | None = None
    created_at: datetime
    updated_at: datetime


def evolve(row: CampaignRow | None, event: Event) -> CampaignRow | None:
    """The row after one event; events of other aggregates leave it as it was."""
    if isinstance(event, Campaign.Created):
        return CampaignRow(
            id=event.originator_id,
            workspace_id=event.workspace_id,
            title=event.title,
            product_url=event.product_url,
            platforms=list(event.platforms),
            status="pending",
            created_at=event.timestamp,
            updated_at=event.timestamp,
        )
    if row is None or not isinstance(event, Campaign.Event):
        return row
    changes: dict[str, Any] = {"updated_at": event.timestamp}
    if (status := STATUS_OF_EVENT.get(type(event))) is not None:
        changes["status"] = status
    if isinstance(event, Campaign.GenerationRequested):
        changes["jobs"] = row.jobs + len(event.jobs)
    if isinstance(event, Campaign.PublishingScheduled):
        changes["run_id"] = event.run_id
    return msgspec.structs.replace(row, **changes)


COLUMNS = list(CampaignRow.__struct_fields__)
PLATFORMS = COLUMNS.index("platforms")
UPSERT = upsert_statement("campaigns", COLUMNS)


class CampaignsReadModel:
    name = "campaigns"
    handles = Campaign.Event
    ddl = (
        """CREATE TABLE IF NOT EXISTS campaigns (
            id uuid PRIMARY KEY, workspace_id uuid NOT NULL, title text NOT NULL, product_url text,
            platforms jsonb NOT NULL, status text NOT NULL, jobs int NOT NULL, run_id uuid,
            created_at timestamptz NOT NULL, updated_at timestamptz NOT NULL)""",
        "CREATE INDEX IF NOT EXISTS campaigns_by_workspace ON campaigns (workspace_id, created_at DESC, id DESC)",
    )

    def apply(self, cursor: psycopg.Cursor[Any], batch: Batch) -> None:
        rows = evolve_rows(
            cursor,
            batch,
            table="campaigns",
            key="id",
            row_type=CampaignRow,
            key_of=lambda event: event.originator_id if isinstance(event, Campaign.Event) else None,
            evolve=evolve,
        ).rows
        cursor.executemany(UPSERT, [_values(row) for row in rows])


def _values(row: CampaignRow) -> tuple[Any, ...]:
    values = list(msgspec.structs.astuple(row))
    values[PLATFORMS] = Jsonb(row.platforms)
    return tuple(values)


class CampaignPage(msgspec.Struct):
    campaigns: list[CampaignRow]
    next_cursor: str | None


def list_campaigns(
    pool: ConnectionPool[Any], workspace_id: UUID, *, status: str | None = None, limit: int = 50, cursor: str | None = None
) -> CampaignPage:
    """Newest first; deleted campaigns only when asked for by status."""
    where = ["workspace_id = %s"]
    params: list[Any] = [workspace_id]
    if status is not None:
        where.append("status = %s")
        params.append(status)
    else:
        where.append("status <> 'deleted'")
    if cursor is not None:
        created_at, campaign_id = decode_cursor(cursor, 2)
        try:
            params += [datetime.fromisoformat(created_at), UUID(campaign_id)]
        except ValueError:
            raise InvalidCursor("This cursor is not one this API gave out.") from None
        where.append("(created_at, id) < (%s, %s)")
    with pool.connection() as conn, conn.cursor(row_factory=class_row(CampaignRow)) as cur:
        rows = cur.execute(
            f"SELECT * FROM campaigns WHERE {' AND '.join(where)} ORDER BY created_at DESC, id DESC LIMIT %s",
            [*params, limit + 1],
        ).fetchall()
    next_cursor = encode_cursor(rows[limit - 1].created_at.isoformat(), rows[limit - 1].id) if len(rows) > limit else None
    return CampaignPage(campaigns=rows[:limit], next_cursor=next_cursor)


class CampaignStats(msgspec.Struct, kw_only=True):
    total: int
    completed: int
    in_progress: int
    awaiting_approval: int
    failed: int


def stats_of(counts: dict[str, int]) -> CampaignStats:
    """Counts per status folded into the stats; deleted campaigns count nowhere."""
    live = {status: n for status, n in counts.items() if status != "deleted"}
    return CampaignStats(
        total=sum(live.values()),
        completed=live.get("completed", 0),
        in_progress=sum(n for status, n in live.items() if status in IN_PROGRESS),
        awaiting_approval=live.get("awaiting_approval", 0),
        failed=live.get("failed", 0),
    )


def campaign_stats(pool: ConnectionPool[Any], workspace_id: UUID) -> CampaignStats:
    with pool.connection() as conn:
        rows = conn.execute("SELECT status, count(*) FROM campaigns WHERE workspace_id = %s GROUP BY status", (workspace_id,)).fetchall()
    return stats_of({status: count for status, count in rows})
