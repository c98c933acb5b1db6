"""Campaigns over HTTP on the running system: a product page becomes approved creatives, an export, a run of posts."""

from __future__ import annotations

import csv
import hashlib
import io
import json
import zipfile
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest

from tests.conftest import System, wait_for
from tests.fakes import FakeOpenAI
from tests.fakes.product_site import ProductSite
from tests.fakes.webhook_receiver import FakeWebhookReceiver

IMAGES = "/v1/images/generations"
PAGE = """<!doctype html><html><head>
<title>Lumen Desk Lamp | Shop</title>
<meta property="og:title" content="Lumen Desk Lamp">
<meta property="og:description" content="A brass desk lamp with a dimmable warm LED.">
<meta property="og:image" content="/img/lamp.jpg">
<script type="application/ld+json">{"@context": "https://schema.org", "@type": "Product", "name": "Lumen Desk Lamp",
 "brand": {"@type": "Brand", "name": "Lumen"}, "offers": {"@type": "Offer", "price": "89.00", "priceCurrency": "EUR"}}</script>
</head><body><h1>Lumen</h1></body></html>"""


@pytest.fixture(scope="module")
def shop() -> Iterator[ProductSite]:
    with ProductSite() as site:
        site.page("/lamp", PAGE)
        yield site


@pytest.fixture
def receiver() -> Iterator[FakeWebhookReceiver]:
    with FakeWebhookReceiver(secret="receiver-secret") as fake:
        yield fake


def campaign(client: httpx.Client, campaign_id: str) -> dict[str, Any]:
    answer = client.get(f"/v1/campaigns/{campaign_id}")
    assert answer.status_code == 200, answer.text
    return answer.json()  # type: ignore[no-any-return]


def reaches(client: httpx.Client, campaign_id: str, status: str, timeout: float = 60) -> dict[str, Any]:
    return wait_for(lambda: (c := campaign(client, campaign_id))["status"] == status and c, timeout=timeout)  # type: ignore[return-value]


def create(client: httpx.Client, **body: Any) -> dict[str, Any]:
    answer = client.post("/v1/campaigns", json={"title": "Lumen launch", "platforms": ["x", "linkedin"], **body})
    assert answer.status_code == 201, answer.text
    return answer.json()  # type: ignore[no-any-return]


def ready(client: httpx.Client, shop: ProductSite, **body: Any) -> dict[str, Any]:
    return reaches(client, create(client, productUrl=shop.url + "/lamp", **body)["id"], "awaiting_approval")


def test_campaign_from_a_product_url_awaits_approval_with_a_copy_job_per_platform_and_its_images(system: System, shop: ProductSite) -> None:
    client = system.workspace()

    created = create(client, productUrl=shop.url + "/lamp", imageCount=2, tone="luxe")
    done = reaches(client, created["id"], "awaiting_approval")

    assert created["status"] == "pending" and created["jobs"] == []
    assert done["product"]["title"] == "Lumen Desk Lamp" and done["product"]["brand"] == "Lumen"
    assert done["product"]["price"] == "89.00" and done["product"]["images"] == [shop.url + "/img/lamp.jpg"]
    assert sorted((j["type"], j["slot"], j["status"]) for j in done["jobs"]) == [
        ("copy", "copy:linkedin", "completed"),
        ("copy", "copy:x", "completed"),
        ("image", "image", "completed"),
    ]
    assert sorted(v["platform"] for v in done["variants"]) == ["linkedin"] * 3 + ["x"] * 3
    assert len(done["assets"]) == 2 and all(a["type"] == "image" for a in done["assets"])
    assert client.get("/v1/credits").json()["balance"] == 50 - 2 - 6
    jobs = client.get("/v1/jobs", params={"campaignId": created["id"]}).json()["jobs"]
    assert len(jobs) == 3


def test_an_unreadable_product_page_falls_back_to_the_brief_and_says_so(system: System, shop: ProductSite) -> None:
    client = system.workspace()

    created = create(client, productUrl=shop.url + "/gone", description="A lamp for late readers.", imageCount=0)
    done = reaches(client, created["id"], "awaiting_approval")

    assert done["product"]["title"] == "Lumen launch" and done["product"]["description"] == "A lamp for late readers."
    assert done["product"]["fallbackReason"].startswith("page_not_found")
    assert [j["type"] for j in done["jobs"]] == ["copy", "copy"]


def test_approve_binds_the_content_and_a_second_approve_is_409(system: System, shop: ProductSite) -> None:
    client = system.workspace()
    done = ready(client, shop)

    approved = client.post(f"/v1/campaigns/{done['id']}/approve")
    again = client.post(f"/v1/campaigns/{done['id']}/approve")

    assert approved.status_code == 200 and approved.json()["status"] == "approved"
    assert approved.json()["approvedHash"] == done["contentHash"]
    assert again.status_code == 409 and again.json()["code"] == "invalid_state"


