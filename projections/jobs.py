"""The jobs read model: one row per generation job, for lists and for the sweeper."""

from __future__ import annotations

from collections import Counter
from datetime import datetime
from typing import Any, cast
from uuid import UUID

import msgspec
import psycopg
from psycopg.rows import class_row
from psycopg.types.json import Jsonb
from psycopg_pool import ConnectionPool

from domain.generation_job import GenerationJob, Status
from domain.pricing import JobType
from projections.engine import Batch, Event, evolve_rows, write_rows
from projections.paging import InvalidCursor, decode_cursor, encode_cursor


class JobRow(msgspec.Struct, kw_only=True):
    id: UUID
    workspace_id: UUID
    type: JobType
    status: Status
    campaign_id: UUID | None
    input: dict[str, Any]
    credits_reserved: int
    credits_refunded: int = 0
    progress_done: int = 0
    progress_total: int = 1
    attempts: int = 0
    error_code: str | None = None
    error_message: str | None = None
    created_at: datetime
    started_at: datetime | None = None
    completed_at: datetime | None = None
    lease_until: datetime | None = None
    last_progress_at: datetime
    updated_at: datetime


def evolve(row: JobRow | None, event: Event) -> JobRow | None:
    """The row after one event; events of other aggregates leave it as it was."""
    match event:
        case GenerationJob.Requested():
            return JobRow(
                id=event.originator_id,
                workspace_id=event.workspace_id,
                type=cast(JobType, event.job_type),
                status="queued",
                campaign_id=event.campaign_id,
                input=event.input,
                credits_reserved=event.cost,
                progress_total=event.outputs,
                created_at=event.timestamp,
                last_progress_at=event.timestamp,
                updated_at=event.timestamp,
            )
        case GenerationJob.Started() if row is not None:
            return msgspec.structs.replace(
                row,
                status="processing",
                attempts=event.attempt,
                lease_until=event.lease_until,
                started_at=row.started_at or event.timestamp,
                updated_at=event.timestamp,
            )
        case GenerationJob.OutputProduced() if row is not None:
            return msgspec.structs.replace(
                row,
                progress_done=row.progress_done + 1,
                lease_until=event.lease_until,
                last_progress_at=event.timestamp,
                updated_at=event.timestamp,
            )
        case GenerationJob.Ended() if row is not None:
            error = (getattr(event, "code", None), getattr(event, "message", None))
            return msgspec.structs.replace(
                row,
                status=cast(Status, event.status),
                progress_done=row.progress_total if event.status == "completed" else row.progress_done,
                error_code=error[0],
                error_message=error[1],
                credits_refunded=row.credits_refunded + event.refunded,
                completed_at=event.timestamp,
                lease_until=None,
                updated_at=event.timestamp,
            )
        case GenerationJob.Requeued() if row is not None:
            return msgspec.structs.replace(row, status="queued", lease_until=None, updated_at=event.timestamp)
    return row


class JobCount(msgspec.Struct):
    type: str
    status: str
    jobs: int


class JobsReadModel:
    """A row per job, and how many jobs there are of each type in each status (what /metrics shows, without
    counting the jobs at every scrape). A count that reaches zero is deleted, so the counts are the same
    whatever batches the events came in."""

    name = "jobs"
    handles = GenerationJob.Event
    ddl = (
        """CREATE TABLE IF NOT EXISTS jobs (
            id uuid PRIMARY KEY, workspace_id uuid NOT NULL, type text NOT NULL, status text NOT NULL,
            campaign_id uuid, input jsonb NOT NULL, credits_reserved int NOT NULL, credits_refunded int NOT NULL,
            progress_done int NOT NULL, progress_total int NOT NULL, attempts int NOT NULL,
            error_code text, error_message text, created_at timestamptz NOT NULL, started_at timestamptz,
            completed_at timestamptz, lease_until timestamptz, last_progress_at timestamptz NOT NULL,
            updated_at timestamptz NOT NULL)""",
        "CREATE INDEX IF NOT EXISTS jobs_by_workspace ON jobs (workspace_id, created_at DESC, id DESC)",
        "CREATE INDEX IF NOT EXISTS jobs_unfinished ON jobs (updated_at) WHERE status IN ('queued', 'processing')",
        "CREATE TABLE IF NOT EXISTS job_counts (type text, status text, jobs bigint NOT NULL, PRIMARY KEY (type, status))",
        # A database from before job_counts has jobs and none counted: count them once. Run where the schema is
        # created, before the projections start, like all of this DDL.
        """DO $$ BEGIN
            IF NOT EXISTS (SELECT FROM job_counts) THEN
                INSERT INTO job_counts SELECT type, status, count(*) FROM jobs GROUP BY type, status;
            END IF;
        END $$""",
    )

    def apply(self, cursor: psycopg.Cursor[Any], batch: Batch) -> None:
        evolved = evolve_rows(
            cursor,
            batch,
            table="jobs",
            key="id",
            row_type=JobRow,
            key_of=lambda event: event.originator_id if isinstance(event, GenerationJob.Event) else None,
            evolve=evolve,
        )
        write_rows(cursor, "jobs", evolved.rows, upsert_on="id")
        changes: Counter[tuple[str, str]] = Counter()
        for job_id, row in evolved.after.items():
            if (old := evolved.before.get(job_id)) is not None:
                changes[old.type, old.status] -= 1
            if row is not None:
                changes[row.type, row.status] += 1
        counts = [JobCount(job_type, status, jobs) for (job_type, status), jobs in changes.items() if jobs]
        if counts:
            cursor.execute(_COUNT_CHANGES, (Jsonb(counts, dumps=msgspec.json.encode),))
            cursor.execute("DELETE FROM job_counts WHERE jobs = 0")


