"""Publishing over HTTP on the running system: connect accounts, apply a schedule, and every post
reaches its platform once, at its time."""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import httpx
import pytest

from tests.conftest import System, wait_for
from tests.fakes.mastodon import FakeMastodon
from tests.fakes.webhook_receiver import FakeWebhookReceiver


@pytest.fixture
def receiver() -> Iterator[FakeWebhookReceiver]:
    with FakeWebhookReceiver(secret="receiver-secret") as fake:
        yield fake


@pytest.fixture
def mastodon() -> Iterator[FakeMastodon]:
    with FakeMastodon() as fake:
        yield fake


def at(seconds: float) -> str:
    return (datetime.now(UTC) + timedelta(seconds=seconds)).isoformat()


def connect(client: httpx.Client, body: dict) -> dict:
    answer = client.post("/v1/connections", json=body)
    assert answer.status_code == 201, answer.text
    connection = answer.json()["connection"]
    wait_for(lambda: any(a["id"] == connection["id"] for a in client.get("/v1/accounts").json()["accounts"]))
    return connection  # type: ignore[no-any-return]


def accounts(client: httpx.Client, receiver: FakeWebhookReceiver, mastodon: FakeMastodon) -> tuple[dict, dict]:
    hook = connect(client, {"provider": "webhook", "url": receiver.hook_url, "secret": "receiver-secret"})
    toot = connect(client, {"provider": "mastodon", "instanceUrl": mastodon.instance_url, "accessToken": mastodon.access_token})
    return hook, toot


def test_providers_are_listed_without_a_key(system: System) -> None:
    providers = httpx.get(f"{system.base_url}/v1/providers").json()["providers"]
    by_name = {p["name"]: p for p in providers}
    assert by_name["bluesky"]["textLimit"] == 300 and by_name["x"]["auth"] == "oauth"


def test_a_schedule_goes_out_once_per_post_at_its_time(system: System, receiver: FakeWebhookReceiver, mastodon: FakeMastodon) -> None:
    client = system.workspace()
    hook, toot = accounts(client, receiver, mastodon)
    posts = [{"account": hook["handle"], "text": f"hook {i}", "publishAt": at(3 + i)} for i in range(3)]
    posts += [{"account": toot["handle"], "text": f"toot {i}", "publishAt": at(3 + i)} for i in range(3)]
    envelope = {"timezone": "UTC", "idempotencyKey": "launch-1", "posts": posts}

    validated = client.post("/v1/posts/validate", json=envelope)
    applied = client.post("/v1/posts/apply", json=envelope)
    again = client.post("/v1/posts/apply", json={"schedule": envelope})

    assert validated.status_code == 200 and validated.json()["totalPosts"] == 6, validated.text
    assert validated.json()["sourceModel"] == "posts_v1"
    assert applied.status_code == 201, applied.text
    assert again.status_code == 200 and again.json()["duplicate"] is True
    assert again.json()["run"]["id"] == applied.json()["run"]["id"]
    run_id = applied.json()["run"]["id"]
    done = wait_for(lambda: (r := client.get(f"/v1/runs/{run_id}").json())["summary"] == {"published": 6} and r, timeout=30)
    assert done["run"]["status"] == "completed"  # type: ignore[index]
    assert sorted(p["body"]["text"] for p in receiver.posts) == ["hook 0", "hook 1", "hook 2"]
    assert sorted(s["content"] for s in mastodon.posts) == ["<p>toot 0</p>", "<p>toot 1</p>", "<p>toot 2</p>"]
    for post in done["posts"]:  # type: ignore[index]
        detail = client.get(f"/v1/posts/{post['id']}").json()
        assert detail["status"] == "published" and detail["providerPostId"]
        [attempt] = client.get(f"/v1/posts/{post['id']}/attempts").json()["attempts"]
        started = datetime.fromisoformat(attempt["startedAt"])
        due = datetime.fromisoformat(detail["publishAtUtc"])
        assert due <= started < due + timedelta(seconds=2), (due, started)
    assert all(receiver.signature_valid(r) for r in receiver.seen("POST"))