def test_an_edit_after_approval_invalidates_it_and_the_campaign_awaits_approval_again(system: System, shop: ProductSite) -> None:
    client = system.workspace()
    done = ready(client, shop)
    client.post(f"/v1/campaigns/{done['id']}/approve").raise_for_status()
    variant = done["variants"][0]

    edited = client.patch(f"/v1/campaigns/{done['id']}/variants/{variant['id']}", json={"hook": "Light, made slow."})

    assert edited.status_code == 200, edited.text
    body = edited.json()
    assert body["status"] == "awaiting_approval" and body["approvedHash"] is None
    assert body["contentHash"] != done["contentHash"]
    assert next(v for v in body["variants"] if v["id"] == variant["id"])["hook"] == "Light, made slow."
    types = wait_for(
        lambda: (
            "campaign.approval_invalidated"
            in (t := [e["type"] for e in client.get("/v1/audit/events", params={"aggregateId": done["id"]}).json()["events"]])
            and t
        )
    )
    assert types.index("campaign.approval_invalidated") < types.index("campaign.variant_edited")  # type: ignore[attr-defined]


def test_editing_an_unknown_variant_is_404(system: System, shop: ProductSite) -> None:
    client = system.workspace()
    done = ready(client, shop)

    answer = client.patch(f"/v1/campaigns/{done['id']}/variants/{done['id']}", json={"hook": "Nope"})

    assert answer.status_code == 404 and answer.json()["code"] == "not_found"


def test_regenerating_after_approval_takes_it_back_and_replaces_that_platforms_copy(system: System, shop: ProductSite) -> None:
    client = system.workspace()
    done = ready(client, shop)
    client.post(f"/v1/campaigns/{done['id']}/approve").raise_for_status()
    old_x = {v["id"] for v in done["variants"] if v["platform"] == "x"}

    answer = client.post(f"/v1/campaigns/{done['id']}/regenerate", json={"type": "copy", "platform": "x"})
    again = reaches(client, done["id"], "awaiting_approval")

    assert answer.status_code == 202 and answer.json()["status"] == "generating", answer.text
    assert len(again["jobs"]) == 4 and again["approvedHash"] is None
    new_x = {v["id"] for v in again["variants"] if v["platform"] == "x"}
    assert len(new_x) == 3 and not new_x & old_x
    assert client.get("/v1/credits").json()["balance"] == 50 - 2 - 3 - 1


def test_export_is_a_zip_whose_files_match_its_manifest(system: System, shop: ProductSite) -> None:
    client = system.workspace()
    done = ready(client, shop, imageCount=2)

    answer = client.get(f"/v1/campaigns/{done['id']}/export")

    assert answer.status_code == 200 and answer.headers["content-type"] == "application/zip"
    archive = zipfile.ZipFile(io.BytesIO(answer.content))
    assert archive.testzip() is None
    manifest = json.loads(archive.read("manifest.json"))
    assert sorted(archive.namelist()) == sorted(["manifest.json", *(f["path"] for f in manifest["files"])])
    for listed in manifest["files"]:
        content = archive.read(listed["path"])
        assert (len(content), hashlib.sha256(content).hexdigest()) == (listed["bytes"], listed["sha256"])
    rows = list(csv.reader(io.StringIO(archive.read("copy.csv").decode())))
    assert rows[0][:3] == ["variant_id", "platform", "hook"] and len(rows) == 1 + 6
    assert len([f for f in manifest["files"] if f["path"].startswith("media/")]) == 2
    assert manifest["campaign"]["contentHash"] == done["contentHash"]


def test_a_campaign_the_workspace_cannot_afford_is_402_and_charges_nothing(system: System) -> None:
    client = system.workspace()
    client.post("/v1/jobs", json={"type": "video", "input": {"script": "Meet the Lumen desk lamp today."}}).raise_for_status()
    before = client.get("/v1/credits").json()["balance"]

    answer = client.post("/v1/campaigns", json={"title": "Too big", "platforms": ["x", "linkedin"], "imageCount": 4})

    assert before == 10
    assert answer.status_code == 402 and answer.json()["code"] == "insufficient_credits"
    assert (answer.json()["required"], answer.json()["available"]) == (14, 10)
    assert client.get("/v1/credits").json()["balance"] == 10
    assert client.get("/v1/campaigns").json()["campaigns"] == []


