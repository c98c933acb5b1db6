"""Rebuilding read models from position zero, and verifying live ones against a rebuild.

A rebuild fills fresh tables in a schema of their own, many events per transaction, then swaps
them in: the last events are applied and the tables moved into place in one transaction, under
locks that make the projection's own writer wait, so nothing is lost or applied twice and
readers only ever see the old tables or the new ones.
"""

from __future__ import annotations

import gc
import re
from collections import deque
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import ExitStack, contextmanager
from typing import Any

import msgspec
import psycopg
from psycopg import sql

from application.pressroom import Pressroom
from projections.engine import Batch, EventRouter, ReadModel, read_batch

BATCH = 5000
_TABLE = re.compile(r"CREATE TABLE IF NOT EXISTS (\w+)", re.IGNORECASE)
_INDEX = re.compile(r"\s*CREATE (UNIQUE )?INDEX", re.IGNORECASE)


class Drift(msgspec.Struct):
    table: str
    only_live: list[str]
    only_rebuilt: list[str]


def tables_of(read_model: ReadModel) -> list[str]:
    return [match.group(1) for statement in read_model.ddl if (match := _TABLE.search(statement))]


def tracking_table(read_model: ReadModel) -> str:
    return f"{read_model.name}_tracking"


class Rebuilder:
    def __init__(self, app: Pressroom, database_url: str, read_model: ReadModel, *, schema: str) -> None:
        self.app = app
        self.database_url = database_url
        self.read_model = read_model
        self.schema = schema
        self.position = 0

    def create(self, conn: psycopg.Connection[Any], *, indexes: bool = True) -> None:
        """The schema and its tables; without their secondary indexes if `indexes` is false (a bulk
        load then builds them once, with `create_indexes`, far cheaper than row by row)."""
        name = sql.Identifier(self.schema)
        conn.execute(sql.SQL("DROP SCHEMA IF EXISTS {} CASCADE").format(name))
        conn.execute(sql.SQL("CREATE SCHEMA {}").format(name))
        conn.execute(sql.SQL("SET search_path TO {}").format(name))
        for statement in self.read_model.ddl:
            if indexes or not _INDEX.match(statement):
                conn.execute(statement)  # type: ignore[arg-type]
        conn.execute(
            sql.SQL("CREATE TABLE {} (application_name text PRIMARY KEY, notification_id bigint)").format(
                sql.Identifier(tracking_table(self.read_model))
            )
        )
        # eventsourcing marks a tracking table it created with this row; without it, it would migrate the table.
        self._track(conn, "__migration__", 1)

    def create_indexes(self, conn: psycopg.Connection[Any]) -> None:
        for statement in self.read_model.ddl:
            if _INDEX.match(statement):
                conn.execute(statement)  # type: ignore[arg-type]

    def _track(self, conn: psycopg.Connection[Any], application: str, position: int) -> None:
        conn.execute(
            sql.SQL(
                "INSERT INTO {} VALUES (%s, %s) ON CONFLICT (application_name) DO UPDATE SET notification_id = EXCLUDED.notification_id"
            ).format(sql.Identifier(tracking_table(self.read_model))),
            (application, position),
        )

    def next_batch(self, stop: int | None = None) -> Batch:
        return read_batch(self.app, after=self.position, limit=BATCH, stop=stop)

    def apply(self, conn: psycopg.Connection[Any], events: Batch, position: int) -> None:
        """The read model's events of a batch that ends at `position`, in one transaction with that position
        (none for a batch with none of its events: `swap_in` records the position the rebuild reached)."""
        if events:
            with conn.transaction(), conn.cursor() as cursor:
                self.read_model.apply(cursor, events)
                self._track(conn, self.app.name, position)
        self.position = position

    def catch_up(self, conn: psycopg.Connection[Any], stop: int | None = None, progress: Callable[[int], None] | None = None) -> int:
        """Applies every event after the rebuild's position (up to `stop`), a batch per transaction."""
        applied = 0
        router = EventRouter([self.read_model])
        while batch := self.next_batch(stop):
            self.apply(conn, router.split(batch)[0], batch[-1][0])
            applied += len(batch)
            if progress is not None:
                progress(len(batch))
            if stop is not None and self.position >= stop:
                break
        return applied

    def swap_in(self, conn: psycopg.Connection[Any]) -> None:
        """Replaces the live tables with the rebuilt ones, atomically, after the last events."""
        live = [*tables_of(self.read_model), tracking_table(self.read_model)]
        with conn.transaction():
            conn.execute(sql.SQL("SET LOCAL lock_timeout = '30s'"))
            conn.execute(sql.SQL("SET LOCAL synchronous_commit = on"))
            conn.execute(
                sql.SQL("LOCK TABLE {} IN ACCESS EXCLUSIVE MODE").format(sql.SQL(", ").join(sql.Identifier("public", t) for t in live))
            )
            self.catch_up(conn)
            self._track(conn, self.app.name, self.position)
            for table in live:
                conn.execute(sql.SQL("DROP TABLE {}").format(sql.Identifier("public", table)))
                conn.execute(sql.SQL("ALTER TABLE {} SET SCHEMA public").format(sql.Identifier(self.schema, table)))
            conn.execute(sql.SQL("DROP SCHEMA {} CASCADE").format(sql.Identifier(self.schema)))


