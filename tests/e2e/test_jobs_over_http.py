"""A user's view of generation jobs: the system started as `pressroom up` starts it, driven over HTTP."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from uuid import UUID

import httpx
import msgspec
import psycopg
import pytest

from tests.conftest import System, wait_for

COPY_JOB = {
    "type": "copy",
    "input": {
        "product": {"name": "Trail Runner 3", "description": "A lightweight trail shoe with a grippy sole."},
        "platform": "meta",
        "tone": "bold",
        "count": 3,
    },
}


def completed(client: httpx.Client, job_id: str) -> dict:
    return wait_for(lambda: (job := client.get(f"/v1/jobs/{job_id}").json())["status"] == "completed" and job)  # type: ignore[return-value]


def test_copy_job_when_requested_goes_from_202_to_completed_with_variants(system: System) -> None:
    client = system.workspace()

    accepted = client.post("/v1/jobs", json=COPY_JOB)

    assert accepted.status_code == 202
    body = accepted.json()
    assert body["status"] == "queued" and body["creditsReserved"] == 1 and body["creditsRemaining"] == 49
    assert body["pollUrl"] == f"/v1/jobs/{body['jobId']}" and body["duplicate"] is False
    job = completed(client, body["jobId"])
    assert len(job["result"]["variants"]) == 3
    assert all("Trail Runner 3" in v["hook"] + v["body"] for v in job["result"]["variants"])
    assert job["creditsConsumed"] == 1 and job["attempts"] == 1 and job["progress"] == {"done": 3, "total": 3}


def test_copy_job_with_wait_answers_200_with_the_completed_job(system: System) -> None:
    client = system.workspace()

    answer = client.post("/v1/jobs", params={"wait": 10}, json=COPY_JOB)

    assert answer.status_code == 200
    assert answer.json()["status"] == "completed"
    assert len(answer.json()["result"]["variants"]) == 3


def test_debit_when_job_requested_appears_in_transactions_newest_first(system: System) -> None:
    client = system.workspace()
    job_id = client.post("/v1/jobs", json=COPY_JOB).json()["jobId"]

    transactions = wait_for(lambda: len(t := client.get("/v1/credits/transactions").json()["transactions"]) == 2 and t)

    assert [(t["type"], t["amount"], t["balanceAfter"]) for t in transactions] == [("debit", 1, 49), ("grant", 50, 50)]  # type: ignore[union-attr]
    assert transactions[0]["jobId"] == job_id  # type: ignore[index]
    assert client.get("/v1/credits").json()["usedThisPeriod"] == 1


def test_fifty_concurrent_requests_with_one_idempotency_key_create_one_job_and_one_debit(system: System) -> None:
    client = system.workspace()

    with ThreadPoolExecutor(max_workers=50) as pool:
        answers = list(pool.map(lambda _: client.post("/v1/jobs", json=COPY_JOB, headers={"Idempotency-Key": "launch-1"}), range(50)))

    assert sorted(a.status_code for a in answers) == [200] * 49 + [202]
    assert len({a.json()["jobId"] for a in answers}) == 1
    assert sum(a.json()["creditsReserved"] for a in answers) == 1
    assert sum(a.json()["duplicate"] for a in answers) == 49
    assert client.get("/v1/credits").json()["balance"] == 49
    wait_for(lambda: client.get("/v1/jobs").json()["jobs"])
    assert len(client.get("/v1/jobs").json()["jobs"]) == 1
    debits = [t for t in client.get("/v1/credits/transactions").json()["transactions"] if t["type"] == "debit"]
    assert len(debits) == 1


def test_idempotency_key_reused_with_another_body_is_422_and_charges_nothing(system: System) -> None:
    client = system.workspace()
    client.post("/v1/jobs", json={**COPY_JOB, "idempotencyKey": "k-1"})

    other = client.post("/v1/jobs", json={**COPY_JOB, "input": {**COPY_JOB["input"], "count": 2}}, headers={"Idempotency-Key": "k-1"})

    assert other.status_code == 422
    assert other.json()["code"] == "idempotency_key_reused"
    assert client.get("/v1/credits").json()["balance"] == 49


def test_request_beyond_the_balance_is_402_and_changes_nothing(system: System) -> None:
    client = system.workspace()
    for _ in range(50):
        assert client.post("/v1/jobs", json=COPY_JOB).status_code == 202

    refused = client.post("/v1/jobs", json=COPY_JOB)

    assert refused.status_code == 402
    assert refused.headers["content-type"].startswith("application/problem+json")
    assert refused.json()["code"] == "insufficient_credits"
    assert (refused.json()["required"], refused.json()["available"]) == (1, 0)
    assert client.get("/v1/credits").json()["balance"] == 0
    wait_for(lambda: len(client.get("/v1/jobs", params={"limit": 200}).json()["jobs"]) == 50)
    assert len(client.get("/v1/jobs", params={"limit": 200}).json()["jobs"]) == 50


def test_another_workspaces_job_is_404(system: System) -> None:
    owner, stranger = system.workspace("Owner"), system.workspace("Stranger")
    job_id = owner.post("/v1/jobs", json=COPY_JOB).json()["jobId"]

    answer = stranger.get(f"/v1/jobs/{job_id}")

    assert answer.status_code == 404
    assert answer.json()["code"] == "not_found"


@pytest.mark.parametrize(
    ("body", "path"),
    [
        ({"input": COPY_JOB["input"]}, "type"),
        ({"type": "poem", "input": COPY_JOB["input"]}, "type"),
        ({"type": "copy", "input": {**COPY_JOB["input"], "count": 0}}, "input.count"),
        ({"type": "copy", "input": {**COPY_JOB["input"], "count": 11}}, "input.count"),
        ({"type": "copy", "input": {**COPY_JOB["input"], "platform": "myspace"}}, "input.platform"),
        ({"type": "copy", "input": {"platform": "x"}}, "input"),
        ({"type": "copy", "input": {**COPY_JOB["input"], "customInstructions": "x" * 501}}, "input.customInstructions"),
        ({**COPY_JOB, "idempotencyKey": "k" * 129}, "idempotencyKey"),
        ({**COPY_JOB, "surprise": True}, "surprise"),
    ],
)
def test_malformed_job_request_is_422_problem_naming_the_path_and_charges_nothing(system: System, body: dict, path: str) -> None:
    client = system.workspace()

    answer = client.post("/v1/jobs", json=body)

    assert answer.status_code == 422, answer.text
    assert answer.headers["content-type"].startswith("application/problem+json")
    problem = answer.json()
    assert problem["code"] == "validation_error"
    assert any(path in error["path"] for error in problem["errors"]), problem
    assert client.get("/v1/credits").json()["balance"] == 50


def test_body_that_is_not_json_is_422_problem(system: System) -> None:
    client = system.workspace()

    answer = client.post("/v1/jobs", content=b"{not json", headers={"content-type": "application/json"})

    assert answer.status_code == 422
    assert answer.json()["code"] == "validation_error"


def test_jobs_list_filters_by_status_and_pages_with_a_cursor(system: System) -> None:
    client = system.workspace()
    ids = [client.post("/v1/jobs", json=COPY_JOB).json()["jobId"] for _ in range(3)]
    wait_for(lambda: len(client.get("/v1/jobs", params={"status": "completed"}).json()["jobs"]) == 3)

    first = client.get("/v1/jobs", params={"limit": 2}).json()
    second = client.get("/v1/jobs", params={"limit": 2, "cursor": first["nextCursor"]}).json()

    assert [j["id"] for j in first["jobs"] + second["jobs"]] == ids[::-1]
    assert second["nextCursor"] is None
    assert client.get("/v1/jobs", params={"status": "failed"}).json()["jobs"] == []
    assert client.get("/v1/jobs", params={"cursor": "garbage"}).status_code == 422


def test_replayed_request_with_wait_answers_at_once_as_the_duplicate_receipt(system: System) -> None:
    client = system.workspace()
    first = client.post("/v1/jobs", params={"wait": 10}, json=COPY_JOB, headers={"Idempotency-Key": "w-1"})

    again = client.post("/v1/jobs", params={"wait": 10}, json=COPY_JOB, headers={"Idempotency-Key": "w-1"})

    assert first.status_code == 200 and first.json()["status"] == "completed"
    assert again.status_code == 200
    assert again.json() | {"creditsRemaining": 0} == {
        "jobId": first.json()["id"],
        "status": "completed",
        "creditsReserved": 0,
        "creditsRemaining": 0,
        "pollUrl": f"/v1/jobs/{first.json()['id']}",
        "duplicate": True,
    }


def test_a_request_id_comes_back_on_the_answer_and_goes_into_the_events_it_caused(system: System) -> None:
    client = system.workspace()

    traced = client.post("/v1/jobs", json=COPY_JOB, headers={"X-Request-Id": "trace-4711"})
    untraced = client.post("/v1/jobs", json=COPY_JOB)

    assert traced.status_code == 202 and traced.headers["x-request-id"] == "trace-4711"
    generated = untraced.headers["x-request-id"]
    assert len(generated) == 32 and int(generated, 16) >= 0
    with psycopg.connect(system.settings.database_url or "") as conn:
        states = conn.execute(
            "SELECT state FROM pressroom_events WHERE originator_id = ANY(%s) AND originator_version = 1",
            ([UUID(traced.json()["jobId"]), UUID(untraced.json()["jobId"])],),
        ).fetchall()
    requested = sorted(msgspec.json.decode(bytes(state))["meta"]["request_id"] for (state,) in states)
    assert requested == sorted(["trace-4711", generated])
