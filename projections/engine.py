"""How read models follow the event log: in batches, each committed with its tracking position.

A read model's rows and its tracking record are written in one transaction, so a read model
is exactly-once: a crash replays from the last committed position, and a position already
recorded is refused by the tracking table and changes nothing.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import cache
from typing import Any, Generic, Protocol, TypeVar, cast
from uuid import UUID

import msgspec
import psycopg
import structlog
from eventsourcing.domain import DomainEventProtocol
from eventsourcing.persistence import Tracking
from eventsourcing.postgres import PostgresApplicationRecorder, PostgresDatastore, PostgresTrackingRecorder
from psycopg.rows import class_row, tuple_row
from psycopg.sql import SQL, Composed, Identifier
from psycopg.types.json import Jsonb

from application.metadata import MetadataMapper
from application.pressroom import Pressroom

log = structlog.get_logger()

Event = DomainEventProtocol[Any]
Batch = Sequence[tuple[int, Event]]


class ReadModel(Protocol):
    """A read model: its tables, the events it reads, and how a batch of them changes the tables."""

    @property
    def name(self) -> str: ...

    @property
    def ddl(self) -> Sequence[str]: ...

    @property
    def handles(self) -> type:
        """The class of the events it reads (`object`: every event); it is given no others."""
        ...

    def apply(self, cursor: psycopg.Cursor[Any], batch: Batch) -> None: ...


class EventRouter:
    """Splits batches into each read model's events, in log order, looking each event class up once:
    most read models read one aggregate's events, and looking at every event cost each of them time."""

    def __init__(self, read_models: Sequence[ReadModel]) -> None:
        self.read_models = read_models
        self._routes: dict[type, tuple[int, ...]] = {}

    def split(self, batch: Batch) -> list[list[tuple[int, Event]]]:
        parts: list[list[tuple[int, Event]]] = [[] for _ in self.read_models]
        routes = self._routes
        for item in batch:
            event_class = type(item[1])
            targets = routes.get(event_class)
            if targets is None:
                targets = routes[event_class] = tuple(i for i, m in enumerate(self.read_models) if issubclass(event_class, m.handles))
            for i in targets:
                parts[i].append(item)
        return parts


class LogConsumer(Protocol):
    """Anything that follows the log: a read model's view, or the relay."""

    name: str

    def position(self) -> int | None: ...

    def handle(self, batch: Batch) -> None: ...


class TrackedConsumer(PostgresTrackingRecorder):
    """A log consumer whose position is the tracking record of the application it follows."""

    def __init__(self, datastore: PostgresDatastore, name: str, application_name: str) -> None:
        super().__init__(datastore, tracking_table_name=f"{name}_tracking")
        self.name = name
        self.application_name = application_name

    def position(self) -> int | None:
        position: int | None = self.max_tracking_id(self.application_name)
        return position


class ProjectionView(TrackedConsumer):
    """A read model's tables and its tracking table, written together."""

    def __init__(self, datastore: PostgresDatastore, read_model: ReadModel, application_name: str) -> None:
        super().__init__(datastore, read_model.name, application_name)
        self.read_model = read_model
        self.router = EventRouter([read_model])
        self.sql_create_statements.extend(SQL(statement) for statement in read_model.ddl)  # type: ignore[misc,arg-type]

        table = Identifier(datastore.schema, self.tracking_table_name)
        self._first_position = SQL(
            "INSERT INTO {} (application_name, notification_id) VALUES (%s, %s) ON CONFLICT (application_name) DO NOTHING "
            "RETURNING notification_id"
        ).format(table)
        self._next_position = SQL(
            "UPDATE {} SET notification_id = %s WHERE application_name = %s AND notification_id = %s RETURNING notification_id"
        ).format(table)

    def handle(self, batch: Batch) -> None:
        with self.datastore.transaction(commit=True) as cursor:
            self.read_model.apply(cursor, self.router.split(batch)[0])  # type: ignore[arg-type]
            self._insert_tracking(cursor, Tracking(self.application_name, batch[-1][0]))

    def advance(self, cursor: psycopg.Cursor[Any], events: Batch, after: int, position: int) -> psycopg.Cursor[Any]:
        """Applies the read model's events of a batch and moves its position from `after` to `position`, only if
        it is still at `after`: whoever moved it meanwhile (a rebuild swapped in, another process) wins. The move's
        cursor holds a row if it moved; `confirm` it before the transaction commits."""
        if events:
            self.read_model.apply(cursor, events)
        # A cursor of its own: in a pipeline, each statement's result stays with the cursor that sent it.
        if after:
            return cursor.connection.execute(self._next_position, (position, self.application_name, after), prepare=True)
        return cursor.connection.execute(self._first_position, (self.application_name, position), prepare=True)

    def confirm(self, moved: psycopg.Cursor[Any]) -> None:
        """Raises StaleTracking, so the transaction rolls back, if `advance` found the position moved by someone else."""
        if moved.fetchone() is None:
            raise StaleTracking(f"{self.name} is no longer where this process knew it")


