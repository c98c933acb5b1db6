"""The operators' commands on real PostgreSQL: rebuild equals live, verify finds drift, state and events as they were."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
from datetime import datetime
from pathlib import Path
from typing import Any

import psycopg

from adapters.bootstrap import Container
from adapters.copy_local import LocalCopyProvider
from adapters.generation_worker import GenerationWorker
from adapters.image_local import LocalImageMaker
from adapters.video_local import LocalVideoMaker
from application.metadata import metadata
from application.ports import ImageBrief, MediaFile, ProviderError
from application.pressroom import Principal
from projections.catalog import READ_MODELS
from projections.rebuild import tables_of
from tests.conftest import Background, catch_up_all, wait_for

BRIEF: dict[str, Any] = {"product": {"name": "Lamp"}, "count": 2}


def pressroom(container: Container, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, **container.settings.to_env(), "PRESSROOM_LOG_LEVEL": "warning"}
    return subprocess.run([sys.executable, "-m", "api.cli", *args], check=False, env=env, capture_output=True, text=True, timeout=120)


def read_models(container: Container) -> dict[str, list[tuple[Any, ...]]]:
    with psycopg.connect(container.database_url) as conn:
        return {table: conn.execute(f"SELECT * FROM {table} ORDER BY 1").fetchall() for model in READ_MODELS for table in tables_of(model)}


class SecondImageRefused:
    def make(self, brief: ImageBrief, index: int) -> MediaFile:
        if index == 1:
            raise ProviderError("content_policy", "refused", retryable=False)
        return LocalImageMaker().make(brief, index)


def every_kind_of_event(container: Container) -> None:
    """A workload that records every event type the system has."""
    app = container.app
    with metadata(request_id="req-workload", actor="admin"):
        workspace = app.create_workspace("Everything", "pro")[0]
    key = app.issue_key(workspace.id, "second")
    revoker = app.issue_key(workspace.id, "third").key
    app.revoke_key(Principal(workspace_id=workspace.id, key_id=revoker.id), key.key.id)
    app.top_up(workspace.id, 40, "order-1")
    app.adjust_credits(workspace.id, -5, "fix-1", "correction")
    app.change_plan(workspace.id, "business")
    app.change_plan(workspace.id, "free")
    worker = GenerationWorker(app, LocalCopyProvider(), SecondImageRefused(), LocalVideoMaker(), "w")
    worker.run(app.request_job(workspace.id, "copy", BRIEF, 2, idempotency_key="k-1").job.id)
    worker.run(app.request_job(workspace.id, "image", {"prompt": "A brass lamp", "count": 2}, 2).job.id)
    app.cancel_job(workspace.id, app.request_job(workspace.id, "copy", BRIEF, 2).job.id)
    job = app.request_job(workspace.id, "copy", BRIEF, 2).job
    app.redrive_job(job.id, stale_before=datetime.max.replace(tzinfo=job.created_on.tzinfo))
    app.upload_asset(workspace.id, "logo.png", LocalImageMaker().make(ImageBrief(prompt="A logo for a lamp"), 0).content)


def test_rebuild_of_every_read_model_equals_the_live_ones(container: Container) -> None:
    every_kind_of_event(container)
    catch_up_all(container)
    live = read_models(container)

    rebuilt = pressroom(container, "projections", "rebuild", "--json")

    assert rebuilt.returncode == 0, rebuilt.stderr
    assert json.loads(rebuilt.stdout)["rebuilt"] == [m.name for m in READ_MODELS]
    assert read_models(container) == live
    assert all(live[table] for table in ("jobs", "credit_ledger", "credit_accounts", "credit_usage", "api_keys", "audit_log"))
    # Every model is at the head of the log, those that read none of these events (posts, runs) too: nothing is read twice.
    head = container.app.recorder.max_notification_id()
    assert {view.name: view.position() for view in container.views()} == {model.name: head for model in READ_MODELS}


def test_verify_passes_on_live_read_models_and_finds_a_corrupted_row(container: Container) -> None:
    every_kind_of_event(container)
    catch_up_all(container)
    assert pressroom(container, "projections", "verify").returncode == 0

    with psycopg.connect(container.database_url) as conn:
        conn.execute("UPDATE credit_ledger SET amount = amount + 1 WHERE type = 'topup'")

    drifted = pressroom(container, "projections", "verify")
    assert drifted.returncode == 1
    assert "DRIFT in credit_ledger" in drifted.stdout and "live only" in drifted.stdout


def test_rebuild_while_writes_continue_loses_and_doubles_nothing(container: Container, background: Background) -> None:
    background.start(container.run_projections)
    workspace = container.app.create_workspace("Busy")[0]
    container.app.top_up(workspace.id, 10_000, "order")
    writing, requested = threading.Event(), []

    def write() -> None:
        while not writing.is_set():
            requested.append(container.app.request_job(workspace.id, "copy", BRIEF, 2).job.id)

    writer = threading.Thread(target=write)
    writer.start()
    wait_for(lambda: len(requested) > 20)
    try:
        assert pressroom(container, "projections", "rebuild").returncode == 0
    finally:
        writing.set()
        writer.join()
    head = container.app.recorder.max_notification_id()
    wait_for(lambda: all(view.position() == head for view in container.views()), timeout=20)

    with psycopg.connect(container.database_url) as conn:
        jobs = conn.execute("SELECT count(*), count(DISTINCT id) FROM jobs").fetchone()
        debits = conn.execute("SELECT count(*) FROM credit_ledger WHERE type = 'debit'").fetchone()
    assert jobs == (len(requested), len(requested)) and debits == (len(requested),)
    assert pressroom(container, "projections", "verify").returncode == 0


def test_state_at_a_version_and_at_a_time_against_a_hand_built_history(container: Container) -> None:
    workspace = container.app.create_workspace("Acme")[0]
    account_id = container.app.credit_account(workspace.id).id
    container.app.top_up(workspace.id, 10, "order-1")
    between = datetime.now(workspace.created_at.tzinfo)
    container.app.top_up(workspace.id, 5, "order-2")

    at_two = json.loads(pressroom(container, "state", str(account_id), "--version", "2", "--json").stdout)
    at_time = json.loads(pressroom(container, "state", str(account_id), "--at", between.isoformat(), "--json").stdout)
    now = json.loads(pressroom(container, "state", str(account_id), "--json").stdout)

    assert (at_two["version"], at_two["state"]["allowance"], at_two["state"]["topup"]) == (2, 50, 0)
    assert (at_time["version"], at_time["state"]["topup"]) == (3, 10)
    assert (now["version"], now["state"]["topup"]) == (4, 15)


def test_events_show_prints_the_chain_from_the_request_to_the_worker(container: Container) -> None:
    workspace = container.app.create_workspace("Acme")[0]
    with metadata(request_id="req-42", actor="api_key:k"):
        job = container.app.request_job(workspace.id, "copy", BRIEF, 2).job
    with metadata(causation_id="evt-1", actor="worker:w"):
        GenerationWorker(container.app, LocalCopyProvider(), LocalImageMaker(), LocalVideoMaker(), "w").run(job.id)

    lines = pressroom(container, "events", "show", str(job.id)).stdout.splitlines()

    assert len(lines) == 3
    assert "job.requested" in lines[0] and "request_id=req-42" in lines[0] and "actor=api_key:k" in lines[0]
    assert "job.completed" in lines[2] and "causation_id=evt-1" in lines[2] and "actor=worker:w" in lines[2]


def test_events_export_streams_ndjson_and_resumes_after_its_last_line(container: Container, tmp_path: Path) -> None:
    workspace = container.app.create_workspace("Acme")[0]
    catch_up_all(container)
    out = tmp_path / "events.ndjson"
    assert pressroom(container, "events", "export", "--out", str(out), "--json").returncode == 0
    first = out.read_text().splitlines()
    container.app.top_up(workspace.id, 5, "order-1")
    catch_up_all(container)

    resumed = pressroom(container, "events", "export", "--out", str(out), "--resume", "--json")

    lines = [json.loads(line) for line in out.read_text().splitlines()]
    assert json.loads(resumed.stdout)["written"] == 1
    assert len(lines) == len(first) + 1 and lines[-1]["envelope"]["type"] == "credits.granted"
    assert [line["position"] for line in lines] == sorted({line["position"] for line in lines})