def verify(app: Pressroom, database_url: str, read_model: ReadModel, attempts: int = 5) -> list[Drift]:
    """Rebuilds into a scratch schema up to the live read model's position and compares every row."""
    rebuilder = Rebuilder(app, database_url, read_model, schema=f"verify_{read_model.name}")
    try:
        with psycopg.connect(database_url, autocommit=True) as conn:
            rebuilder.create(conn)
            for _ in range(attempts):
                live_position = _live_position(conn, app.name, read_model)
                rebuilder.catch_up(conn, stop=live_position)
                with conn.transaction():
                    conn.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ")
                    if _live_position(conn, app.name, read_model) == live_position:
                        return [d for table in tables_of(read_model) if (d := _diff(conn, rebuilder.schema, table))]
            raise RuntimeError(f"{read_model.name} kept moving; verify again when it is quieter")
    finally:
        with psycopg.connect(database_url, autocommit=True) as conn:
            conn.execute(sql.SQL("DROP SCHEMA IF EXISTS {} CASCADE").format(sql.Identifier(rebuilder.schema)))


def _live_position(conn: psycopg.Connection[Any], application: str, read_model: ReadModel) -> int:
    row = conn.execute(
        sql.SQL("SELECT notification_id FROM {} WHERE application_name = %s").format(sql.Identifier("public", tracking_table(read_model))),
        (application,),
    ).fetchone()
    return int(row[0]) if row else 0


def _diff(conn: psycopg.Connection[Any], schema: str, table: str, shown: int = 10) -> Drift | None:
    live, rebuilt = sql.Identifier("public", table), sql.Identifier(schema, table)
    query = sql.SQL("SELECT to_jsonb(d)::text FROM (SELECT * FROM {} EXCEPT ALL SELECT * FROM {}) d LIMIT %s")
    only_live = [r[0] for r in conn.execute(query.format(live, rebuilt), (shown,))]
    only_rebuilt = [r[0] for r in conn.execute(query.format(rebuilt, live), (shown,))]
    return Drift(table=table, only_live=only_live, only_rebuilt=only_rebuilt) if only_live or only_rebuilt else None


def rebuild_all(app: Pressroom, database_url: str, read_models: Sequence[ReadModel], progress: Callable[[int], None] | None = None) -> int:
    """Rebuilds several read models in one pass over the log, then swaps each in.

    Each batch is read and decoded once, in this thread, then applied to every model's fresh tables
    by a thread (and connection) of the model's own, while this thread reads the next batch: the
    database works while Python decodes. Until the swap the tables are nobody's, so their commits
    need not wait for the disk, and their secondary indexes are built once, at the end of the pass.
    Each model is swapped in on its own, atomically, by its own thread.
    """
    rebuilders = [Rebuilder(app, database_url, model, schema=f"rebuild_{model.name}") for model in read_models]
    with ExitStack() as stack:
        stack.enter_context(_without_cycle_collection())
        connections = [stack.enter_context(psycopg.connect(database_url, autocommit=True)) for _ in rebuilders]
        workers = [stack.enter_context(ThreadPoolExecutor(1, f"rebuild-{model.name}")) for model in read_models]

        def each(step: Callable[[Rebuilder, psycopg.Connection[Any]], None]) -> None:
            for future in [w.submit(step, r, c) for w, r, c in zip(workers, rebuilders, connections, strict=True)]:
                future.result()

        for conn in connections:
            conn.execute("SET synchronous_commit = off")
        each(lambda rebuilder, conn: rebuilder.create(conn, indexes=False))
        applying: deque[tuple[int, list[Future[None]]]] = deque()
        applied = position = 0
        router = EventRouter(read_models)
        while batch := read_batch(app, after=position, limit=BATCH):
            position = batch[-1][0]
            parts = router.split(batch)
            applying.append(
                (
                    len(batch),
                    [w.submit(r.apply, c, part, position) for w, r, c, part in zip(workers, rebuilders, connections, parts, strict=True)],
                )
            )
            if len(applying) > 1:
                applied += _applied(*applying.popleft(), progress)
        while applying:
            applied += _applied(*applying.popleft(), progress)
        each(Rebuilder.create_indexes)
        each(Rebuilder.swap_in)
    return applied


def _applied(size: int, applying: list[Future[None]], progress: Callable[[int], None] | None) -> int:
    """Waits until a batch is applied to every model, raising what any of them raised."""
    for future in applying:
        future.result()
    if progress is not None:
        progress(size)
    return size


@contextmanager
def _without_cycle_collection() -> Iterator[None]:
    """A pass allocates millions of objects that each live for a batch and hold no reference cycles,
    so reference counting frees every one; the cyclic collector only kept scanning them (a seventh
    of the pass's time, even when run every 20,000 allocations rather than every 700). The process's
    memory stays flat over a pass of 1,000,000 events without it; it runs once, after the pass."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()
        gc.collect()
