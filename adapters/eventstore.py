"""The event store's configuration: eventsourcing's PostgreSQL persistence from a database URL."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from typing import Any

from eventsourcing.persistence import ApplicationRecorder, InterfaceError, OperationalError, StoredEvent
from eventsourcing.postgres import PostgresApplicationRecorder, PostgresDatastore
from eventsourcing.utils import retry
from psycopg import Cursor
from psycopg.conninfo import conninfo_to_dict
from psycopg.generators import send
from psycopg.rows import DictRow, tuple_row
from psycopg.sql import SQL, Composed, Identifier, Literal

from adapters.grouped_inserts import GroupedInserts
from application.ports import Clock, MediaStore
from application.pressroom import Pressroom
from domain.pricing import Pricing

EVENT_LOG_LOCK_SCOPE = 0x5052_4553


class SystemClock:
    def now(self) -> datetime:
        return datetime.now(UTC)


def eventstore_env(database_url: str, *, pool_size: int = 10, create_tables: bool = False) -> dict[str, str]:
    params: dict[str, Any] = conninfo_to_dict(database_url)
    return {
        "PERSISTENCE_MODULE": "eventsourcing.postgres",
        "POSTGRES_DBNAME": str(params.get("dbname", "postgres")),
        "POSTGRES_HOST": str(params.get("host", "localhost")),
        "POSTGRES_PORT": str(params.get("port", "5432")),
        "POSTGRES_USER": str(params.get("user", "postgres")),
        "POSTGRES_PASSWORD": str(params.get("password", "")),
        "POSTGRES_SCHEMA": "public",
        "POSTGRES_POOL_SIZE": str(pool_size),
        "POSTGRES_MAX_OVERFLOW": str(pool_size),
        # Waiting forever on the events table lock would hang requests; fail and retry instead.
        "POSTGRES_LOCK_TIMEOUT": "5",
        "POSTGRES_PRE_PING": "n",
        "CREATE_TABLE": "y" if create_tables else "n",
        # Loads start from the cached aggregate and read only the events after it, so a load
        # does not grow with an aggregate's history; every load still sees every newer event.
        "AGGREGATE_CACHE_MAXSIZE": "10000",
        "AGGREGATE_CACHE_FASTFORWARD": "y",
        "APPLICATION_RECORDER_TOPIC": f"{__name__}:EventLogRecorder",
    }


class EventLogRecorder(PostgresApplicationRecorder):
    """eventsourcing's PostgreSQL application recorder, inserting a transaction's events as four plain arrays,
    sent in binary (`%b`): the library's array of a composite type, and `%s` arrays too, are written out as
    text in Python, each state as escaped hex (~40 µs an event, a tenth of the API process's time under load),
    where binary arrays cost ~2 µs an event. Its table is never truncated by vacuum.

    An insert is one statement, a call of a function that takes the writers' lock, notifies the log's channel
    and inserts the events: on an autocommit connection the statement is its own transaction, committed before
    its answer comes, so a save is one round trip. The library's transaction (BEGIN, the lock, NOTIFY, the
    insert and COMMIT, in a pipeline) waited for PostgreSQL's answer five times, the writers' lock held
    throughout, and polled the socket ~25 times: each poll let go of the GIL, to wait to take it back from
    the API's event loop.
    An insert that carries a process application's tracking record keeps the library's transaction, as does
    every insert once `write_as_shipped` is called.

    Once `group_inserts` is called, concurrent commands' inserts share transactions (adapters/grouped_inserts.py),
    except a save's that says `grouped=False`: its events are a group already, written in the caller's transaction."""

    def __init__(self, datastore: PostgresDatastore, **kwargs: Any) -> None:
        super().__init__(datastore, **kwargs)
        self.shipped_lock_statements = list(self.lock_table_statements)
        # Truncating the table's empty tail (left by aborted inserts) takes an ACCESS EXCLUSIVE lock, which stops
        # every writer while vacuum waits for it and holds it. The log only grows: the tail is soon used again.
        self.sql_create_statements.append(
            SQL("ALTER TABLE {}.{} SET (vacuum_truncate = false)").format(Identifier(datastore.schema), Identifier(self.events_table_name))
        )
        self.insert_events_statement = SQL(
            "INSERT INTO {}.{} (originator_id, originator_version, topic, state) "
            "SELECT * FROM unnest(%b::{}[], %b::bigint[], %b::text[], %b::bytea[]) RETURNING notification_id"
        ).format(Identifier(datastore.schema), Identifier(self.events_table_name), SQL(datastore.originator_id_type))
        insert_function = Identifier(datastore.schema, f"{self.events_table_name}_insert")
        self.sql_create_statements.append(
            SQL(
                "CREATE OR REPLACE FUNCTION {function}(ids {id_type}[], versions bigint[], topics text[], states bytea[]) "
                "RETURNS SETOF bigint LANGUAGE plpgsql SET lock_timeout = {lock_timeout} AS $$ BEGIN "
                "PERFORM {lock}; PERFORM pg_notify({channel}, ''); "
                "RETURN QUERY INSERT INTO {table} (originator_id, originator_version, topic, state) "
                "SELECT * FROM unnest(ids, versions, topics, states) RETURNING notification_id; END $$"
            ).format(
                function=insert_function,
                id_type=SQL(datastore.originator_id_type),
                lock_timeout=Literal(f"{datastore.lock_timeout}s"),
                lock=writers_lock(self),
                channel=Literal(self.channel_name),
                table=Identifier(datastore.schema, self.events_table_name),
            )
        )
        self.insert_function_call = rendered(SQL("SELECT * FROM {}(%b, %b, %b, %b)").format(insert_function))
        self.in_one_statement = True
        self.groups: GroupedInserts | None = None
        self._notify = rendered(SQL("NOTIFY {0}").format(Identifier(self.channel_name)))

    def write_as_shipped(self) -> None:
        """Every insert in the library's transaction, behind its EXCLUSIVE table lock, as eventsourcing ships it:
        the one-command-per-transaction path the benches compare the write path with."""
        self.in_one_statement = False
        self.lock_table_statements = self.shipped_lock_statements

    @contextmanager
    def written_as_shipped(self) -> Iterator[None]:
        """Inserts as eventsourcing ships them while the block runs, and as they were written before after it."""
        before = self.in_one_statement, self.lock_table_statements
        self.write_as_shipped()
        try:
            yield
        finally:
            self.in_one_statement, self.lock_table_statements = before

    def group_inserts(self) -> GroupedInserts:
        if self.groups is None:
            self.groups = GroupedInserts(self._insert)
        return self.groups

    def insert_events(self, stored_events: Sequence[StoredEvent], *, grouped: bool = True, **kwargs: Any) -> Sequence[int] | None:
        # An insert that carries more than its events (a process application's tracking record) keeps the library's path.
        if not stored_events or any(value is not None for value in kwargs.values()):
            ids: Sequence[int] | None = super().insert_events(stored_events, **kwargs)
            return ids
        if self.groups is None or not grouped:
            return self._insert(stored_events)
        return self.groups.insert(stored_events)

    def _insert(self, stored_events: Sequence[StoredEvent]) -> Sequence[int] | None:
        ids: Sequence[int] | None = (
            self._insert_in_one_statement(stored_events) if self.in_one_statement else super().insert_events(stored_events)
        )
        return ids

    @retry((InterfaceError, OperationalError), max_attempts=10, wait=0.2)  # as the library retries its insert
    def _insert_in_one_statement(self, stored_events: Sequence[StoredEvent]) -> list[int]:
        with self.datastore.get_connection() as conn, conn.cursor(row_factory=tuple_row, binary=True) as curs:
            curs.execute(self.insert_function_call, _columns(stored_events), prepare=True)
            return [row[0] for row in curs.fetchall()]

    def _insert_stored_events(self, curs: Cursor[DictRow], stored_events: Sequence[StoredEvent], **kwargs: Any) -> None:
        self._lock_table(curs)
        self._notify_channel(curs)
        curs.execute(self.insert_events_statement, _columns(stored_events), prepare=True, binary=True)
        # In pipeline mode psycopg stops writing once its commands are queued, even when the socket took only
        # part of them: an insert larger than the socket's buffer (~1 MB, at one event or at 12,000) then waited
        # forever for a reply to a statement PostgreSQL had not yet been sent, holding every writer behind it.
        # Sending all of it here leaves only the few bytes of the pipeline's sync to go after it.
        curs.connection.wait(send(curs.connection.pgconn))

    def _notify_channel(self, curs: Cursor[DictRow]) -> None:
        curs.execute(self._notify)


def _columns(stored_events: Sequence[StoredEvent]) -> tuple[list[Any], list[int], list[str], list[bytes]]:
    return (
        [event.originator_id for event in stored_events],
        [event.originator_version for event in stored_events],
        [event.topic for event in stored_events],
        [event.state for event in stored_events],
    )


def open_application(
    database_url: str,
    *,
    pool_size: int = 10,
    create_tables: bool = False,
    lease_seconds: float = 120.0,
    video_lease_seconds: float = 1800.0,
    max_attempts: int = 3,
    pricing: Pricing | None = None,
    clock: Clock | None = None,
    media: MediaStore | None = None,
) -> Pressroom:
    app = Pressroom(
        eventstore_env(database_url, pool_size=pool_size, create_tables=create_tables),
        clock=clock or SystemClock(),
        pricing=pricing,
        lease=timedelta(seconds=lease_seconds),
        video_lease=timedelta(seconds=video_lease_seconds),
        max_attempts=max_attempts,
        media=media,
    )
    serialise_writes_with_an_advisory_lock(app.recorder)
    return app


def serialise_writes_with_an_advisory_lock(recorder: ApplicationRecorder) -> None:
    """Writers of the event log take one transaction-level advisory lock instead of the library's EXCLUSIVE
    lock on the events table: it orders their commits just the same (each transaction's notification ids,
    then its commit, before the next one's), but, being no table lock, it does not conflict with (auto)vacuum,
    which a writer otherwise waited on for up to `deadlock_timeout` (1 s) before autovacuum gave way, and
    on an anti-wraparound vacuum, which never gives way, for all of its run. Every writer goes through the
    recorder, so every writer takes it."""
    if isinstance(recorder, PostgresApplicationRecorder):
        recorder.lock_table_statements = [
            rendered(SQL("SET LOCAL lock_timeout = '{0}s'").format(recorder.datastore.lock_timeout)),
            writers_lock_statement(recorder),
        ]


def rendered(statement: Composed) -> SQL:
    """A statement composed once: psycopg composes a Composed again, quoting its literals, at every execute;
    for the lock and notify statements of every insert that was ~15 µs, where a plain SQL's bytes cost ~1."""
    return SQL(statement.as_string())


def writers_lock_statement(recorder: PostgresApplicationRecorder) -> SQL:
    return rendered(SQL("SELECT {}").format(writers_lock(recorder)))


def writers_lock(recorder: PostgresApplicationRecorder) -> Composed:
    # The two-key form: its key space does not overlap the one-key form's that other advisory locks use.
    table = f"{recorder.datastore.schema}.{recorder.events_table_name}"
    return SQL("pg_advisory_xact_lock({0}, hashtext({1}))").format(Literal(EVENT_LOG_LOCK_SCOPE), Literal(table))
