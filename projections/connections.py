"""The connections read model: one row per connection; the connected ones are the workspace's accounts.

The row never holds a secret: no credentials, no OAuth state, nothing sealed (so no `authorizeUrl`,
which a pending connection keeps sealed in the aggregate's flow).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, cast
from uuid import UUID

import msgspec
import psycopg
from psycopg.rows import class_row
from psycopg_pool import ConnectionPool

from domain.connection import Auth, Connection, Status
from projections.engine import Batch, Event, evolve_rows, upsert_statement

# Accounts are connections that went through: connected ones, and those whose credentials stopped working
# (listed so that they can be reconnected; their posts are not published until then). Pending, failed and
# disconnected connections are not accounts.
ACCOUNT_STATUSES: tuple[Status, ...] = ("connected", "reconnect_required")


class ConnectionRow(msgspec.Struct, kw_only=True):
    id: UUID
    workspace_id: UUID
    provider: str
    auth: Auth
    status: Status
    handle: str | None = None
    display_name: str | None = None
    error: str | None = None
    token_expires_at: datetime | None = None
    created_at: datetime
    connected_at: datetime | None = None
    updated_at: datetime


def evolve(row: ConnectionRow | None, event: Event) -> ConnectionRow | None:
    """The row after one event; events of other aggregates leave it as it was."""
    if isinstance(event, Connection.Requested):
        return ConnectionRow(
            id=event.originator_id,
            workspace_id=event.workspace_id,
            provider=event.provider,
            auth=cast(Auth, event.auth),
            status="pending",
            created_at=event.timestamp,
            updated_at=event.timestamp,
        )
    if row is None or not isinstance(event, Connection.Event):
        return row
    row = msgspec.structs.replace(row, updated_at=event.timestamp)
    match event:
        case Connection.Connected():
            return msgspec.structs.replace(
                row,
                status="connected",
                handle=event.handle,
                display_name=event.display_name,
                token_expires_at=event.token_expires_at,
                connected_at=event.timestamp,
                error=None,
            )
        case Connection.AuthorizationFailed():
            return msgspec.structs.replace(row, status="failed", error=event.error)
        case Connection.TokensRefreshed():
            return msgspec.structs.replace(row, token_expires_at=event.token_expires_at)
        case Connection.ReconnectRequired():
            return msgspec.structs.replace(row, status="reconnect_required", error=event.reason)
        case Connection.Disconnected():
            return msgspec.structs.replace(row, status="disconnected", token_expires_at=None)
    return row


COLUMNS = list(ConnectionRow.__struct_fields__)
UPSERT = upsert_statement("connections", COLUMNS)


class ConnectionsReadModel:
    name = "connections"
    handles = Connection.Event
    ddl = (
        """CREATE TABLE IF NOT EXISTS connections (
            id uuid PRIMARY KEY, workspace_id uuid NOT NULL, provider text NOT NULL, auth text NOT NULL,
            status text NOT NULL, handle text, display_name text, error text, token_expires_at timestamptz,
            created_at timestamptz NOT NULL, connected_at timestamptz, updated_at timestamptz NOT NULL)""",
        "CREATE INDEX IF NOT EXISTS connections_by_workspace ON connections (workspace_id, created_at, id)",
        "CREATE INDEX IF NOT EXISTS connections_token_expiry ON connections (token_expires_at) WHERE status = 'connected'",
    )

    def apply(self, cursor: psycopg.Cursor[Any], batch: Batch) -> None:
        rows = evolve_rows(
            cursor,
            batch,
            table="connections",
            key="id",
            row_type=ConnectionRow,
            key_of=lambda event: event.originator_id if isinstance(event, Connection.Event) else None,
            evolve=evolve,
        ).rows
        if rows:
            cursor.executemany(UPSERT, [msgspec.structs.astuple(row) for row in rows])


def list_accounts(pool: ConnectionPool[Any], workspace_id: UUID, provider: str | None = None) -> list[ConnectionRow]:
    """The workspace's accounts (connected or reconnect_required), oldest first, of one provider if given."""
    with pool.connection() as conn, conn.cursor(row_factory=class_row(ConnectionRow)) as cur:
        rows: list[ConnectionRow] = cur.execute(
            "SELECT * FROM connections WHERE workspace_id = %s AND status = ANY(%s) AND (%s::text IS NULL OR provider = %s) "
            "ORDER BY created_at, id",
            (workspace_id, list(ACCOUNT_STATUSES), provider, provider),
        ).fetchall()
    return rows


def get_connection(pool: ConnectionPool[Any], workspace_id: UUID, connection_id: UUID) -> ConnectionRow | None:
    """The connection in any status, if it is the workspace's."""
    with pool.connection() as conn, conn.cursor(row_factory=class_row(ConnectionRow)) as cur:
        row: ConnectionRow | None = cur.execute(
            "SELECT * FROM connections WHERE id = %s AND workspace_id = %s", (connection_id, workspace_id)
        ).fetchone()
    return row


def account_refs(pool: ConnectionPool[Any], workspace_id: UUID) -> list[ConnectionRow]:
    """Every connection a schedule may name: not disconnected and with a handle (the planner refuses the
    ones that are not connected with its own message)."""
    with pool.connection() as conn, conn.cursor(row_factory=class_row(ConnectionRow)) as cur:
        rows: list[ConnectionRow] = cur.execute(
            "SELECT * FROM connections WHERE workspace_id = %s AND status <> 'disconnected' AND handle IS NOT NULL ORDER BY created_at, id",
            (workspace_id,),
        ).fetchall()
    return rows


def token_expiring(pool: ConnectionPool[Any], before: datetime) -> list[UUID]:
    """Connected accounts whose token runs out at or before `before` (now plus the refresher's margin,
    as `Connection.needs_refresh`), the soonest first."""
    with pool.connection() as conn:
        rows = conn.execute(
            "SELECT id FROM connections WHERE status = 'connected' AND token_expires_at <= %s ORDER BY token_expires_at, id",
            (before,),
        ).fetchall()
    return [row[0] for row in rows]