class StaleTracking(Exception):
    """A read model's position moved under a writer that thought it knew it."""


class ProjectionGroup:
    """Every read model of a process, fed from one reading of the log: a batch is read and decoded once, split
    between the read models, and all their changes and positions are written in one transaction.

    Positions are kept in memory between batches, and each write moves a position only from where it was known
    to be, so a position moved by anyone else (a rebuild's swap, another process) rolls the batch back and the
    positions are read again. A batch that fails is applied again a read model per transaction: the others
    advance, and one that fails is left behind, retried after `retry_after` seconds, while the others keep up."""

    name = "projections"

    def __init__(self, datastore: PostgresDatastore, views: Sequence[ProjectionView], *, retry_after: float = 10.0) -> None:
        self.datastore = datastore
        self.views = views
        self.retry_after = retry_after
        self.router = EventRouter([view.read_model for view in views])
        self._positions: list[int] | None = None
        self._failed_at: dict[int, float] = {}  # read models left behind, by index, since when

    def position(self) -> int | None:
        now = time.monotonic()
        self._failed_at = {i: at for i, at in self._failed_at.items() if now - at < self.retry_after}
        return self._reading_from()

    def _reading_from(self) -> int | None:
        positions = self._known()
        followed = [position for i, position in enumerate(positions) if i not in self._failed_at]
        return min(followed or positions, default=None)

    def _known(self) -> list[int]:
        if self._positions is None:
            self._positions = [view.position() or 0 for view in self.views]
        return self._positions

    def handle(self, batch: Batch) -> None:
        positions = self._known()
        start, last = self._reading_from() or 0, batch[-1][0]
        parts = self.router.split(batch)
        due = self._due(positions, start, last)
        try:
            with self.datastore.transaction(commit=True) as cursor:
                # Pipelined: the read models' writes and every position's move go with the next read, or the
                # end, rather than a round trip each; at a dozen read models the round trips were most of a batch.
                with cursor.connection.pipeline():
                    # Not waiting for the commit's flush is safe: rows and positions commit together, so a crash
                    # that loses the commit loses both, and the events are read again from the durable log.
                    cursor.execute(_ASYNCHRONOUS_COMMIT)
                    moves = [self._advance(cursor, i, parts, positions, last) for i in due]
                for i, moved in zip(due, moves, strict=True):
                    self.views[i].confirm(moved)
        except Exception:  # noqa: BLE001 - whatever it was, each read model gets its own try
            self._positions = None
            self._one_by_one(parts, start, last)
            return
        for i in due:
            positions[i] = last

    def _due(self, positions: list[int], start: int, last: int) -> list[int]:
        """The read models a batch from `start` to `last` moves on (one behind `start` needs events before it)."""
        return [i for i, position in enumerate(positions) if start <= position < last and i not in self._failed_at]

    def _advance(
        self, cursor: psycopg.Cursor[Any], i: int, parts: list[list[tuple[int, Event]]], positions: list[int], last: int
    ) -> psycopg.Cursor[Any]:
        return self.views[i].advance(cursor, [item for item in parts[i] if item[0] > positions[i]], positions[i], last)

    def _one_by_one(self, parts: list[list[tuple[int, Event]]], start: int, last: int) -> None:
        positions = self._known()
        errors: list[Exception] = []
        advanced = 0
        for i in self._due(positions, start, last):
            try:
                with self.datastore.transaction(commit=True) as cursor:
                    self.views[i].confirm(self._advance(cursor, i, parts, positions, last))
            except StaleTracking:
                self._positions = None  # moved by another writer: read again before the next batch
            except Exception as error:  # noqa: BLE001 - that read model's alone
                errors.append(error)
                self._failed_at[i] = time.monotonic()
                log.error("read_model_failed", read_model=self.views[i].name, position=positions[i], error=repr(error))
            else:
                positions[i] = last
                advanced += 1
        if errors and not advanced:
            raise errors[0]


