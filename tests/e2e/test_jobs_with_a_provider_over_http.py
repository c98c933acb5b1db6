"""Image jobs against a provider's HTTP API (a fake on loopback): partial results, cancel and expiry, over HTTP."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest

from tests.conftest import System, wait_for
from tests.fakes import FakeOpenAI

IMAGES = "/v1/images/generations"


def image_job(count: int) -> dict:
    return {"type": "image", "input": {"prompt": "A brass desk lamp on walnut", "count": count}}


def job(client: httpx.Client, job_id: str) -> dict:
    return client.get(f"/v1/jobs/{job_id}").json()


@pytest.fixture
def provider(image_provider: FakeOpenAI) -> Iterator[FakeOpenAI]:
    yield image_provider
    image_provider.reset()


def test_image_job_whose_provider_refuses_one_of_three_ends_partial_with_that_image_refunded(
    provider_system: System, provider: FakeOpenAI
) -> None:
    client = provider_system.workspace()
    provider.fail("POST", IMAGES, status=400, times=1, body={"error": {"message": "Your request was rejected by our safety system."}})

    job_id = client.post("/v1/jobs", json=image_job(3)).json()["jobId"]
    done = wait_for(lambda: (j := job(client, job_id))["status"] not in ("queued", "processing") and j, timeout=60)

    assert (done["status"], done["progress"], len(done["result"]["assets"])) == ("partial", {"done": 2, "total": 3}, 2)  # type: ignore[index]
    assert (done["creditsReserved"], done["creditsConsumed"], done["creditsRefunded"]) == (9, 6, 3)  # type: ignore[index]
    assert done["error"]["code"] == "provider_rejected"  # type: ignore[index]
    assert client.get("/v1/credits").json()["balance"] == 50 - 6


def test_job_canceled_while_processing_stops_and_refunds_what_was_not_made(provider_system: System, provider: FakeOpenAI) -> None:
    client = provider_system.workspace()
    provider.stall("POST", IMAGES, seconds=2.0, times=1)

    job_id = client.post("/v1/jobs", json=image_job(2)).json()["jobId"]
    wait_for(lambda: job(client, job_id)["status"] == "processing", timeout=30)
    canceled = client.post(f"/v1/jobs/{job_id}/cancel")

    assert canceled.status_code == 200 and canceled.json()["status"] == "canceled"
    assert canceled.json()["creditsRefunded"] == 6
    assert client.get("/v1/credits").json()["balance"] == 50
    wait_for(lambda: len(provider.seen("POST", IMAGES)) >= 1, timeout=10)
    assert job(client, job_id)["status"] == "canceled"


def test_job_with_no_progress_before_its_deadline_expires_and_is_refunded(provider_system: System, provider: FakeOpenAI) -> None:
    client = provider_system.workspace()
    provider.stall("POST", IMAGES, seconds=10.0, times=1)

    job_id = client.post("/v1/jobs", json=image_job(1)).json()["jobId"]
    expired = wait_for(lambda: (j := job(client, job_id))["status"] == "expired" and j, timeout=30)

    assert (expired["creditsRefunded"], expired["creditsConsumed"]) == (3, 0)  # type: ignore[index]
    assert client.get("/v1/credits").json()["balance"] == 50
