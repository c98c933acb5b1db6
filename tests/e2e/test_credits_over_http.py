"""Credits as a user and an operator see them: concurrency, payments, adjustments, plans and usage."""

from __future__ import annotations

import hashlib
import hmac
import json
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime

import httpx
import pytest

from tests.conftest import BILLING_SECRET, System, wait_for

COPY_JOB = {"type": "copy", "input": {"product": {"name": "Lamp"}, "count": 1}}
SIGN = {"grant": 1, "topup": 1, "refund": 1, "debit": -1, "reset": -1}


def ledger(client: httpx.Client) -> list[dict]:
    entries, cursor = [], None
    while True:
        page = client.get("/v1/credits/transactions", params={"limit": 200, **({"cursor": cursor} if cursor else {})}).json()
        entries += page["transactions"]
        if (cursor := page["nextCursor"]) is None:
            return entries


def test_three_hundred_concurrent_debits_against_a_hundred_credits_create_exactly_a_hundred_jobs(system: System) -> None:
    client = system.workspace()
    system.admin.post(f"/v1/admin/workspaces/{client.workspace_id}/credits", json={"amount": 50, "reference": "r1"})  # type: ignore[attr-defined]

    def request_job(_: int) -> int:
        # A connection of its own per request: one client's pool shared by 64 threads was seen to hand a
        # thread a socket another thread had just closed (EBADF) on a loaded machine.
        with httpx.Client(base_url=str(client.base_url), headers={"Authorization": client.headers["Authorization"]}, timeout=60) as own:
            return own.post("/v1/jobs", json=COPY_JOB).status_code

    with ThreadPoolExecutor(max_workers=64) as pool:
        statuses = list(pool.map(request_job, range(300)))

    assert (statuses.count(202), statuses.count(402), len(statuses)) == (100, 200, 300)
    assert client.get("/v1/credits").json()["balance"] == 0
    entries = wait_for(lambda: len(e := ledger(client)) == 102 and e, timeout=30)
    assert sum(SIGN[e["type"]] * e["amount"] for e in entries) == 0  # type: ignore[union-attr]
    assert [e["balanceAfter"] for e in entries if e["type"] == "debit"] == list(range(100))  # type: ignore[union-attr]


def signed(body: dict) -> tuple[bytes, dict[str, str]]:
    raw = json.dumps(body).encode()
    return raw, {"X-Signature": hmac.new(BILLING_SECRET.encode(), raw, hashlib.sha256).hexdigest(), "content-type": "application/json"}


def order(workspace_id: str, order_id: int, variant_id: int = 111) -> dict:
    return {
        "meta": {"event_name": "order_created", "custom_data": {"workspace_id": workspace_id}},
        "data": {
            "type": "orders",
            "id": str(order_id),
            "attributes": {
                "status": "paid",
                "total": 1900,
                "first_order_item": {"variant_id": variant_id, "variant_name": "150 credits", "quantity": 1},
            },
        },
    }


def webhook(system: System, raw: bytes, headers: dict[str, str], event: str = "order_created") -> httpx.Response:
    return httpx.post(f"{system.base_url}/v1/billing/webhook", content=raw, headers={**headers, "X-Event-Name": event})


def test_paid_credit_pack_order_tops_up_once_however_often_it_is_delivered(system: System) -> None:
    client = system.workspace()
    raw, headers = signed(order(client.workspace_id, 9001))  # type: ignore[attr-defined]

    answers = [webhook(system, raw, headers) for _ in range(3)]

    assert [a.status_code for a in answers] == [200, 200, 200]
    assert answers[0].json() == {"received": True, "applied": True}
    credits = client.get("/v1/credits").json()
    assert (credits["balance"], credits["topupBalance"]) == (200, 150)
    topups = wait_for(lambda: [e for e in ledger(client) if e["type"] == "topup"])
    assert [(e["amount"], e["reference"]) for e in topups] == [(150, "lemonsqueezy:order:9001")]  # type: ignore[union-attr]


def test_webhook_with_a_bad_signature_is_401_and_records_nothing(system: System) -> None:
    client = system.workspace()
    raw, _ = signed(order(client.workspace_id, 9002))  # type: ignore[attr-defined]

    answer = webhook(system, raw, {"X-Signature": "0" * 64, "content-type": "application/json"})

    assert answer.status_code == 401
    assert answer.json()["code"] == "invalid_signature"
    assert client.get("/v1/credits").json()["balance"] == 50


