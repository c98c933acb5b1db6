"""Read models follow the log exactly once: replay gives the same rows, a replayed position changes nothing."""

from __future__ import annotations

import time
from typing import Any

import psycopg
import pytest
from eventsourcing.persistence import IntegrityError

from adapters.bootstrap import Container
from projections.catalog import READ_MODELS
from projections.engine import Batch, LogFollower, ProjectionGroup
from projections.jobs import job_counts
from projections.rebuild import verify
from tests.conftest import Background, catch_up_all, wait_for

BRIEF: dict[str, Any] = {"product": {"name": "Desk Lamp"}, "platform": "x", "count": 1}
TABLES = {"jobs": "id", "credit_ledger": "position", "api_keys": "id"}


def snapshot(container: Container) -> dict[str, list[tuple[Any, ...]]]:
    with psycopg.connect(container.database_url) as conn:
        return {table: conn.execute(f"SELECT * FROM {table} ORDER BY {order}").fetchall() for table, order in TABLES.items()}


def history(container: Container) -> None:
    """A few workspaces with jobs in every state the foundation has."""
    app = container.app
    for n in range(3):
        workspace, _ = app.create_workspace(f"Workspace {n}")
        app.top_up(workspace.id, 10, reference=f"order-{n}")
        app.issue_key(workspace.id, "second")
        done = app.request_job(workspace.id, "copy", BRIEF, outputs=1, idempotency_key=f"k{n}").job
        attempt = app.start_job(done.id, "w").attempts  # type: ignore[union-attr]
        app.complete_job(done.id, attempt, [{"hook": "h", "body": "b", "cta": "c", "hashtags": []}])
        failed = app.request_job(workspace.id, "copy", BRIEF, outputs=1).job
        attempt = app.start_job(failed.id, "w").attempts  # type: ignore[union-attr]
        app.fail_job(failed.id, attempt, "bad", "no", retryable=False)
        app.request_job(workspace.id, "copy", BRIEF, outputs=1)


def test_read_models_when_rebuilt_from_zero_are_identical(container: Container) -> None:
    history(container)
    catch_up_all(container)
    live = snapshot(container)
    with psycopg.connect(container.database_url, autocommit=True) as conn:
        for table in TABLES:
            conn.execute(f"TRUNCATE {table}, {table}_tracking")

    catch_up_all(container)

    assert snapshot(container) == live
    assert len(live["jobs"]) == 9 and len(live["api_keys"]) == 6
    statuses = sorted(row[3] for row in live["jobs"])
    assert statuses == ["completed"] * 3 + ["failed"] * 3 + ["queued"] * 3


def test_batch_at_an_already_recorded_position_is_refused_and_changes_nothing(container: Container) -> None:
    history(container)
    catch_up_all(container)
    before = snapshot(container)
    notifications = container.app.recorder.select_notifications(start=None, limit=50)
    batch = [(n.id, container.app.mapper.to_domain_event(n)) for n in notifications]

    for view in container.views():
        with pytest.raises(IntegrityError):
            view.handle(batch)

    assert snapshot(container) == before


def test_ledger_balance_after_matches_the_account(container: Container) -> None:
    history(container)
    catch_up_all(container)

    with psycopg.connect(container.database_url) as conn:
        latest = conn.execute(
            "SELECT DISTINCT ON (workspace_id) workspace_id, balance_after FROM credit_ledger ORDER BY workspace_id, position DESC"
        ).fetchall()

    assert latest and all(balance == container.app.credit_account(ws).balance for ws, balance in latest)
    assert {balance for _, balance in latest} == {58}


def test_running_projections_follow_new_events_within_moments(container: Container, background: Background) -> None:
    background.start(container.run_projections)
    workspace, _ = container.app.create_workspace("Live")

    container.app.request_job(workspace.id, "copy", BRIEF, outputs=1)

    wait_for(lambda: len(snapshot(container)["jobs"]) == 1, timeout=5)
    head = container.app.recorder.max_notification_id()
    wait_for(lambda: all(view.position() == head for view in container.views()), timeout=5)


class Batches:
    """A log consumer that remembers the size of each batch it was handed."""

    name = "batches"

    def __init__(self, after: int | None) -> None:
        self.at = after
        self.sizes: list[int] = []

    def position(self) -> int | None:
        return self.at

    def handle(self, batch: Batch) -> None:
        self.sizes.append(len(batch))
        self.at = batch[-1][0]