def read_batch(app: Pressroom, *, after: int | None, limit: int, stop: int | None = None) -> Batch:
    """The events after a log position (up to `stop`), decoded, with their positions.

    What the recorder's `select_notifications` returns, read in binary and without its dict,
    Notification and StoredEvent per row, which cost a rebuild nearly as much as decoding the events.
    """
    recorder = cast(PostgresApplicationRecorder, app.recorder)
    query = _select_events(recorder.datastore.schema, recorder.events_table_name, stop is not None)
    params = (after or 0, limit) if stop is None else (after or 0, stop, limit)
    with recorder.datastore.get_connection() as conn, conn.cursor(row_factory=tuple_row, binary=True) as cursor:
        rows = cursor.execute(query, params, prepare=True).fetchall()
    event_from = cast(MetadataMapper, app.mapper).event_from
    return [(row[0], event_from(row[1], row[2], row[3], row[4])) for row in rows]


@cache
def _select_events(schema: str, table: str, bounded: bool) -> Composed:
    return SQL(
        "SELECT notification_id, originator_id, originator_version, topic, state FROM {}.{} "
        "WHERE notification_id > %s {} ORDER BY notification_id LIMIT %s"
    ).format(Identifier(schema), Identifier(table), SQL("AND notification_id <= %s" if bounded else ""))


class LogFollower:
    """Feeds a consumer every event after its position, in batches, woken by LISTEN/NOTIFY.

    It also polls once a second, so a lost notification or a dead LISTEN connection only
    delays the consumer, never stops it. With `gather_seconds`, a consumer for which a few
    milliseconds do not matter waits that long after a notification before it reads, so that the
    events of concurrent commits come as one batch: its cost per batch (reading its position,
    a round trip to the broker, recording its position) is then paid once for many events.
    """

    def __init__(
        self,
        app: Pressroom,
        consumer: LogConsumer,
        *,
        database_url: str,
        batch_size: int = 500,
        poll_seconds: float = 1.0,
        gather_seconds: float = 0.0,
    ) -> None:
        self.app = app
        self.consumer = consumer
        self.database_url = database_url
        self.batch_size = batch_size
        self.poll_seconds = poll_seconds
        self.gather_seconds = gather_seconds
        self.channel = f"{app.name}_events".lower()

    def catch_up(self) -> int:
        """Feeds every event recorded so far; returns how many."""
        total = 0
        while batch := self._next_batch():
            self.consumer.handle(batch)
            total += len(batch)
        return total

    def _next_batch(self) -> Batch:
        return read_batch(self.app, after=self.consumer.position(), limit=self.batch_size)

    def run(self, stop: threading.Event, on_error: Callable[[BaseException], None] | None = None) -> None:
        while not stop.is_set():
            try:
                with psycopg.connect(self.database_url, autocommit=True) as listener:
                    listener.execute(SQL("LISTEN {}").format(psycopg.sql.Identifier(self.channel)))
                    while not stop.is_set():
                        if self.catch_up() == 0:
                            for _ in listener.notifies(timeout=self.poll_seconds, stop_after=1):
                                stop.wait(self.gather_seconds)  # a notification: let the commits right behind it land
            except Exception as error:  # noqa: BLE001 - supervise: log, back off, resume from the tracked position
                log.error("log_follower_failed", consumer=self.consumer.name, error=repr(error))
                if on_error is not None:
                    on_error(error)
                stop.wait(1.0)


