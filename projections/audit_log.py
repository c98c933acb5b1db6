"""The audit log read model: every event's envelope and metadata by workspace, in log order, for the
audit routes, the live event stream and subscribers that replay from a point in the log."""

from __future__ import annotations

from datetime import datetime
from typing import Any
from uuid import UUID

import msgspec
import psycopg
from psycopg import postgres
from psycopg.adapt import Dumper
from psycopg.pq import Format
from psycopg_pool import ConnectionPool

from application.integration_events import Envelope, envelope
from application.metadata import event_metadata
from projections.engine import Batch


class AuditEntry(msgspec.Struct, kw_only=True):
    position: int
    envelope: Envelope
    metadata: dict[str, str]


COLUMN_TYPES = ("int8", "uuid", "uuid", "text", "timestamptz", "jsonb", "jsonb")


class AuditLogReadModel:
    name = "audit_log"
    handles = object
    ddl = (
        """CREATE TABLE IF NOT EXISTS audit_log (
            position bigint PRIMARY KEY, workspace_id uuid NOT NULL, aggregate_id uuid NOT NULL, type text NOT NULL,
            occurred_at timestamptz NOT NULL, envelope jsonb NOT NULL, metadata jsonb NOT NULL)""",
        "CREATE INDEX IF NOT EXISTS audit_log_by_workspace ON audit_log (workspace_id, position)",
        "CREATE INDEX IF NOT EXISTS audit_log_by_aggregate ON audit_log (aggregate_id, position)",
    )

    def apply(self, cursor: psycopg.Cursor[Any], batch: Batch) -> None:
        # COPY rather than INSERT: this table takes every event, and the tracking position already
        # makes each batch apply exactly once, so no row can conflict. In binary, because PostgreSQL
        # then parses only the JSON: a rebuild's heaviest table costs it a third less.
        with cursor.connection.cursor() as copying:
            copying.adapters.register_dumper(None, JsonbDumper)
            with copying.copy("COPY audit_log FROM STDIN (FORMAT BINARY)") as copy:
                copy.set_types(COLUMN_TYPES)
                for position, event in batch:
                    published = envelope(event)
                    copy.write_row(
                        (
                            position,
                            published.workspace_id,
                            published.aggregate_id,
                            published.type,
                            published.occurred_at,
                            published,
                            event_metadata(event),
                        )
                    )


class JsonbDumper(Dumper):
    """Writes a value as binary jsonb, encoded by msgspec (in COPY, the column type picks the dumper)."""

    oid = postgres.types["jsonb"].oid
    format = Format.BINARY

    def dump(self, obj: Any) -> bytes:
        return b"\x01" + msgspec.json.encode(obj)


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
