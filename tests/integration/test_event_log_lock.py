"""Writers of the event log are serialised by an advisory lock, not a table lock: vacuum never holds them up."""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any
from uuid import uuid4

import psycopg
from psycopg import pq

from adapters.bootstrap import Container
from adapters.eventstore import EventLogRecorder, open_application, writers_lock_statement
from domain.workspace import Workspace
from tests.conftest import event_log_of, events_table


def test_events_table_held_as_vacuum_holds_it_when_a_workspace_is_created_then_the_write_does_not_wait(container: Container) -> None:
    with psycopg.connect(container.database_url) as vacuum:
        vacuum.execute(f"LOCK TABLE {events_table(container)} IN SHARE UPDATE EXCLUSIVE MODE")  # what (auto)vacuum holds
        started = time.monotonic()
        workspace = container.app.create_workspace("Acme")[0]
        took = time.monotonic() - started
        vacuum.rollback()

    assert container.app.get_workspace(workspace.id).name == "Acme"
    assert took < 2.0  # the library's EXCLUSIVE table lock waited here for the 5 s lock timeout, then failed


def test_writer_mid_transaction_when_another_writes_then_the_other_waits_for_its_commit(container: Container) -> None:
    recorder = event_log_of(container)
    done: list[Any] = []
    with psycopg.connect(container.database_url) as writer:
        writer.execute(writers_lock_statement(recorder))
        other = threading.Thread(target=lambda: done.append(container.app.create_workspace("Later")))
        other.start()
        other.join(timeout=1.0)
        waited = not done
        writer.commit()
    other.join(timeout=10)

    assert waited and len(done) == 1


def test_vacuum_leaves_the_empty_tail_of_the_log_in_place_rather_than_locking_writers_out_to_cut_it(container: Container) -> None:
    """Cutting a table's empty tail takes an ACCESS EXCLUSIVE lock that stops every writer; aborted inserts
    (a writer that lost a race for an aggregate version) leave such a tail on the log."""
    container.app.create_workspace("Acme")
    table = events_table(container)
    with psycopg.connect(container.database_url) as aborted:
        aborted.execute(
            f"INSERT INTO {table} (originator_id, originator_version, topic, state) "
            "SELECT gen_random_uuid(), 1, 'aborted', repeat('x', 500)::bytea FROM generate_series(1, 5000)"
        )
        aborted.rollback()
    with psycopg.connect(container.database_url, autocommit=True) as conn:
        size = conn.execute("SELECT pg_relation_size(%s)", (table,)).fetchone()
        conn.execute(f"VACUUM {table}")
        assert conn.execute("SELECT pg_relation_size(%s)", (table,)).fetchone() == size


def traced_save(url: str, tmp_path: Path, *, as_shipped: bool) -> tuple[int, int, str]:
    """Saves a workspace, after a first save that prepared the statements; returns how many times the save waited
    for PostgreSQL's answer (ReadyForQuery), how many notifications a listener got, and the name read back."""
    app = open_application(url, pool_size=1, create_tables=True)
    recorder = app.recorder
    assert isinstance(recorder, EventLogRecorder)
    if as_shipped:
        recorder.write_as_shipped()
    traces = [tmp_path / "first.trace", tmp_path / "second.trace"]
    workspace = Workspace.open(uuid4(), "Acme")
    try:
        app.save(Workspace.open(uuid4(), "First"))
        with psycopg.connect(url, autocommit=True) as listener, contextlib.ExitStack() as files:
            listener.execute(f"LISTEN {recorder.channel_name}")
            with contextlib.ExitStack() as borrowed:
                pooled = [borrowed.enter_context(recorder.datastore.get_connection()) for _ in traces]  # all the pool holds
                for conn, path in zip(pooled, traces, strict=True):
                    conn.pgconn.trace(files.enter_context(path.open("w")).fileno())
                    conn.pgconn.set_trace_flags(pq.Trace.SUPPRESS_TIMESTAMPS | pq.Trace.REGRESS_MODE)
            app.save(workspace)
            for conn in pooled:
                conn.pgconn.untrace()
            notified = list(listener.notifies(timeout=5, stop_after=1))
        saved: Workspace = app.repository.get(workspace.id)
    finally:
        app.close()
    return sum(path.read_text().count("ReadyForQuery") for path in traces), len(notified), saved.name


def test_save_then_its_events_are_written_in_one_round_trip_and_listeners_notified(new_database: Callable[[], str], tmp_path: Path) -> None:
    assert traced_save(new_database(), tmp_path, as_shipped=False) == (1, 1, "Acme")


def test_event_log_written_as_eventsourcing_ships_then_a_save_waits_on_postgresql_again_and_again(
    new_database: Callable[[], str], tmp_path: Path
) -> None:
    """The bench's baseline: the library's transaction, its lock held while the client and server talk."""
    exchanges, notified, name = traced_save(new_database(), tmp_path, as_shipped=True)

    assert exchanges > 1
    assert (notified, name) == (1, "Acme")
