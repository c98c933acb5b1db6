"""Credit-account snapshots on real PostgreSQL: taken after the save that calls for one has returned, never
making a command wait or fail."""

from __future__ import annotations

import threading
from uuid import UUID

import psycopg
from eventsourcing.postgres import PostgresAggregateRecorder
from psycopg.sql import SQL, Identifier

from adapters.bootstrap import Container
from application.pressroom import ACCOUNT_SNAPSHOT_INTERVAL, Pressroom
from domain.credit_account import CreditAccount


def top_up_to_version(app: Pressroom, workspace_id: UUID, version: int) -> None:
    """Tops up one credit at a time until the account's last event has `version`."""
    while app.credit_account(workspace_id).version < version:
        app.top_up(workspace_id, 1, f"pack-{app.credit_account(workspace_id).version}")


def snapshot_versions(app: Pressroom, workspace_id: UUID) -> list[int]:
    assert app.snapshots is not None
    return [snapshot.originator_version for snapshot in app.snapshots.get(CreditAccount.id_for(workspace_id))]


def snapshots_table(app: Pressroom) -> tuple[str, str]:
    assert app.snapshots is not None and isinstance(app.snapshots.recorder, PostgresAggregateRecorder)
    return app.snapshots.recorder.datastore.schema, app.snapshots.recorder.events_table_name


def rename(database_url: str, schema: str, table: str, to: str) -> None:
    with psycopg.connect(database_url, autocommit=True) as conn:
        conn.execute(SQL("ALTER TABLE {} RENAME TO {}").format(Identifier(schema, table), Identifier(to)))


def test_an_account_that_reaches_the_interval_is_snapshotted_and_loads_the_same(container: Container) -> None:
    app = container.app
    workspace_id = app.create_workspace("Acme")[0].id
    opened = app.credit_account(workspace_id)

    top_up_to_version(app, workspace_id, ACCOUNT_SNAPSHOT_INTERVAL)
    app.snapshotter.wait()

    assert snapshot_versions(app, workspace_id) == [ACCOUNT_SNAPSHOT_INTERVAL]
    from_snapshot = app.repository.get(CreditAccount.id_for(workspace_id), version=ACCOUNT_SNAPSHOT_INTERVAL)  # not from the cache
    assert from_snapshot.balance == app.credit_account(workspace_id).balance == opened.balance + ACCOUNT_SNAPSHOT_INTERVAL - opened.version


def test_a_command_that_calls_for_a_snapshot_does_not_wait_for_it(container: Container) -> None:
    app = container.app
    workspace_id = app.create_workspace("Acme")[0].id
    top_up_to_version(app, workspace_id, ACCOUNT_SNAPSHOT_INTERVAL - 1)

    with psycopg.connect(container.database_url) as blocker:
        blocker.execute(
            SQL("LOCK TABLE {} IN ACCESS EXCLUSIVE MODE").format(Identifier(*snapshots_table(app)))
        )  # the snapshot cannot be taken
        command = threading.Thread(target=app.top_up, args=(workspace_id, 1, "the-200th-event"))
        command.start()
        command.join(timeout=10)
        assert not command.is_alive()
        assert app.credit_account(workspace_id).version == ACCOUNT_SNAPSHOT_INTERVAL
        blocker.rollback()

    app.snapshotter.wait()
    assert snapshot_versions(app, workspace_id) == [ACCOUNT_SNAPSHOT_INTERVAL]


def test_a_snapshot_that_fails_fails_no_command_and_the_next_interval_takes_one(container: Container) -> None:
    app = container.app
    workspace_id = app.create_workspace("Acme")[0].id
    opened = app.credit_account(workspace_id)
    schema, table = snapshots_table(app)
    rename(container.database_url, schema, table, to="snapshots_away")
    try:
        top_up_to_version(app, workspace_id, ACCOUNT_SNAPSHOT_INTERVAL)
        app.snapshotter.wait()
    finally:
        rename(container.database_url, schema, "snapshots_away", to=table)

    assert snapshot_versions(app, workspace_id) == []
    top_up_to_version(app, workspace_id, 2 * ACCOUNT_SNAPSHOT_INTERVAL)
    app.snapshotter.wait()
    assert snapshot_versions(app, workspace_id) == [2 * ACCOUNT_SNAPSHOT_INTERVAL]
    assert app.credit_account(workspace_id).balance == opened.balance + 2 * ACCOUNT_SNAPSHOT_INTERVAL - opened.version
