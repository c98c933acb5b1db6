"""HeyGen avatar videos against a fake HeyGen API on loopback."""

from __future__ import annotations

import time

import pytest

from adapters.heygen_provider import HeyGenVideoMaker
from application.ports import ProviderError, VideoBrief
from tests.fakes import FakeHeyGen
from tests.integration.providers.conftest import ATTEMPTS, fast_options

AVATAR = "Daisy-inskirt-20220818"
BRIEF = VideoBrief(script="Meet the bottle that keeps water cold for a whole day.", voice_id="male-1", aspect_ratio="9:16")


def maker(fake: FakeHeyGen, *, deadline: float = 5.0, **options: object) -> HeyGenVideoMaker:
    return HeyGenVideoMaker(
        fake.api_key,
        AVATAR,
        base_url=fake.url,
        voices={"male-1": "2d5b0e6cf36f460aa7fc47e3eee4ba54"},
        poll_interval=0.02,
        deadline=deadline,
        options=fast_options(**options),
    )


def test_video_brief_when_made_then_mp4_of_requested_dimension_and_duration(heygen_fake: FakeHeyGen) -> None:
    with maker(heygen_fake) as videos:
        video = videos.make(BRIEF)
    assert (video.mime, video.width, video.height, video.duration_seconds) == ("video/mp4", 720, 1280, 7.25)
    assert video.content[4:8] == b"ftyp"
    (generate,) = heygen_fake.seen("POST", "/v2/video/generate")
    body = generate.json()
    assert generate.headers["x-api-key"] == heygen_fake.api_key
    assert body["dimension"] == {"width": 720, "height": 1280}
    scene = body["video_inputs"][0]
    assert scene["character"] == {"type": "avatar", "avatar_id": AVATAR, "avatar_style": "normal"}
    assert scene["voice"] == {"type": "text", "input_text": BRIEF.script, "voice_id": "2d5b0e6cf36f460aa7fc47e3eee4ba54"}
    polls = heygen_fake.seen("GET", "/v1/video_status.get")
    assert len(polls) == heygen_fake.polls_to_finish
    assert polls[0].query == {"video_id": next(iter(heygen_fake.videos))}
    (download,) = heygen_fake.seen("GET", "/media/*")
    assert "x-api-key" not in download.headers


def test_rate_limited_generate_once_when_made_then_retried_after_retry_after_and_succeeds(heygen_fake: FakeHeyGen) -> None:
    heygen_fake.rate_limit("POST", "/v2/video/generate", retry_after="1", times=1)
    with maker(heygen_fake) as videos:
        video = videos.make(BRIEF)
    seen = heygen_fake.seen("POST", "/v2/video/generate")
    assert video.content[4:8] == b"ftyp"
    assert len(seen) == 2
    assert seen[1].at - seen[0].at >= 0.95


def test_server_error_always_when_made_then_provider_unavailable_after_all_attempts(heygen_fake: FakeHeyGen) -> None:
    heygen_fake.fail("POST", "/v2/video/generate", status=500)
    with maker(heygen_fake) as videos, pytest.raises(ProviderError) as caught:
        videos.make(BRIEF)
    assert (caught.value.code, caught.value.retryable) == ("provider_unavailable", True)
    assert len(heygen_fake.seen("POST", "/v2/video/generate")) == ATTEMPTS


def test_status_slower_than_read_timeout_when_polled_then_provider_timeout(heygen_fake: FakeHeyGen) -> None:
    heygen_fake.stall("GET", "/v1/video_status.get", seconds=3)
    started = time.monotonic()
    with maker(heygen_fake, read_timeout=0.2, attempts=2) as videos, pytest.raises(ProviderError) as caught:
        videos.make(BRIEF)
    assert (caught.value.code, caught.value.retryable) == ("provider_timeout", True)
    assert time.monotonic() - started < 1.5


def test_render_that_never_finishes_when_made_then_provider_timeout_within_deadline(heygen_fake: FakeHeyGen) -> None:
    heygen_fake.never_finish = True
    started = time.monotonic()
    with maker(heygen_fake, deadline=0.5) as videos, pytest.raises(ProviderError) as caught:
        videos.make(BRIEF)
    elapsed = time.monotonic() - started
    assert (caught.value.code, caught.value.retryable) == ("provider_timeout", True)
    assert 0.5 <= elapsed < 1.5
    assert heygen_fake.seen("GET", "/media/*") == []


def test_failed_render_when_made_then_provider_failed_with_heygen_message_not_retryable(heygen_fake: FakeHeyGen) -> None:
    heygen_fake.fail_with = "Avatar not found in this account"
    with maker(heygen_fake) as videos, pytest.raises(ProviderError) as caught:
        videos.make(BRIEF)
    assert (caught.value.code, caught.value.retryable) == ("provider_failed", False)
    assert "Avatar not found in this account" in caught.value.message


def test_malformed_status_when_made_then_provider_malformed_response_not_retried(heygen_fake: FakeHeyGen) -> None:
    heygen_fake.malformed("GET", "/v1/video_status.get")
    with maker(heygen_fake) as videos, pytest.raises(ProviderError) as caught:
        videos.make(BRIEF)
    assert (caught.value.code, caught.value.retryable) == ("provider_malformed_response", False)
    assert len(heygen_fake.seen("GET", "/v1/video_status.get")) == 1


def test_invalid_request_when_made_then_provider_rejected_with_heygen_message(heygen_fake: FakeHeyGen) -> None:
    videos = HeyGenVideoMaker(heygen_fake.api_key, "", base_url=heygen_fake.url, options=fast_options())
    with videos, pytest.raises(ProviderError) as caught:
        videos.make(BRIEF)
    assert (caught.value.code, caught.value.retryable) == ("provider_rejected", False)
    assert "character.avatar_id is required" in caught.value.message


def test_custom_avatar_url_when_made_then_unsupported_input_without_calling_heygen(heygen_fake: FakeHeyGen) -> None:
    brief = VideoBrief(script=BRIEF.script, avatar_url="https://example.com/me.png")
    with maker(heygen_fake) as videos, pytest.raises(ProviderError) as caught:
        videos.make(brief)
    assert (caught.value.code, caught.value.retryable) == ("unsupported_input", False)
    assert heygen_fake.requests == []


def test_loopback_base_url_when_private_not_allowed_then_url_not_allowed(heygen_fake: FakeHeyGen) -> None:
    with maker(heygen_fake, allow_private=False) as videos, pytest.raises(ProviderError) as caught:
        videos.make(BRIEF)
    assert (caught.value.code, caught.value.retryable) == ("url_not_allowed", False)
    assert heygen_fake.requests == []


def test_generate_answering_an_error_without_data_when_made_then_provider_rejected(heygen_fake: FakeHeyGen) -> None:
    heygen_fake.malformed(
        "POST", "/v2/video/generate", body=b'{"error": {"code": "quota", "message": "Insufficient credit"}, "data": null}'
    )
    with maker(heygen_fake) as videos, pytest.raises(ProviderError) as caught:
        videos.make(BRIEF)
    assert (caught.value.code, caught.value.retryable) == ("provider_rejected", False)
    assert "Insufficient credit" in caught.value.message
