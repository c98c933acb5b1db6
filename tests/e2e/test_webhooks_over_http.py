"""Webhooks over HTTP on the running system: subscribe, receive signed events, retries, the delivery log, replay."""

from __future__ import annotations

import hashlib
import hmac
import time
from collections.abc import Iterator

import httpx
import pytest

from tests.conftest import System, wait_for
from tests.fakes.subscriber import EventReceiver

COPY_JOB = {"type": "copy", "input": {"product": {"name": "Lamp"}, "count": 1}}


@pytest.fixture
def receiver() -> Iterator[EventReceiver]:
    with EventReceiver() as fake:
        yield fake


def subscribe(client: httpx.Client, url: str, events: list[str]) -> dict:
    answer = client.post("/v1/webhooks", json={"url": url, "events": events})
    assert answer.status_code == 201, answer.text
    return answer.json()["webhook"]  # type: ignore[no-any-return]


def completed_job(client: httpx.Client) -> str:
    job_id: str = client.post("/v1/jobs", json=COPY_JOB).json()["jobId"]
    wait_for(lambda: client.get(f"/v1/jobs/{job_id}").json()["status"] == "completed")
    return job_id


def deliveries(client: httpx.Client, webhook_id: str) -> list[dict]:
    return client.get(f"/v1/webhooks/{webhook_id}/deliveries").json()["deliveries"]  # type: ignore[no-any-return]


def test_a_subscribed_event_arrives_signed_as_documented(system: System, receiver: EventReceiver) -> None:
    client = system.workspace()
    webhook = subscribe(client, f"{receiver.url}/hooks", ["job.completed"])

    job_id = completed_job(client)
    wait_for(lambda: receiver.events("job.completed"))

    [request] = receiver.seen("POST", "/hooks")
    body = request.body
    assert request.json()["aggregateId"] == job_id and request.json()["workspaceId"] == client.workspace_id  # type: ignore[attr-defined]
    # The receiver's side of the documented scheme: t=<unix seconds>,v1=<hex HMAC-SHA256(secret, "<t>.<body>")>
    fields = dict(part.split("=", 1) for part in request.headers["pressroom-signature"].split(","))
    expected = hmac.new(webhook["secret"].encode(), f"{fields['t']}.".encode() + body, hashlib.sha256).hexdigest()
    assert hmac.compare_digest(fields["v1"], expected)
    assert abs(time.time() - int(fields["t"])) < 60
    assert request.headers["pressroom-event-id"] == request.json()["id"]
    assert receiver.events("job.requested") == []  # not subscribed


def test_listing_shows_no_secrets_and_removal_stops_deliveries(system: System, receiver: EventReceiver) -> None:
    client = system.workspace()
    webhook = subscribe(client, receiver.url, ["job.*"])

    listed = client.get("/v1/webhooks").json()["webhooks"]
    assert listed == [{"id": webhook["id"], "url": receiver.url, "events": ["job.*"], "createdAt": webhook["createdAt"]}]
    assert client.delete(f"/v1/webhooks/{webhook['id']}").status_code == 204
    assert client.get("/v1/webhooks").json()["webhooks"] == []
    assert client.delete(f"/v1/webhooks/{webhook['id']}").status_code == 404

    completed_job(client)
    time.sleep(1.0)
    assert receiver.events() == []


def test_a_receiver_failing_twice_gets_the_event_on_the_third_attempt_all_logged(system: System, receiver: EventReceiver) -> None:
    client = system.workspace()
    receiver.fail("POST", "/*", status=503, times=2)
    webhook = subscribe(client, f"{receiver.url}/in", ["job.completed"])

    completed_job(client)
    log = wait_for(lambda: (d := deliveries(client, webhook["id"])) and d[0]["status"] == "delivered" and d)

    assert [(d["attempt"], d["status"], d["httpStatus"]) for d in reversed(log)] == [  # type: ignore[arg-type]
        (1, "retrying", 503),
        (2, "retrying", 503),
        (3, "delivered", 204),
    ]
    assert len(receiver.events("job.completed")) == 3
    assert len({e["id"] for e in receiver.events()}) == 1


def test_a_receiver_that_never_answers_well_is_marked_failed_after_the_schedule(system: System, receiver: EventReceiver) -> None:
    client = system.workspace()
    receiver.fail("POST", "/*", status=500)
    webhook = subscribe(client, receiver.url, ["job.completed"])

    completed_job(client)
    log = wait_for(lambda: (d := deliveries(client, webhook["id"])) and d[0]["status"] == "failed" and d)

    assert [d["attempt"] for d in reversed(log)] == [1, 2, 3, 4, 5, 6]  # type: ignore[arg-type]
    time.sleep(1.0)
    assert len(receiver.events()) == 6


def test_replay_redelivers_from_a_point_in_the_log(system: System, receiver: EventReceiver) -> None:
    client = system.workspace()
    webhook = subscribe(client, receiver.url, ["job.*"])
    first, second = completed_job(client), completed_job(client)
    wait_for(lambda: len(receiver.events("job.completed")) == 2)
    events = client.get("/v1/audit/events", params={"limit": 1000}).json()["events"]
    index = next(i for i, e in enumerate(events) if e["type"] == "job.completed" and e["aggregateId"] == first)
    position_of_first_completion = client.get("/v1/audit/events", params={"limit": index + 1}).json()["nextAfter"]

    answer = client.post(f"/v1/webhooks/{webhook['id']}/replay", json={"after": position_of_first_completion})

    assert answer.status_code == 202 and answer.json()["replay"] == 1
    wait_for(lambda: len(receiver.events("job.completed")) == 3)
    time.sleep(0.5)
    # Deliveries run concurrently, so not in order: the envelope's version orders one aggregate's events.
    replayed = sorted((e["version"], e["type"]) for e in receiver.events() if e["aggregateId"] == second)
    assert replayed == sorted([(1, "job.requested"), (2, "job.started"), (3, "job.completed")] * 2)
    assert sorted(e["aggregateId"] for e in receiver.events("job.completed")) == sorted([first, second, second])
    assert [d["replay"] for d in deliveries(client, webhook["id"])][:3] == [1, 1, 1]


def test_bad_subscriptions_are_refused_and_change_nothing(system: System, receiver: EventReceiver) -> None:
    client = system.workspace()

    for body, path in [
        ({"url": "ftp://example.com/x", "events": ["*"]}, "url"),
        ({"url": "https://example.com/x", "events": ["job.finished"]}, "events.0"),
        ({"url": "https://example.com/x", "events": []}, "events"),
        ({"url": "https://example.com/x", "events": ["*"], "secret": "mine"}, "secret"),
    ]:
        answer = client.post("/v1/webhooks", json=body)
        assert answer.status_code == 422, answer.text
        assert answer.json()["code"] == "validation_error"
        assert path in [e["path"] for e in answer.json()["errors"]]
    assert client.get("/v1/webhooks").json()["webhooks"] == []
    other = system.workspace("Other")
    theirs = subscribe(other, receiver.url, ["*"])
    assert client.get(f"/v1/webhooks/{theirs['id']}/deliveries").status_code == 404
    assert client.post(f"/v1/webhooks/{theirs['id']}/replay", json={"after": 0}).status_code == 404
    assert client.post(f"/v1/webhooks/{theirs['id']}/replay", json={"after": -1}).status_code == 422
