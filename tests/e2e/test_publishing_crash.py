"""Never double-posting, on the running system: a run of 20 posts over three platforms goes out once
per post, in order per account, within 2 s of its time, while a publishing worker is SIGKILLed mid-run
(and restarted by `pressroom up`) beside a second publisher, as production runs them, and a second
scheduler runs beside the first. Posts handed to the killed worker are taken over by a scheduler."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta

import httpx
import pytest

from adapters.embedded import EmbeddedBroker, free_port
from tests.conftest import System, settings_for, wait_for
from tests.fakes.bluesky import FakeBluesky
from tests.fakes.mastodon import FakeMastodon
from tests.fakes.webhook_receiver import FakeWebhookReceiver

POSTS = 20
SPACING_SECONDS = 0.6


@pytest.fixture(scope="module")
def platforms() -> Iterator[tuple[FakeWebhookReceiver, FakeMastodon, FakeBluesky]]:
    with FakeWebhookReceiver() as hook, FakeMastodon() as mastodon, FakeBluesky() as bluesky:
        yield hook, mastodon, bluesky


@pytest.fixture(scope="module")
def crash_system(
    new_database: Callable[[], str],
    broker: EmbeddedBroker,
    tmp_path_factory: pytest.TempPathFactory,
    platforms: tuple[FakeWebhookReceiver, FakeMastodon, FakeBluesky],
) -> Iterator[System]:
    settings = settings_for(
        new_database(),
        broker,
        port=free_port(),
        bluesky_base_url=platforms[2].url,
        reconcile_after_seconds=1.0,
        takeover_after_seconds=0.8,
        kafka_session_timeout_ms=1000,
        kafka_heartbeat_interval_ms=250,
    )
    running = System(settings, tmp_path_factory.mktemp("crash"))
    yield running
    running.close()


def connect(client: httpx.Client, body: dict) -> str:
    answer = client.post("/v1/connections", json=body)
    assert answer.status_code == 201, answer.text
    connection = answer.json()["connection"]
    wait_for(lambda: any(a["id"] == connection["id"] for a in client.get("/v1/accounts").json()["accounts"]))
    return str(connection["handle"])


def test_a_run_survives_a_killed_worker_and_two_schedulers_without_a_double_post(
    crash_system: System, platforms: tuple[FakeWebhookReceiver, FakeMastodon, FakeBluesky]
) -> None:
    hook, mastodon, bluesky = platforms
    client = crash_system.workspace()
    handles = [
        connect(client, {"provider": "webhook", "url": hook.hook_url}),
        connect(client, {"provider": "mastodon", "instanceUrl": mastodon.instance_url, "accessToken": mastodon.access_token}),
        connect(client, {"provider": "bluesky", "identifier": bluesky.handle, "appPassword": bluesky.app_password}),
    ]
    second_scheduler, second_publisher = (
        subprocess.Popen(
            [sys.executable, "-m", "api.cli", service],
            env={**os.environ, **crash_system.settings.to_env(), "PRESSROOM_LOG_LEVEL": "warning"},
            start_new_session=True,
        )
        for service in ("sweeper", "publisher")
    )
    try:
        wait_for(lambda: [w["kind"] for w in client.get("/health").json()["workers"].values()].count("publisher") == 2, timeout=30)
        start = datetime.now(UTC) + timedelta(seconds=6)
        posts = [
            {"account": handles[i % 3], "text": f"post {i:02d}", "publishAt": (start + timedelta(seconds=i * SPACING_SECONDS)).isoformat()}
            for i in range(POSTS)
        ]
        applied = client.post("/v1/posts/apply", json={"posts": posts})
        assert applied.status_code == 201, applied.text
        run_id = applied.json()["run"]["id"]

        # Kill the publishing worker a third of the way through the run; `up` restarts it.
        time.sleep(max((start - datetime.now(UTC)).total_seconds(), 0) + POSTS * SPACING_SECONDS / 3)
        killed_at = datetime.now(UTC)
        os.kill(crash_system.service_pid("publisher"), signal.SIGKILL)

        run = wait_for(lambda: (r := client.get(f"/v1/runs/{run_id}").json()).get("summary") == {"published": POSTS} and r, timeout=90)
    finally:
        for process in (second_scheduler, second_publisher):
            process.send_signal(signal.SIGTERM)
        for process in (second_scheduler, second_publisher):
            try:
                process.wait(15)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()

    received = (
        [p["body"]["text"] for p in hook.posts]
        + [_text(s["content"]) for s in mastodon.posts]
        + [p["record"]["text"] for p in bluesky.posts]
    )
    assert sorted(received) == sorted(p["text"] for p in posts)  # every post exactly once
    for platform_texts in (
        [p["body"]["text"] for p in hook.posts],
        [_text(s["content"]) for s in mastodon.posts],
        [p["record"]["text"] for p in bluesky.posts],
    ):
        assert platform_texts == sorted(platform_texts)  # in order per account
    # Each post's due time relative to the kill, and how late it was published, in seconds.
    lateness = [
        (
            (datetime.fromisoformat(post["publishAtUtc"]) - killed_at).total_seconds(),
            (datetime.fromisoformat(post["publishedAt"]) - datetime.fromisoformat(post["publishAtUtc"])).total_seconds(),
        )
        for post in run["posts"]  # type: ignore[index]
    ]
    assert [(due, late) for due, late in lateness if not 0 <= late <= 2] == []


def _text(html: str) -> str:
    return html.removeprefix("<p>").removesuffix("</p>")
