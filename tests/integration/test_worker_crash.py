"""A generation worker killed mid-job (SIGKILL) and started again: the job still ends exactly once, charged once."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator

import pytest

from adapters.bootstrap import Container
from domain.credit_account import CreditAccount
from tests.conftest import Background, wait_for
from tests.fakes import FakeOpenAI

IMAGES = {"prompt": "A brass desk lamp on walnut", "count": 3}


@pytest.fixture
def slow_images() -> Iterator[FakeOpenAI]:
    with FakeOpenAI() as fake:
        fake.stall("POST", "/v1/images/generations", seconds=1.0)  # each image takes a second
        yield fake


def start_worker(container: Container) -> subprocess.Popen[bytes]:
    env = {**os.environ, **container.settings.to_env(), "PRESSROOM_LOG_LEVEL": "warning"}
    return subprocess.Popen([sys.executable, "-m", "api.cli", "worker"], env=env)


def test_worker_killed_mid_job_when_another_starts_then_the_job_ends_once_and_is_charged_once(
    make_container, background: Background, slow_images: FakeOpenAI
) -> None:  # type: ignore[no-untyped-def]
    container: Container = make_container(
        image_provider="openai",
        openai_base_url=slow_images.base_url,
        openai_api_key=slow_images.api_key,
        allow_private_urls=True,
        job_lease_seconds=3,
        requeue_after_seconds=1,
    )
    for run in (container.run_relay, container.run_projections, container.run_sweeper):
        background.start(run)
    first = start_worker(container)
    workspace = container.app.create_workspace("Acme")[0]
    job = container.app.request_job(workspace.id, "image", IMAGES, outputs=3).job

    wait_for(lambda: container.app.get_job(workspace.id, job.id).produced >= 1, timeout=40)
    first.kill()
    first.wait()
    second = start_worker(container)
    try:
        done = wait_for(lambda: (j := container.app.get_job(workspace.id, job.id)).is_terminal and j, timeout=60)
    finally:
        second.terminate()
        second.wait(15)

    assert (done.status, done.produced, len({a["id"] for a in done.assets})) == ("completed", 3, 3)  # type: ignore[union-attr]
    assert done.attempts >= 2  # type: ignore[union-attr]
    account_events = [e for e in container.app.events.get(CreditAccount.id_for(workspace.id)) if getattr(e, "job_id", None) == job.id]
    assert [type(e).__name__ for e in account_events] == ["Debited"]
    assert container.app.credit_account(workspace.id).balance == 50 - 9
