"""Reads API keys from the event store in the requests' own event loop, over an async connection: an
authenticated request then costs no thread (and no hand-over of the GIL to one) before its handler runs.
The keys of requests that arrive together are read with one query.

Every lookup reads the store, so a key revoked through any process is refused at once. The keys already read
stay in memory at the version read, and a lookup asks only for their events after it: usually none, where
reading all of a key's events (issued, revoked) cost each request their decoding and replay."""

from __future__ import annotations

import asyncio
import copy
from collections import OrderedDict
from typing import Any, cast
from uuid import UUID

from eventsourcing.postgres import PostgresApplicationRecorder
from psycopg.rows import TupleRow
from psycopg_pool import AsyncConnectionPool

from adapters.event_batches import events_after_statement
from adapters.eventstore import rendered
from application.metadata import MetadataMapper
from application.pressroom import Pressroom, replay
from domain.api_key import ApiKey


class KeyLookup:
    def __init__(self, database_url: str, app: Pressroom, *, max_connections: int = 4, max_known: int = 10_000) -> None:
        recorder = app.recorder
        if not isinstance(recorder, PostgresApplicationRecorder):
            raise TypeError("KeyLookup reads eventsourcing's PostgreSQL events table")
        self.mapper = cast(MetadataMapper, app.mapper)
        self.database_url = database_url
        self.max_connections = max_connections
        self._statement = rendered(events_after_statement(recorder))
        self.max_known = max_known
        self._known: OrderedDict[UUID, ApiKey] = OrderedDict()
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
        after = [known.version if (known := self._known.get(key_id)) else 0 for key_id in wanted]
        try:
            pool = self._pool or await self._open()
            async with pool.connection() as conn:
                cursor = await conn.execute(self._statement, (list(wanted), after), prepare=True)
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
            key = self._update(key_id, events.get(key_id, []))
            if not future.done():
                future.set_result(key)

    def _update(self, key_id: UUID, events: list[Any]) -> ApiKey | None:
        """The key as its events leave it, remembered. A read that overlapped this one may have brought the key
        in memory past some of these events already. A key that changes is a copy: the one in memory may be in
        the hands of a request that was admitted with it."""
        known = self._known.get(key_id)
        new = [event for event in events if known is None or event.originator_version > known.version]
        key = replay(copy.copy(known) if known and new else known, new)
        if not isinstance(key, ApiKey):
            return None  # no such key: not remembered, or anyone could fill the memory with made-up ids
        self._known[key_id] = key
        self._known.move_to_end(key_id)
        if len(self._known) > self.max_known:
            self._known.popitem(last=False)
        return key

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
