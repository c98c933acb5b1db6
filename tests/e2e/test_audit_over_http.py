"""The event log over HTTP: a workspace's events, aggregates as they were, and the resumable live stream."""

from __future__ import annotations

from datetime import datetime, timedelta

import httpx
import msgspec

from tests.conftest import System, wait_for

COPY_JOB = {"type": "copy", "input": {"product": {"name": "Lamp"}, "count": 1}}


def completed_job(client: httpx.Client) -> dict:
    job_id = client.post("/v1/jobs", json=COPY_JOB).json()["jobId"]
    return wait_for(lambda: (j := client.get(f"/v1/jobs/{job_id}").json())["status"] == "completed" and j)  # type: ignore[return-value]


def audit(client: httpx.Client, **params: object) -> dict:
    return client.get("/v1/audit/events", params=params).json()


def test_audit_lists_only_this_workspaces_events_in_log_order(system: System) -> None:
    client, other = system.workspace(), system.workspace("Other")
    job = completed_job(client)
    completed_job(other)

    events = wait_for(
        lambda: [e for e in audit(client, limit=1000)["events"] if e["aggregateId"] == job["id"]] and audit(client, limit=1000)["events"]
    )

    types = [e["type"] for e in events]  # type: ignore[union-attr]
    assert {e["workspaceId"] for e in events} == {client.workspace_id}  # type: ignore[attr-defined,union-attr]
    assert types[:4] == ["workspace.created", "credits.opened", "credits.granted", "api_key.issued"]
    assert types.index("credits.debited") < types.index("job.started") < types.index("job.completed")
    job_events = audit(client, aggregateId=job["id"])["events"]
    assert [(e["type"], e["version"]) for e in job_events] == [("job.requested", 1), ("job.started", 2), ("job.completed", 3)]
    assert [e["type"] for e in audit(client, type="job.completed")["events"]] == ["job.completed"]


def test_audit_pages_with_next_after(system: System) -> None:
    client = system.workspace()
    completed_job(client)
    wait_for(lambda: len(audit(client, limit=1000)["events"]) >= 8)

    first = audit(client, limit=3)
    second = audit(client, limit=3, after=first["nextAfter"])

    assert len(first["events"]) == 3 and first["nextAfter"] is not None
    everything = audit(client, limit=1000)["events"]
    assert [e["id"] for e in first["events"] + second["events"]] == [e["id"] for e in everything[:6]]


def test_aggregate_as_it_was_at_a_version_and_at_a_time(system: System) -> None:
    client = system.workspace()
    job = completed_job(client)

    at_one = client.get(f"/v1/audit/aggregates/{job['id']}", params={"version": 1}).json()
    now = client.get(f"/v1/audit/aggregates/{job['id']}").json()
    created = datetime.fromisoformat(job["createdAt"])
    at_creation = client.get(f"/v1/audit/aggregates/{job['id']}", params={"at": created.isoformat()}).json()
    before = client.get(f"/v1/audit/aggregates/{job['id']}", params={"at": (created - timedelta(seconds=1)).isoformat()})

    assert (at_one["aggregateType"], at_one["version"], at_one["state"]["status"]) == ("GenerationJob", 1, "queued")
    assert (now["version"], now["state"]["status"], len(now["state"]["variants"])) == (3, "completed", 1)
    assert (at_creation["version"], at_creation["state"]["status"]) == (1, "queued")
    assert before.status_code == 404


def test_another_workspaces_aggregate_and_secret_hashes_stay_hidden(system: System) -> None:
    client, other = system.workspace(), system.workspace("Other")
    job = completed_job(client)
    key_id = client.post("/v1/keys/validate").json()["apiKey"]["id"]

    assert other.get(f"/v1/audit/aggregates/{job['id']}").status_code == 404
    key = client.get(f"/v1/audit/aggregates/{key_id}").json()
    assert key["aggregateType"] == "ApiKey" and "secret_hash" not in key["state"] and "prefix" in key["state"]


def read_stream(client: httpx.Client, count: int, **headers: str) -> list[tuple[int, dict]]:
    """The first `count` events of the stream: (id, envelope)."""
    received: list[tuple[int, dict]] = []
    with client.stream("GET", "/v1/events/stream", params={"after": 0} if not headers else {}, headers=headers, timeout=30) as stream:
        event_id = None
        for line in stream.iter_lines():
            if line.startswith("id: "):
                event_id = int(line[4:])
            elif line.startswith("data: "):
                received.append((event_id, msgspec.json.decode(line[6:])))  # type: ignore[arg-type]
                if len(received) == count:
                    break
    return received


def test_event_stream_resumes_after_a_disconnect_without_gaps_or_duplicates(system: System) -> None:
    client = system.workspace()
    completed_job(client)
    first = read_stream(client, 5)
    second = completed_job(client)
    # The jobs read model can be ahead of the audit log's: wait for the job's last event in the log itself.
    logged = wait_for(
        lambda: (
            (events := audit(client, limit=1000)["events"])[-1]["type"] == "job.completed"
            and events[-1]["aggregateId"] == second["id"]
            and events
        )
    )
    total = len(logged)  # type: ignore[arg-type]

    rest = read_stream(client, total - 5, **{"Last-Event-ID": str(first[-1][0])})  # type: ignore[operator]

    ids = [event_id for event_id, _ in first + rest]
    assert ids == sorted(ids) and len(set(ids)) == len(ids)
    assert [e["id"] for _, e in first + rest] == [e["id"] for e in audit(client, limit=1000)["events"]]