def test_auto_approve_skips_the_wait_and_the_list_and_stats_show_it(system: System, shop: ProductSite) -> None:
    client = system.workspace()

    created = create(client, productUrl=shop.url + "/lamp", autoApprove=True, imageCount=0)
    reaches(client, created["id"], "approved")
    other = create(client, title="Second", description="Another lamp.", imageCount=0)

    listed = wait_for(lambda: len(c := client.get("/v1/campaigns").json()["campaigns"]) == 2 and c)
    approved = client.get("/v1/campaigns", params={"status": "approved"}).json()["campaigns"]
    first_page = client.get("/v1/campaigns", params={"limit": 1}).json()
    second_page = client.get("/v1/campaigns", params={"limit": 1, "cursor": first_page["nextCursor"]}).json()

    assert [c["id"] for c in listed] == [other["id"], created["id"]]  # type: ignore[index]
    assert [c["id"] for c in approved] == [created["id"]]
    assert [c["id"] for c in first_page["campaigns"] + second_page["campaigns"]] == [other["id"], created["id"]]
    assert second_page["nextCursor"] is None
    stats = wait_for(lambda: (s := client.get("/v1/campaigns/stats").json())["total"] == 2 and s)
    assert stats["awaitingApproval"] + stats["inProgress"] == 2 and stats["failed"] == 0  # type: ignore[index]


def test_a_campaign_of_another_workspace_is_404(system: System) -> None:
    mine, theirs = system.workspace(), system.workspace()
    created = create(mine, description="A lamp.", imageCount=0)

    assert theirs.get(f"/v1/campaigns/{created['id']}").status_code == 404
    assert theirs.delete(f"/v1/campaigns/{created['id']}").status_code == 404


def test_an_approved_campaign_scheduled_publishes_its_variants_and_completes(
    system: System, shop: ProductSite, receiver: FakeWebhookReceiver
) -> None:
    client = system.workspace()
    hook = client.post("/v1/connections", json={"provider": "webhook", "url": receiver.hook_url, "secret": "receiver-secret"})
    assert hook.status_code == 201, hook.text
    handle = hook.json()["connection"]["handle"]
    wait_for(lambda: client.get("/v1/accounts").json()["accounts"])
    done = ready(client, shop, imageCount=1)
    early = client.post(f"/v1/campaigns/{done['id']}/schedule", json={"accounts": [handle], "startAt": datetime.now(UTC).isoformat()})
    client.post(f"/v1/campaigns/{done['id']}/approve").raise_for_status()

    start = (datetime.now(UTC) + timedelta(seconds=2)).isoformat()
    scheduled = client.post(f"/v1/campaigns/{done['id']}/schedule", json={"accounts": [handle], "startAt": start, "spacingMinutes": 0})

    assert early.status_code == 409
    assert scheduled.status_code == 201, scheduled.text
    assert scheduled.json()["run"]["totalPosts"] == 6  # a webhook is no platform of the campaign: every variant goes
    assert campaign(client, done["id"])["status"] == "publishing"
    finished = reaches(client, done["id"], "completed", timeout=90)
    assert finished["runId"] == scheduled.json()["run"]["id"]

    def published() -> list[dict[str, Any]] | None:
        posts = client.get("/v1/posts", params={"campaignId": done["id"]}).json()["posts"]
        return posts if all(p["status"] == "published" for p in posts) else None

    assert len(wait_for(published)) == 6  # type: ignore[arg-type]


@pytest.fixture
def provider(image_provider: FakeOpenAI) -> Iterator[FakeOpenAI]:
    yield image_provider
    image_provider.reset()


def test_deleting_a_campaign_cancels_its_running_jobs_and_refunds_them(
    provider_system: System, provider: FakeOpenAI, shop: ProductSite
) -> None:
    client = provider_system.workspace()
    provider.stall("POST", IMAGES, seconds=3.0, times=2)
    created = create(client, productUrl=shop.url + "/lamp", imageCount=2)

    def image_job_running() -> dict[str, Any] | None:
        jobs = campaign(client, created["id"])["jobs"]
        return next((j for j in jobs if j["type"] == "image" and j["status"] == "processing"), None)

    image = wait_for(image_job_running, timeout=30)
    deleted = client.delete(f"/v1/campaigns/{created['id']}")

    assert deleted.status_code == 204
    job = client.get(f"/v1/jobs/{image['id']}").json()  # type: ignore[index]
    assert job["status"] == "canceled" and job["creditsRefunded"] == 6
    consumed = sum(client.get(f"/v1/jobs/{j['id']}").json()["creditsConsumed"] for j in campaign(client, created["id"])["jobs"])
    assert client.get("/v1/credits").json()["balance"] == 50 - consumed
    assert campaign(client, created["id"])["status"] == "deleted"
    assert client.delete(f"/v1/campaigns/{created['id']}").status_code == 204