_COUNT_CHANGES = (
    "INSERT INTO job_counts SELECT type, status, jobs FROM jsonb_populate_recordset(NULL::job_counts, %s) "
    "ON CONFLICT (type, status) DO UPDATE SET jobs = job_counts.jobs + EXCLUDED.jobs"
)


def job_counts(pool: ConnectionPool[Any]) -> list[JobCount]:
    """How many jobs there are of each type in each status (none listed: none)."""
    with pool.connection() as conn, conn.cursor(row_factory=class_row(JobCount)) as cur:
        counts: list[JobCount] = cur.execute("SELECT type, status, jobs FROM job_counts ORDER BY type, status").fetchall()
    return counts


class JobPage(msgspec.Struct):
    jobs: list[JobRow]
    next_cursor: str | None


def list_jobs(
    pool: ConnectionPool[Any],
    workspace_id: UUID,
    *,
    status: str | None = None,
    job_type: str | None = None,
    campaign_id: UUID | None = None,
    limit: int = 50,
    cursor: str | None = None,
) -> JobPage:
    where = ["workspace_id = %s"]
    params: list[Any] = [workspace_id]
    for column, value in (("status", status), ("type", job_type), ("campaign_id", campaign_id)):
        if value is not None:
            where.append(f"{column} = %s")
            params.append(value)
    if cursor is not None:
        created_at, job_id = decode_cursor(cursor, 2)
        try:
            params += [datetime.fromisoformat(created_at), UUID(job_id)]
        except ValueError:
            raise InvalidCursor("This cursor is not one this API gave out.") from None
        where.append("(created_at, id) < (%s, %s)")
    with pool.connection() as conn, conn.cursor(row_factory=class_row(JobRow)) as cur:
        rows = cur.execute(
            f"SELECT * FROM jobs WHERE {' AND '.join(where)} ORDER BY created_at DESC, id DESC LIMIT %s",
            [*params, limit + 1],
        ).fetchall()
    next_cursor = encode_cursor(rows[limit - 1].created_at.isoformat(), rows[limit - 1].id) if len(rows) > limit else None
    return JobPage(jobs=rows[:limit], next_cursor=next_cursor)


def overdue_jobs(pool: ConnectionPool[Any], *, no_progress_since: datetime) -> list[UUID]:
    """Unfinished jobs that made no progress since then: the sweeper expires them."""
    with pool.connection() as conn:
        rows = conn.execute(
            "SELECT id FROM jobs WHERE status IN ('queued', 'processing') AND last_progress_at < %s ORDER BY last_progress_at LIMIT 500",
            (no_progress_since,),
        ).fetchall()
    return [row[0] for row in rows]


def unfinished_jobs(pool: ConnectionPool[Any], *, idle_since: datetime, lease_over_at: datetime) -> list[UUID]:
    """Jobs the sweeper should look at: queued with no change since `idle_since`, or past their lease."""
    with pool.connection() as conn:
        rows = conn.execute(
            "SELECT id FROM jobs WHERE (status = 'queued' AND updated_at < %s) "
            "OR (status = 'processing' AND lease_until < %s) ORDER BY updated_at LIMIT 500",
            (idle_since, lease_over_at),
        ).fetchall()
    return [row[0] for row in rows]