def test_a_follower_that_gathers_takes_commits_made_close_together_in_one_batch(container: Container, background: Background) -> None:
    app = container.app
    workspace, _ = app.create_workspace("Busy")
    consumer = Batches(app.recorder.max_notification_id())
    background.start(LogFollower(app, consumer, database_url=container.database_url, poll_seconds=30, gather_seconds=0.6).run)
    app.top_up(workspace.id, 1, reference="first")
    wait_for(lambda: consumer.sizes)  # it has taken the first, so it is listening now
    time.sleep(0.2)
    head = app.recorder.max_notification_id()

    for n in range(5):  # five commits 30 ms apart: without gathering, five batches
        app.top_up(workspace.id, 1, reference=f"next-{n}")
        time.sleep(0.03)

    wait_for(lambda: consumer.at == app.recorder.max_notification_id())
    later = consumer.sizes[1:]
    # One batch; two if the follower was still reading when the first of them landed.
    assert sum(later) == app.recorder.max_notification_id() - head and len(later) <= 2


def test_a_read_model_that_fails_stays_behind_while_the_others_keep_up_then_catches_up(container: Container) -> None:
    history(container)
    head = container.app.recorder.max_notification_id()
    with psycopg.connect(container.database_url, autocommit=True) as conn:
        conn.execute("ALTER TABLE jobs RENAME TO jobs_away")  # the jobs read model's writes now fail in PostgreSQL
    url = container.database_url

    LogFollower(container.app, ProjectionGroup(container.datastore, container.views()), database_url=url, batch_size=7).catch_up()

    positions = {view.name: view.position() or 0 for view in container.views()}
    assert positions.pop("jobs") < head
    assert set(positions.values()) == {head}

    with psycopg.connect(container.database_url, autocommit=True) as conn:
        conn.execute("ALTER TABLE jobs_away RENAME TO jobs")
    # A restarted projections process tries every read model again.
    LogFollower(container.app, ProjectionGroup(container.datastore, container.views()), database_url=url, batch_size=7).catch_up()

    assert {view.position() for view in container.views()} == {head}
    assert not [drift for model in READ_MODELS for drift in verify(container.app, container.database_url, model)]


def test_a_position_another_writer_moved_is_not_applied_again(container: Container) -> None:
    """The group keeps positions in memory: a rebuild's swap or a second projections process moving one must
    not make it apply those events a second time (credit usage would take a job's refund off twice)."""
    app = container.app
    workspace, _ = app.create_workspace("Acme")
    job = app.request_job(workspace.id, "copy", BRIEF, outputs=1).job
    follower = LogFollower(app, ProjectionGroup(container.datastore, container.views()), database_url=container.database_url)
    follower.catch_up()
    app.cancel_job(workspace.id, job.id)  # refunds the job's credit
    usage = next(view for view in container.views() if view.name == "credit_usage")
    LogFollower(app, usage, database_url=container.database_url).catch_up()  # the other writer, up to the refund
    app.request_job(workspace.id, "copy", BRIEF, outputs=1)

    follower.catch_up()  # one batch, from before the refund to after the other writer's position

    head = app.recorder.max_notification_id()
    assert {view.position() for view in container.views()} == {head}
    with psycopg.connect(container.database_url) as conn:
        assert conn.execute("SELECT credits FROM credit_usage WHERE job_id = %s", (job.id,)).fetchone() == (0,)
    assert not [drift for model in READ_MODELS for drift in verify(app, container.database_url, model)]


def counted(container: Container) -> dict[tuple[str, str], int]:
    return {(c.type, c.status): c.jobs for c in job_counts(container.pool)}


def test_job_counts_are_the_jobs_by_type_and_status_whatever_the_batches(container: Container) -> None:
    history(container)
    catch_up_all(container, batch_size=1)

    assert counted(container) == {("copy", "completed"): 3, ("copy", "failed"): 3, ("copy", "queued"): 3}
    # A rebuild takes thousands of events a batch, where this took one: the same counts, and no count of 0 left.
    jobs = next(model for model in READ_MODELS if model.name == "jobs")
    assert verify(container.app, container.database_url, jobs) == []


def test_a_database_from_before_job_counts_has_its_jobs_counted_once(container: Container) -> None:
    history(container)
    catch_up_all(container)
    with psycopg.connect(container.database_url, autocommit=True) as conn:
        conn.execute("DROP TABLE job_counts")
    jobs_view = next(view for view in container.views() if view.name == "jobs")

    jobs_view.create_table()
    jobs_view.create_table()  # the schema is created at every start: counted once, not again
    workspace, _ = container.app.create_workspace("Later")
    container.app.request_job(workspace.id, "copy", BRIEF, outputs=1)
    catch_up_all(container)

    assert counted(container) == {("copy", "completed"): 3, ("copy", "failed"): 3, ("copy", "queued"): 4}