_ASYNCHRONOUS_COMMIT = SQL("SET LOCAL synchronous_commit = off")

R = TypeVar("R", bound=msgspec.Struct)


@dataclass(frozen=True)
class EvolvedRows(Generic[R]):
    """The rows a batch touched, by their key's int: as they were (those that existed) and as its events left them."""

    before: dict[int, R]
    after: dict[int, R | None]

    @property
    def rows(self) -> list[R]:
        """The rows to write: every touched row that is not gone."""
        return [row for row in self.after.values() if row is not None]


def evolve_rows(
    cursor: psycopg.Cursor[Any],
    batch: Batch,
    *,
    table: str,
    key: str,
    row_type: type[R],
    key_of: Callable[[Event], UUID | None],
    evolve: Callable[[R | None, Event], R | None],
) -> EvolvedRows[R]:
    """The rows a batch changes: loaded in one query, each folded through `evolve` in log order.
    A read model whose rows are a pure function of their events writes their `rows`."""
    keyed = [(k, event) for _, event in batch if (k := key_of(event)) is not None]
    if not keyed:
        return EvolvedRows({}, {})
    # Keyed by each UUID's int: a UUID hashes and compares in Python code, an int in C.
    keys = {k.int: k for k, _ in keyed}
    with cursor.connection.cursor(row_factory=class_row(row_type)) as reader:
        found = reader.execute(
            SQL("SELECT * FROM {} WHERE {} = ANY(%b)").format(Identifier(table), Identifier(key)), (list(keys.values()),)
        ).fetchall()
    before: dict[int, R] = {getattr(row, key).int: row for row in found}
    after: dict[int, R | None] = dict(before)
    for k, event in keyed:
        after[k.int] = evolve(after.get(k.int), event)
    return EvolvedRows(before, after)


def upsert_statement(table: str, columns: Sequence[str]) -> str:
    """INSERT … ON CONFLICT (first column) DO UPDATE of every other column."""
    return (
        f"INSERT INTO {table} ({', '.join(columns)}) VALUES ({', '.join(['%s'] * len(columns))}) "
        f"ON CONFLICT ({columns[0]}) DO UPDATE SET {', '.join(f'{c} = EXCLUDED.{c}' for c in columns[1:])}"
    )


def write_rows(cursor: psycopg.Cursor[Any], table: str, rows: Sequence[msgspec.Struct], *, upsert_on: str | None = None) -> None:
    """Inserts rows whose fields are the table's columns (or, with `upsert_on`, inserts or updates
    them by that key; no two rows may share it), all in one statement: msgspec encodes them as one
    JSON array, in C, and PostgreSQL expands it. Row by row, psycopg spent more time than the rows'
    own making, and PostgreSQL a statement per row."""
    if rows:
        cursor.execute(_write_statement(table, type(rows[0]), upsert_on), (Jsonb(rows, dumps=msgspec.json.encode),))


@cache
def _write_statement(table: str, row_type: type[msgspec.Struct], upsert_on: str | None) -> str:
    columns = row_type.__struct_fields__
    listed = ", ".join(columns)
    statement = f"INSERT INTO {table} ({listed}) SELECT {listed} FROM jsonb_populate_recordset(NULL::{table}, %s)"
    if upsert_on is not None:
        statement += f" ON CONFLICT ({upsert_on}) DO UPDATE SET {', '.join(f'{c} = EXCLUDED.{c}' for c in columns if c != upsert_on)}"
    return statement
