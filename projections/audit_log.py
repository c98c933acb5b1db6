"""The audit log read model: every event's envelope and metadata by workspace, in log order, for the
audit routes, the live event stream and subscribers that replay from a point in the log."""

from __future__ import annotations

from datetime import datetime
from typing import Any
from uuid import UUID

import msgspec
import psycopg
from psycopg_pool import ConnectionPool

from application.integration_events import Envelope, envelope_to_encode
from application.metadata import event_metadata
from projections.engine import Batch


class AuditEntry(msgspec.Struct, kw_only=True):
    position: int
    envelope: Envelope
    metadata: dict[str, str]


# A batch's rows arrive as lines of JSON, `[position, envelope, metadata]`, and PostgreSQL takes the
# other columns from the envelope. Each OFFSET 0 keeps a value worked out once, not once per column
# that uses it: each line parsed, each envelope taken out of its line.
_INSERT = """INSERT INTO audit_log
    SELECT (r->>0)::bigint, (e->>'workspaceId')::uuid, (e->>'aggregateId')::uuid, e->>'type', (e->>'occurredAt')::timestamptz, e, r->2
    FROM (SELECT r, r->1 AS e FROM (
        SELECT line::jsonb AS r FROM string_to_table(convert_from(%b, 'UTF8'), E'\\n') AS line WHERE line <> '' OFFSET 0
    ) AS lines OFFSET 0) AS rows"""
_encode_lines = msgspec.json.Encoder().encode_lines


class AuditLogReadModel:
    name = "audit_log"
    handles = object
    ddl = (
        """CREATE TABLE IF NOT EXISTS audit_log (
            position bigint NOT NULL, workspace_id uuid NOT NULL, aggregate_id uuid NOT NULL, type text NOT NULL,
            occurred_at timestamptz NOT NULL, envelope jsonb NOT NULL, metadata jsonb NOT NULL)""",
        # A unique index, not a primary key, so that a rebuild builds it once after loading every row (kept up
        # row by row, it cost the rebuild's PostgreSQL a quarter of its time on this table). A database made
        # before has the primary key of this name, and keeps it.
        "CREATE UNIQUE INDEX IF NOT EXISTS audit_log_pkey ON audit_log (position)",
        "CREATE INDEX IF NOT EXISTS audit_log_by_workspace ON audit_log (workspace_id, position)",
        "CREATE INDEX IF NOT EXISTS audit_log_by_aggregate ON audit_log (aggregate_id, position)",
    )

    def apply(self, cursor: psycopg.Cursor[Any], batch: Batch) -> None:
        # One statement, its rows encoded by msgspec in one call: a rebuild is bound by Python, and COPY,
        # with psycopg adapting each value of each row, cost it half again as much as making the envelopes.
        # PostgreSQL works more instead, on the core Python leaves it. The rows come from a generator so
        # that no envelope outlives its row: holding a batch of them kept waking the garbage collector.
        lines = _encode_lines((position, envelope_to_encode(event), event_metadata(event)) for position, event in batch)
        cursor.execute(_INSERT, (lines,))


def entries(
    pool: ConnectionPool[Any],
    *,
    workspace_id: UUID | None = None,
    aggregate_id: UUID | None = None,
    event_type: str | None = None,
    after: int = 0,
    until: datetime | None = None,
    since: datetime | None = None,
    limit: int = 100,
) -> list[AuditEntry]:
    """Events in log order after a position, filtered; `workspace_id` None means every workspace (operators)."""
    where: list[str] = ["position > %s"]
    params: list[Any] = [after]
    for clause, value in (
        ("workspace_id = %s", workspace_id),
        ("aggregate_id = %s", aggregate_id),
        ("type = %s", event_type),
        ("occurred_at >= %s", since),
        ("occurred_at < %s", until),
    ):
        if value is not None:
            where.append(clause)
            params.append(value)
    with pool.connection() as conn:
        rows = conn.execute(
            f"SELECT position, envelope, metadata FROM audit_log WHERE {' AND '.join(where)} ORDER BY position LIMIT %s",
            [*params, limit],
        ).fetchall()
    return [AuditEntry(position=p, envelope=msgspec.convert(e, Envelope), metadata=m) for p, e, m in rows]
