"""Heartbeats of the background processes, so /health can say which are alive."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

import msgspec
from psycopg_pool import ConnectionPool

DDL = (
    "CREATE TABLE IF NOT EXISTS process_heartbeats ("
    "process text PRIMARY KEY, kind text NOT NULL, seen_at timestamptz NOT NULL, started_at timestamptz NOT NULL)"
)
ALIVE_WITHIN = timedelta(seconds=30)


class Heartbeat(msgspec.Struct):
    process: str
    kind: str
    seen_at: datetime
    started_at: datetime


def beat(pool: ConnectionPool[Any], process: str, kind: str, now: datetime, started_at: datetime) -> None:
    with pool.connection() as conn:
        conn.execute(
            "INSERT INTO process_heartbeats VALUES (%s, %s, %s, %s) "
            "ON CONFLICT (process) DO UPDATE SET seen_at = EXCLUDED.seen_at, started_at = EXCLUDED.started_at",
            (process, kind, now, started_at),
        )


def recent(pool: ConnectionPool[Any], now: datetime) -> list[Heartbeat]:
    with pool.connection() as conn:
        rows = conn.execute(
            "SELECT process, kind, seen_at, started_at FROM process_heartbeats WHERE seen_at > %s ORDER BY process",
            (now - ALIVE_WITHIN,),
        ).fetchall()
    return [Heartbeat(*row) for row in rows]
