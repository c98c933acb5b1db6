"""The API keys read model: a workspace's keys for listing; last use is recorded beside it, not as events."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any
from uuid import UUID

import msgspec
import psycopg
from psycopg.rows import class_row
from psycopg_pool import ConnectionPool

from domain.api_key import ApiKey
from projections.engine import Batch

# Last use is not an event (it would be one per request), so it lives in its own table, which a
# rebuild of the read model leaves alone. A minute's precision is enough.
USAGE_DDL = "CREATE TABLE IF NOT EXISTS api_key_usage (key_id uuid PRIMARY KEY, last_used_at timestamptz NOT NULL)"
LAST_USED_PRECISION = timedelta(minutes=1)


class KeyRow(msgspec.Struct, kw_only=True):
    id: UUID
    workspace_id: UUID
    prefix: str
    label: str
    created_at: datetime
    revoked_at: datetime | None = None
    last_used_at: datetime | None = None


class ApiKeysReadModel:
    name = "api_keys"
    handles = ApiKey.Event
    ddl = (
        """CREATE TABLE IF NOT EXISTS api_keys (
            id uuid PRIMARY KEY, workspace_id uuid NOT NULL, prefix text NOT NULL, label text NOT NULL,
            created_at timestamptz NOT NULL, revoked_at timestamptz)""",
        "CREATE INDEX IF NOT EXISTS api_keys_by_workspace ON api_keys (workspace_id, created_at)",
    )

    def apply(self, cursor: psycopg.Cursor[Any], batch: Batch) -> None:
        for _, event in batch:
            match event:
                case ApiKey.Issued():
                    cursor.execute(
                        "INSERT INTO api_keys VALUES (%s, %s, %s, %s, %s, NULL) ON CONFLICT (id) DO NOTHING",
                        (event.originator_id, event.workspace_id, event.prefix, event.label, event.timestamp),
                    )
                case ApiKey.Revoked():
                    cursor.execute("UPDATE api_keys SET revoked_at = %s WHERE id = %s", (event.timestamp, event.originator_id))


def list_keys(pool: ConnectionPool[Any], workspace_id: UUID) -> list[KeyRow]:
    with pool.connection() as conn, conn.cursor(row_factory=class_row(KeyRow)) as cur:
        rows: list[KeyRow] = cur.execute(
            "SELECT k.*, u.last_used_at FROM api_keys k LEFT JOIN api_key_usage u ON u.key_id = k.id "
            "WHERE k.workspace_id = %s ORDER BY k.created_at, k.id",
            (workspace_id,),
        ).fetchall()
    return rows


def last_used_at(pool: ConnectionPool[Any], key_id: UUID) -> datetime | None:
    with pool.connection() as conn:
        row = conn.execute("SELECT last_used_at FROM api_key_usage WHERE key_id = %s", (key_id,)).fetchone()
    return None if row is None else row[0]


class UseRecorder:
    """Records keys' last use at most once a minute per key from this process, so an API request
    does not pay a database write each time."""

    def __init__(self, pool: ConnectionPool[Any]) -> None:
        self.pool = pool
        self._recorded: dict[UUID, datetime] = {}

    def is_due(self, key_id: UUID, at: datetime) -> bool:
        last = self._recorded.get(key_id)
        return last is None or at - last >= LAST_USED_PRECISION

    def __call__(self, key_id: UUID, at: datetime) -> None:
        if not self.is_due(key_id, at):
            return
        self._recorded[key_id] = at
        record_use(self.pool, key_id, at)


def record_use(pool: ConnectionPool[Any], key_id: UUID, at: datetime) -> None:
    with pool.connection() as conn:
        conn.execute(
            "INSERT INTO api_key_usage VALUES (%s, %s) ON CONFLICT (key_id) DO UPDATE SET last_used_at = EXCLUDED.last_used_at "
            "WHERE api_key_usage.last_used_at < EXCLUDED.last_used_at - %s",
            (key_id, at, LAST_USED_PRECISION),
        )
