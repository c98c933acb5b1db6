"""Reads an API key from the event store in the request's own event loop, over an async connection: an
authenticated request then costs no thread (and no hand-over of the GIL to one) before its handler runs.
A key has two events at most (issued, revoked), so every lookup reads all of them: a key revoked through
any process is refused at once, and there is no cache to keep right."""

from __future__ import annotations

import asyncio
from typing import Any, cast
from uuid import UUID

from eventsourcing.postgres import PostgresApplicationRecorder
from psycopg.rows import TupleRow
from psycopg.sql import SQL, Identifier
from psycopg_pool import AsyncConnectionPool

from application.metadata import MetadataMapper
from application.pressroom import Pressroom, replay
from domain.api_key import ApiKey


class KeyLookup:
    def __init__(self, database_url: str, app: Pressroom, *, max_connections: int = 4) -> None:
        recorder = app.recorder
        if not isinstance(recorder, PostgresApplicationRecorder):
            raise TypeError("KeyLookup reads eventsourcing's PostgreSQL events table")
        self.mapper = cast(MetadataMapper, app.mapper)
        self.database_url = database_url
        self.max_connections = max_connections
        self._statement = SQL(
            "SELECT originator_version, topic, state FROM {schema}.{table} WHERE originator_id = %s ORDER BY originator_version"
        ).format(schema=Identifier(recorder.datastore.schema), table=Identifier(recorder.events_table_name))
        self._pool: AsyncConnectionPool[Any] | None = None
        self._opening = asyncio.Lock()

    async def find(self, key_id: UUID) -> ApiKey | None:
        pool = self._pool or await self._open()
        async with pool.connection() as conn:
            cursor = await conn.execute(self._statement, (key_id,), prepare=True)
            rows: list[TupleRow] = await cursor.fetchall()
        events = (self.mapper.event_from(key_id, version, topic, bytes(state)) for version, topic, state in rows)
        key = replay(None, events)
        return key if isinstance(key, ApiKey) else None

    async def _open(self) -> AsyncConnectionPool[Any]:
        async with self._opening:
            if self._pool is None:
                pool: AsyncConnectionPool[Any] = AsyncConnectionPool(
                    self.database_url, min_size=1, max_size=self.max_connections, open=False, kwargs={"autocommit": True}
                )
                await pool.open()
                self._pool = pool
        return self._pool

    async def close(self) -> None:
        if self._pool is not None:
            await self._pool.close()
            self._pool = None