def test_bad_schedules_are_refused_with_every_problem_named(system: System, receiver: FakeWebhookReceiver, mastodon: FakeMastodon) -> None:
    client = system.workspace()
    hook, _ = accounts(client, receiver, mastodon)

    answer = client.post(
        "/v1/posts/apply",
        json={
            "posts": [
                {"account": "bluesky:nobody", "text": "hi", "publishAt": at(60)},
                {"account": hook["handle"], "text": "late", "publishAt": at(-3600)},
                {"account": hook["handle"], "text": "local", "publishAt": "2026-03-08T02:30:00"},
            ],
            "timezone": "America/New_York",
        },
    )

    assert answer.status_code == 422, answer.text
    paths = {e["path"] for e in answer.json()["errors"]}
    assert {"posts[0].account", "posts[1].publishAt", "posts[2].publishAt"} <= paths
    assert client.get("/v1/posts").json()["total"] == 0


def test_cancel_and_disconnect(system: System, receiver: FakeWebhookReceiver, mastodon: FakeMastodon) -> None:
    client = system.workspace()
    hook, toot = accounts(client, receiver, mastodon)
    applied = client.post(
        "/v1/posts/apply",
        json={
            "posts": [
                {"account": hook["handle"], "text": "later", "publishAt": at(3600)},
                {"account": toot["handle"], "text": "x", "publishAt": at(3600)},
            ]
        },
    ).json()
    first, second = (p["id"] for p in applied["posts"])

    canceled = client.delete(f"/v1/posts/{first}")
    again = client.delete(f"/v1/posts/{first}")
    assert canceled.status_code == 200 and canceled.json()["status"] == "canceled"
    assert again.status_code == 409 and again.json()["code"] == "invalid_state"

    wait_for(lambda: client.get("/v1/posts", params={"account": toot["handle"]}).json()["total"] == 1)
    assert client.delete(f"/v1/accounts/{toot['id']}").status_code == 204
    failed = client.get(f"/v1/posts/{second}").json()
    assert failed["status"] == "failed" and failed["error"]["code"] == "account_disconnected"
    assert client.post(f"/v1/posts/{first}/retry").status_code == 409  # canceled, not failed
    retried = client.post(f"/v1/posts/{second}/retry")
    assert retried.status_code == 200 and retried.json()["status"] == "scheduled"
    # Its account is gone: the attempt fails at once, and nothing reaches a platform.
    wait_for(lambda: client.get(f"/v1/posts/{second}").json()["status"] == "failed")
    time.sleep(0.2)
    assert receiver.posts == [] and mastodon.posts == []


def test_local_times_around_dst_changes_resolve_to_the_right_instants_or_are_refused(
    system: System, receiver: FakeWebhookReceiver, mastodon: FakeMastodon
) -> None:
    client = system.workspace()
    hook, _ = accounts(client, receiver, mastodon)

    def validate(*local_times: str) -> httpx.Response:
        posts = [{"account": hook["handle"], "text": f"at {t}", "publishAt": t} for t in local_times]
        return client.post("/v1/posts/validate", json={"timezone": "America/New_York", "mode": "draft", "posts": posts})

    both_sides = validate("2026-11-01T00:30:00", "2026-11-01T03:30:00", "2027-03-14T01:30:00", "2027-03-14T03:30:00")
    skipped = validate("2027-03-14T02:30:00")
    repeated = validate("2026-11-01T01:30:00")
    repeated_with_offset = validate("2026-11-01T01:30:00-05:00")

    assert both_sides.status_code == 200, both_sides.text
    assert [p["publishAtUtc"] for p in both_sides.json()["posts"]] == [
        "2026-11-01T04:30:00Z",
        "2026-11-01T08:30:00Z",
        "2027-03-14T06:30:00Z",
        "2027-03-14T07:30:00Z",
    ]
    assert skipped.status_code == 422 and "does not exist" in skipped.json()["errors"][0]["message"]
    assert repeated.status_code == 422 and "-04:00" in repeated.json()["errors"][0]["message"]
    assert repeated_with_offset.json()["posts"][0]["publishAtUtc"] == "2026-11-01T06:30:00Z"
