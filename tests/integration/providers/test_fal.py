"""fal queue images against a fake fal queue on loopback."""

from __future__ import annotations

import time

import pytest

from adapters.fal_provider import FalImageMaker
from adapters.imaging import png_size
from application.ports import ImageBrief, ProviderError
from tests.fakes import FakeFal
from tests.integration.providers.conftest import ATTEMPTS, fast_options

MODEL = "fal-ai/flux/dev"
BRIEF = ImageBrief(prompt="A steel water bottle on a mountain trail", style="bold", aspect_ratio="9:16", headline="Stay cold")


def maker(fake: FakeFal, *, deadline: float = 5.0, **options: object) -> FalImageMaker:
    return FalImageMaker(fake.api_key, MODEL, queue_base=fake.url, poll_interval=0.02, deadline=deadline, options=fast_options(**options))


def test_image_brief_when_made_then_queued_polled_and_png_downloaded(fal_fake: FakeFal) -> None:
    with maker(fal_fake) as images:
        image = images.make(BRIEF, 0)
    assert (image.mime, image.width, image.height) == ("image/png", 576, 1024)
    assert png_size(image.content) == (576, 1024)
    (submit,) = fal_fake.seen("POST", f"/{MODEL}")
    assert submit.headers["authorization"] == f"Key {fal_fake.api_key}"
    assert submit.json()["image_size"] == "portrait_16_9"
    assert '"Stay cold"' in submit.json()["prompt"]
    assert len(fal_fake.seen("GET", "/fal-ai/flux/requests/*/status")) == fal_fake.polls_to_finish
    (download,) = fal_fake.seen("GET", "/files/*")
    assert "authorization" not in download.headers


def test_rate_limited_submit_once_when_made_then_retried_after_retry_after_and_succeeds(fal_fake: FakeFal) -> None:
    fal_fake.rate_limit("POST", f"/{MODEL}", retry_after="1", times=1)
    with maker(fal_fake) as images:
        image = images.make(BRIEF, 0)
    seen = fal_fake.seen("POST", f"/{MODEL}")
    assert (image.width, image.height) == (576, 1024)
    assert len(seen) == 2
    assert seen[1].at - seen[0].at >= 0.95
    assert len(fal_fake.jobs) == 1


def test_status_server_error_always_when_made_then_provider_unavailable_after_all_attempts(fal_fake: FakeFal) -> None:
    fal_fake.fail("GET", "/fal-ai/flux/requests/*/status", status=502)
    with maker(fal_fake) as images, pytest.raises(ProviderError) as caught:
        images.make(BRIEF, 0)
    assert (caught.value.code, caught.value.retryable) == ("provider_unavailable", True)
    assert len(fal_fake.seen("GET", "/fal-ai/flux/requests/*/status")) == ATTEMPTS


def test_submit_slower_than_read_timeout_when_made_then_provider_timeout(fal_fake: FakeFal) -> None:
    fal_fake.stall("POST", f"/{MODEL}", seconds=3)
    started = time.monotonic()
    with maker(fal_fake, read_timeout=0.2, attempts=2) as images, pytest.raises(ProviderError) as caught:
        images.make(BRIEF, 0)
    assert (caught.value.code, caught.value.retryable) == ("provider_timeout", True)
    assert time.monotonic() - started < 1.5


def test_job_that_never_finishes_when_made_then_provider_timeout_within_deadline_and_cancelled(fal_fake: FakeFal) -> None:
    fal_fake.never_finish = True
    started = time.monotonic()
    with maker(fal_fake, deadline=0.5) as images, pytest.raises(ProviderError) as caught:
        images.make(BRIEF, 0)
    elapsed = time.monotonic() - started
    assert (caught.value.code, caught.value.retryable) == ("provider_timeout", True)
    assert 0.5 <= elapsed < 1.5
    assert len(fal_fake.seen("GET", "/fal-ai/flux/requests/*/status")) > 3
    assert len(fal_fake.seen("PUT", "/fal-ai/flux/requests/*/cancel")) == 1
    assert all(job["cancelled"] for job in fal_fake.jobs.values())


def test_malformed_result_when_made_then_provider_malformed_response_not_retried(fal_fake: FakeFal) -> None:
    fal_fake.malformed("GET", "/fal-ai/flux/requests/*", body=b'{"images": "not a list"}')
    with maker(fal_fake) as images, pytest.raises(ProviderError) as caught:
        images.make(BRIEF, 0)
    assert (caught.value.code, caught.value.retryable) == ("provider_malformed_response", False)
    assert len(fal_fake.seen("GET", "/fal-ai/flux/requests/*")) == 1


def test_unsafe_image_when_made_then_content_filtered_not_retryable(fal_fake: FakeFal) -> None:
    fal_fake.nsfw = True
    with maker(fal_fake) as images, pytest.raises(ProviderError) as caught:
        images.make(BRIEF, 0)
    assert (caught.value.code, caught.value.retryable) == ("content_filtered", False)


def test_wrong_key_when_made_then_provider_rejected_with_fal_detail(fal_fake: FakeFal) -> None:
    with FalImageMaker("wrong", MODEL, queue_base=fal_fake.url, options=fast_options()) as images, pytest.raises(ProviderError) as caught:
        images.make(BRIEF, 0)
    assert (caught.value.code, caught.value.retryable) == ("provider_rejected", False)
    assert "Authentication is required" in caught.value.message


def test_loopback_queue_when_private_not_allowed_then_url_not_allowed(fal_fake: FakeFal) -> None:
    with maker(fal_fake, allow_private=False) as images, pytest.raises(ProviderError) as caught:
        images.make(BRIEF, 0)
    assert (caught.value.code, caught.value.retryable) == ("url_not_allowed", False)
    assert fal_fake.requests == []
