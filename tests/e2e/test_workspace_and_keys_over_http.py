"""Operators create workspaces and top them up; workspaces manage their keys."""

from __future__ import annotations

import httpx

from projections.catalog import READ_MODELS
from tests.conftest import System, wait_for


def test_admin_route_without_the_admin_token_is_401(system: System) -> None:
    answer = httpx.post(f"{system.base_url}/v1/admin/workspaces", json={"name": "X"}, headers={"Authorization": "Bearer wrong"})

    assert answer.status_code == 401
    assert answer.json()["code"] == "unauthenticated"


def test_new_workspace_gets_its_plan_allowance(system: System) -> None:
    client = system.workspace(plan="pro")

    balances = client.get("/v1/credits").json()

    assert (balances["balance"], balances["allowanceBalance"], balances["topupBalance"], balances["plan"]) == (500, 500, 0, "pro")
    assert client.get("/v1/workspace").json()["plan"] == "pro"


def test_top_up_with_the_same_reference_twice_grants_once(system: System) -> None:
    client = system.workspace()
    url = f"/v1/admin/workspaces/{client.workspace_id}/credits"  # type: ignore[attr-defined]

    first = system.admin.post(url, json={"amount": 100, "reference": "order-1"})
    again = system.admin.post(url, json={"amount": 100, "reference": "order-1"})

    assert first.json() == {"balance": 150, "duplicate": False}
    assert again.json() == {"balance": 150, "duplicate": True}
    assert client.get("/v1/credits").json()["topupBalance"] == 100


def test_top_up_of_zero_is_422_and_unknown_workspace_404(system: System) -> None:
    client = system.workspace()

    zero = system.admin.post(f"/v1/admin/workspaces/{client.workspace_id}/credits", json={"amount": 0, "reference": "r"})  # type: ignore[attr-defined]
    unknown = system.admin.post("/v1/admin/workspaces/00000000-0000-0000-0000-000000000000/credits", json={"amount": 5, "reference": "r"})

    assert zero.status_code == 422 and zero.json()["code"] == "validation_error"
    assert unknown.status_code == 404


def test_revoked_key_gets_401_at_once(system: System) -> None:
    client = system.workspace()
    created = client.post("/v1/keys", json={"label": "ci"}).json()["key"]
    other = httpx.Client(base_url=system.base_url, headers={"Authorization": f"Bearer {created['secret']}"})
    assert other.get("/v1/workspace").status_code == 200

    assert client.delete(f"/v1/keys/{created['id']}").status_code == 200

    answer = other.get("/v1/workspace")
    assert answer.status_code == 401
    assert answer.json()["code"] == "unauthenticated"


def test_key_cannot_revoke_itself(system: System) -> None:
    client = system.workspace()
    own_id = client.post("/v1/keys/validate").json()["apiKey"]["id"]

    answer = client.delete(f"/v1/keys/{own_id}")

    assert answer.status_code == 409
    assert answer.json()["code"] == "invalid_state"


def test_keys_list_never_shows_secrets_and_shows_last_use(system: System) -> None:
    client = system.workspace()
    client.post("/v1/keys", json={"label": "second"})

    keys = wait_for(lambda: len(k := client.get("/v1/keys").json()["keys"]) == 2 and k)

    assert [k["label"] for k in keys] == ["default", "second"]  # type: ignore[union-attr]
    assert all("secret" not in k for k in keys)  # type: ignore[union-attr]
    assert keys[0]["lastUsedAt"] is not None and keys[1]["lastUsedAt"] is None  # type: ignore[index]
    assert all(k["prefix"].startswith("pr_live_") for k in keys)  # type: ignore[union-attr]


def test_request_without_a_key_is_401_problem(system: System) -> None:
    answer = httpx.get(f"{system.base_url}/v1/credits")

    assert answer.status_code == 401
    assert answer.headers["content-type"].startswith("application/problem+json")


def test_pricing_needs_no_key(system: System) -> None:
    pricing = httpx.get(f"{system.base_url}/v1/pricing").json()

    assert pricing == {
        "costs": {"copy": 1, "image": 3, "video": 40},
        "plans": {"free": {"monthlyCredits": 50}, "pro": {"monthlyCredits": 500}, "business": {"monthlyCredits": 2500}},
    }


def test_openapi_schema_documents_every_route(system: System) -> None:
    schema = httpx.get(f"{system.base_url}/schema/openapi.json").json()

    assert {
        "/v1/admin/workspaces",
        "/v1/admin/workspaces/{workspace_id}/credits",
        "/v1/workspace",
        "/v1/keys",
        "/v1/keys/validate",
        "/v1/keys/{key_id}",
        "/v1/credits",
        "/v1/credits/transactions",
        "/v1/pricing",
        "/v1/jobs",
        "/v1/jobs/{job_id}",
        "/health",
    } <= set(schema["paths"])
    assert httpx.get(f"{system.base_url}/docs", follow_redirects=True).status_code == 200
    assert httpx.get(f"{system.base_url}/schema/asyncapi.json").json()["asyncapi"] == "3.0.0"


def test_health_reports_projections_and_workers(system: System) -> None:
    health = httpx.get(f"{system.base_url}/health").json()

    assert health["ok"] and health["database"] and health["broker"]
    assert set(health["projections"]) == {m.name for m in READ_MODELS}
    kinds = {"projections", "relay", "worker", "publisher", "sweeper", "webhooks", "campaigns"}
    assert {w["kind"] for w in health["workers"].values()} == kinds


def test_metrics_count_jobs_by_status_and_show_projection_lag(system: System) -> None:
    client = system.workspace()
    client.post("/v1/jobs", params={"wait": 10}, json={"type": "copy", "input": {"product": {"name": "Lamp"}, "count": 1}})

    text = httpx.get(f"{system.base_url}/metrics").text

    assert 'pressroom_jobs{status="completed",type="copy"}' in text
    assert 'pressroom_projection_lag_events{projection="jobs"}' in text
    assert 'pressroom_http_requests_total{method="POST",status="200"}' in text
    assert 'pressroom_processes_alive{kind="worker"} 1.0' in text
    batches, requests = (sample(text, f"pressroom_group_commit_{name}_total") for name in ("batches", "requests"))
    assert 1 <= batches <= requests and sample(text, "pressroom_group_commit_busy_total") == 0.0
    assert sample(text, "pressroom_group_commit_waiting") == 0.0
    groups, inserts = (sample(text, f"pressroom_event_log_{name}_total") for name in ("groups", "inserts"))
    assert 1 <= groups <= inserts and sample(text, "pressroom_event_log_waiting") == 0.0


def sample(text: str, name: str) -> float:
    """The value of an unlabelled metric in Prometheus' text format."""
    return next(float(line.split()[1]) for line in text.splitlines() if line.startswith(name + " "))
