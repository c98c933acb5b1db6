"""Reads API keys from the event store in the requests' own event loop, over an async connection: an
authenticated request then costs no thread (and no hand-over of the GIL to one) before its handler runs.
A key has two events at most (issued, revoked), so every lookup reads all of them: a key revoked through
any process is refused at once, and there is no cache to keep right. The keys of requests that arrive
together are read with one query."""

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
            "SELECT originator_id, originator_version, topic, state FROM {schema}.{table} "
            "WHERE originator_id = ANY(%b) ORDER BY originator_id, originator_version"
        ).format(schema=Identifier(recorder.datastore.schema), table=Identifier(recorder.events_table_name))
        self._pool: AsyncConnectionPool[Any] | None = None
        self._opening = asyncio.Lock()
        self._wanted: dict[UUID, asyncio.Future[ApiKey | None]] | None = None
        self._reading: set[asyncio.Task[None]] = set()

    async def find(self, key_id: UUID) -> ApiKey | None:
        if self._wanted is None:
            self._wanted = {}
            reading = asyncio.get_running_loop().create_task(self._read_wanted())
            self._reading.add(reading)  # the loop keeps only a weak reference to a task
            reading.add_done_callback(self._reading.discard)
        wanted = self._wanted.get(key_id)
        if wanted is None:
            wanted = self._wanted[key_id] = asyncio.get_running_loop().create_future()
        # Shielded: a request that goes away must not cancel the answer other requests for the same key wait on.
        return await asyncio.shield(wanted)

    async def _read_wanted(self) -> None:
        await asyncio.sleep(0)  # the requests already under way ask for their keys meanwhile
        wanted, self._wanted = self._wanted or {}, None
        try:
            pool = self._pool or await self._open()
            async with pool.connection() as conn:
                cursor = await conn.execute(self._statement, (list(wanted),), prepare=True)
                rows: list[TupleRow] = await cursor.fetchall()
        except Exception as error:  # noqa: BLE001 - each waiting request answers with it
            for future in wanted.values():
                if not future.done():
                    future.set_exception(error)
            return
        events: dict[UUID, list[Any]] = {}
        for key_id, version, topic, state in rows:
            events.setdefault(key_id, []).append(self.mapper.event_from(key_id, version, topic, bytes(state)))
        for key_id, future in wanted.items():
            key = replay(None, events.get(key_id, ()))
            if not future.done():
                future.set_result(key if isinstance(key, ApiKey) else None)

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
