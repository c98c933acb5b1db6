"""The runs read model: one row per run (a batch of posts applied from one schedule envelope).

A run's status moves with its own events, except `Published`, whose status the aggregate derives from
its posts' phases (`Run.derived_status`); the row keeps those phases (`{post id: phase}`, for the posts
the run heard of) so that it derives the same status.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any
from uuid import UUID

import msgspec
import psycopg
from psycopg.rows import class_row
from psycopg.types.json import Jsonb
from psycopg_pool import ConnectionPool

from domain.run import Run, Status, status_of
from projections.engine import Batch, Event, evolve_rows, upsert_statement


class RunRow(msgspec.Struct, kw_only=True):
    id: UUID
    workspace_id: UUID
    mode: str
    status: Status
    total_posts: int
    source_model: str
    timezone: str
    idempotency_key: str | None
    start_at: datetime
    phases: dict[str, str] = msgspec.field(default_factory=dict)
    created_at: datetime
    updated_at: datetime


def derived_status(row: RunRow) -> Status:
    """`Run.derived_status` over the row: posts the run has not heard of are pending."""
    return status_of(row.mode, row.status, [*row.phases.values(), *["pending"] * (row.total_posts - len(row.phases))])


def evolve(row: RunRow | None, event: Event) -> RunRow | None:
    """The row after one event; events of other aggregates leave it as it was."""
    if isinstance(event, Run.Created):
        return RunRow(
            id=event.originator_id,
            workspace_id=event.workspace_id,
            mode=event.mode,
            status="draft" if event.mode == "draft" else "scheduled",
            total_posts=len(event.post_ids),
            source_model=event.source_model,
            timezone=event.timezone,
            idempotency_key=event.idempotency_key,
            start_at=event.start_at,
            created_at=event.timestamp,
            updated_at=event.timestamp,
        )
    if row is None or not isinstance(event, Run.Event):
        return row
    row = msgspec.structs.replace(row, updated_at=event.timestamp)
    match event:
        case Run.Published():
            row = msgspec.structs.replace(row, mode="scheduled", start_at=event.start_at)
            return msgspec.structs.replace(row, status=derived_status(row))
        case Run.PostOutcomeRecorded():
            return msgspec.structs.replace(row, phases={**row.phases, str(event.post_id): event.phase})
        case Run.ProcessingStarted() | Run.Reopened():
            return msgspec.structs.replace(row, status="processing")
        case Run.Completed():
            return msgspec.structs.replace(row, status="completed")
        case Run.PartiallyFailed():
            return msgspec.structs.replace(row, status="partial_failed")
    return row


COLUMNS = list(RunRow.__struct_fields__)
PHASES = COLUMNS.index("phases")
UPSERT = upsert_statement("runs", COLUMNS)


class RunsReadModel:
    name = "runs"
    handles = Run.Event
    ddl = (
        """CREATE TABLE IF NOT EXISTS runs (
            id uuid PRIMARY KEY, workspace_id uuid NOT NULL, mode text NOT NULL, status text NOT NULL,
            total_posts int NOT NULL, source_model text NOT NULL, timezone text NOT NULL, idempotency_key text,
            start_at timestamptz NOT NULL, phases jsonb NOT NULL, created_at timestamptz NOT NULL,
            updated_at timestamptz NOT NULL)""",
    )

    def apply(self, cursor: psycopg.Cursor[Any], batch: Batch) -> None:
        rows = evolve_rows(
            cursor,
            batch,
            table="runs",
            key="id",
            row_type=RunRow,
            key_of=lambda event: event.originator_id if isinstance(event, Run.Event) else None,
            evolve=evolve,
        ).rows
        if rows:
            cursor.executemany(
                UPSERT,
                [(*msgspec.structs.astuple(row)[:PHASES], Jsonb(row.phases), *msgspec.structs.astuple(row)[PHASES + 1 :]) for row in rows],
            )


def get_run(pool: ConnectionPool[Any], workspace_id: UUID, run_id: UUID) -> RunRow | None:
    """The run, if it is the workspace's."""
    with pool.connection() as conn, conn.cursor(row_factory=class_row(RunRow)) as cur:
        row: RunRow | None = cur.execute("SELECT * FROM runs WHERE id = %s AND workspace_id = %s", (run_id, workspace_id)).fetchone()
    return row