def test_webhook_of_an_event_we_do_not_act_on_is_acknowledged_and_changes_nothing(system: System) -> None:
    client = system.workspace()
    body = order(client.workspace_id, 9003)  # type: ignore[attr-defined]
    raw, headers = signed({**body, "meta": {**body["meta"], "event_name": "license_key_created"}})

    answer = webhook(system, raw, headers, event="license_key_created")

    assert answer.status_code == 200
    assert answer.json() == {"received": True, "applied": False}
    assert client.get("/v1/credits").json()["balance"] == 50


@pytest.mark.parametrize("raw", [b"{not json", b'{"meta": {}, "data": {}}', b"[]"])
def test_webhook_with_a_malformed_body_is_422_and_records_nothing(system: System, raw: bytes) -> None:
    headers = {"X-Signature": hmac.new(BILLING_SECRET.encode(), raw, hashlib.sha256).hexdigest(), "content-type": "application/json"}

    answer = webhook(system, raw, headers)

    assert answer.status_code == 422
    assert answer.json()["code"] == "validation_error"


def test_subscription_to_a_higher_plan_upgrades_at_once(system: System) -> None:
    client = system.workspace()
    raw, headers = signed(
        {
            "meta": {"event_name": "subscription_created", "custom_data": {"workspace_id": client.workspace_id}},  # type: ignore[attr-defined]
            "data": {"type": "subscriptions", "id": "77", "attributes": {"status": "active", "variant_id": 201}},
        }
    )

    assert webhook(system, raw, headers, event="subscription_created").json()["applied"] is True

    credits = client.get("/v1/credits").json()
    assert credits["plan"] == "pro" and credits["nextPlan"] is None
    assert 490 <= credits["allowanceBalance"] <= 500  # 50, plus the pro-rated 450 for an almost whole period
    assert client.get("/v1/workspace").json()["plan"] == "pro"


def test_downgrade_waits_for_the_next_period(system: System) -> None:
    client = system.workspace(plan="business")

    answer = system.admin.post(f"/v1/admin/workspaces/{client.workspace_id}/plan", json={"plan": "free"})  # type: ignore[attr-defined]

    assert answer.json() == {"plan": "business", "nextPlan": "free", "balance": 2500}
    assert client.get("/v1/credits").json()["nextPlan"] == "free"


def test_admin_adjustment_adds_and_removes_with_a_reason_but_never_overdraws(system: System) -> None:
    client = system.workspace()
    url = f"/v1/admin/workspaces/{client.workspace_id}/credits/adjustments"  # type: ignore[attr-defined]

    added = system.admin.post(url, json={"amount": 25, "reference": "goodwill-1", "reason": "outage"})
    removed = system.admin.post(url, json={"amount": -70, "reference": "fix-1", "reason": "double grant"})
    refused = system.admin.post(url, json={"amount": -6, "reference": "fix-2", "reason": "too much"})

    assert added.json() == {"balance": 75, "duplicate": False}
    assert removed.json() == {"balance": 5, "duplicate": False}
    assert refused.status_code == 402 and refused.json()["code"] == "insufficient_credits"
    assert client.get("/v1/credits").json()["balance"] == 5
    entries = wait_for(lambda: len(e := ledger(client)) == 3 and e)
    assert [(e["type"], e["amount"], e["reason"]) for e in entries[:2]] == [("debit", 70, "double grant"), ("grant", 25, "outage")]  # type: ignore[index]


def test_usage_counts_todays_jobs_by_type_with_every_day_present(system: System) -> None:
    client = system.workspace()
    for _ in range(3):
        client.post("/v1/jobs", json=COPY_JOB)

    spent = wait_for(lambda: (u := client.get("/v1/credits/usage", params={"days": 5}).json())["totalCredits"] == 3 and u)

    assert [d["date"] for d in spent["daily"]][-1] == datetime.now(UTC).date().isoformat()  # type: ignore[index]
    assert [d["credits"] for d in spent["daily"]] == [0, 0, 0, 0, 3]  # type: ignore[index]
    assert spent["byType"] == {"copy": 3, "image": 0, "video": 0} and spent["lifetime"] == 3  # type: ignore[index]
    assert client.get("/v1/credits/usage", params={"days": 0}).status_code == 422
    assert client.get("/v1/credits/usage", params={"days": 366}).status_code == 422
