"""OpenAI-compatible copy and images against a fake OpenAI API on loopback."""

from __future__ import annotations

import base64
import json
import time

import pytest

from adapters.imaging import png_size
from adapters.openai_provider import OpenAICopyWriter, OpenAIImageMaker
from application.ports import CopyBrief, ImageBrief, Product, ProviderError
from tests.fakes import FakeOpenAI
from tests.integration.providers.conftest import ATTEMPTS, fast_options

MODEL = "gpt-4o-mini"
PRODUCT = Product(name="Trailblazer Bottle", description="Keeps water cold for 24 hours.")
BRIEF = CopyBrief(product=PRODUCT, platform="meta", tone="bold", count=4)


def writer(fake: FakeOpenAI, **options: object) -> OpenAICopyWriter:
    return OpenAICopyWriter(fake.base_url, fake.api_key, MODEL, options=fast_options(**options))


def image_maker(fake: FakeOpenAI, **options: object) -> OpenAIImageMaker:
    return OpenAIImageMaker(fake.base_url, fake.api_key, "dall-e-3", options=fast_options(**options))


def test_copy_brief_when_written_then_exactly_count_variants_in_json_mode(openai_fake: FakeOpenAI) -> None:
    with writer(openai_fake) as copy:
        variants = copy.write(BRIEF)
    assert len(variants) == 4
    assert all(v.hook and v.body and v.cta and v.hashtags for v in variants)
    (request,) = openai_fake.seen("POST", "/v1/chat/completions")
    body = request.json()
    assert request.headers["authorization"] == f"Bearer {openai_fake.api_key}"
    assert body["model"] == MODEL
    assert body["response_format"] == {"type": "json_object"}
    assert '"count":4' in body["messages"][-1]["content"]
    assert "Trailblazer Bottle" in body["messages"][-1]["content"]


def test_rate_limited_once_when_writing_then_retried_after_retry_after_and_succeeds(openai_fake: FakeOpenAI) -> None:
    openai_fake.rate_limit("POST", "/v1/chat/completions", retry_after="1", times=1)
    with writer(openai_fake) as copy:
        variants = copy.write(BRIEF)
    seen = openai_fake.seen("POST", "/v1/chat/completions")
    assert len(variants) == 4
    assert len(seen) == 2
    assert seen[1].at - seen[0].at >= 0.95


def test_server_error_always_when_writing_then_provider_unavailable_after_all_attempts(openai_fake: FakeOpenAI) -> None:
    openai_fake.fail("POST", "/v1/chat/completions", status=500)
    with writer(openai_fake) as copy, pytest.raises(ProviderError) as caught:
        copy.write(BRIEF)
    assert (caught.value.code, caught.value.retryable) == ("provider_unavailable", True)
    assert len(openai_fake.seen("POST", "/v1/chat/completions")) == ATTEMPTS


def test_model_slower_than_read_timeout_when_writing_then_provider_timeout(openai_fake: FakeOpenAI) -> None:
    openai_fake.stall("POST", "/v1/chat/completions", seconds=3)
    started = time.monotonic()
    with writer(openai_fake, read_timeout=0.2, attempts=2) as copy, pytest.raises(ProviderError) as caught:
        copy.write(BRIEF)
    assert (caught.value.code, caught.value.retryable) == ("provider_timeout", True)
    assert time.monotonic() - started < 1.5


def test_malformed_json_body_when_writing_then_provider_malformed_response_not_retried(openai_fake: FakeOpenAI) -> None:
    openai_fake.malformed("POST", "/v1/chat/completions")
    with writer(openai_fake) as copy, pytest.raises(ProviderError) as caught:
        copy.write(BRIEF)
    assert (caught.value.code, caught.value.retryable) == ("provider_malformed_response", False)
    assert len(openai_fake.seen("POST", "/v1/chat/completions")) == 1


def test_wrong_variant_count_when_writing_then_provider_malformed_response(openai_fake: FakeOpenAI) -> None:
    openai_fake.variant_count = 3
    with writer(openai_fake) as copy, pytest.raises(ProviderError) as caught:
        copy.write(BRIEF)
    assert (caught.value.code, caught.value.retryable) == ("provider_malformed_response", False)
    assert "asked for 4" in caught.value.message


def test_model_content_of_wrong_shape_when_writing_then_provider_malformed_response(openai_fake: FakeOpenAI) -> None:
    content = '{"variants": [{"hook": "Hi", "body": "", "cta": "Go", "hashtags": []}]}'
    completion = {"choices": [{"index": 0, "message": {"role": "assistant", "content": content}, "finish_reason": "stop"}]}
    openai_fake.malformed("POST", "/v1/chat/completions", body=json.dumps(completion).encode())
    with writer(openai_fake) as copy, pytest.raises(ProviderError) as caught:
        copy.write(CopyBrief(product=PRODUCT, count=1))
    assert caught.value.code == "provider_malformed_response"


def test_wrong_api_key_when_writing_then_provider_rejected_with_provider_message(openai_fake: FakeOpenAI) -> None:
    with OpenAICopyWriter(openai_fake.base_url, "sk-wrong", MODEL, options=fast_options()) as copy, pytest.raises(ProviderError) as caught:
        copy.write(BRIEF)
    assert (caught.value.code, caught.value.retryable) == ("provider_rejected", False)
    assert "Incorrect API key provided" in caught.value.message
    assert "sk-wrong" not in caught.value.message
    assert len(openai_fake.requests) == 1


def test_loopback_base_url_when_private_not_allowed_then_url_not_allowed(openai_fake: FakeOpenAI) -> None:
    with writer(openai_fake, allow_private=False) as copy, pytest.raises(ProviderError) as caught:
        copy.write(BRIEF)
    assert (caught.value.code, caught.value.retryable) == ("url_not_allowed", False)
    assert openai_fake.requests == []


@pytest.mark.parametrize(("aspect", "size"), [("1:1", (1024, 1024)), ("9:16", (1024, 1792)), ("16:9", (1792, 1024)), ("4:5", (1024, 1024))])
def test_image_brief_when_made_then_png_of_the_mapped_size(openai_fake: FakeOpenAI, aspect: str, size: tuple[int, int]) -> None:
    brief = ImageBrief(prompt="A steel water bottle on a mountain trail", style="lifestyle", aspect_ratio=aspect, headline="Cold for 24h")  # type: ignore[arg-type]
    with image_maker(openai_fake) as images:
        image = images.make(brief, 0)
    assert (image.mime, image.width, image.height) == ("image/png", *size)
    assert png_size(image.content) == size
    body = openai_fake.seen("POST", "/v1/images/generations")[0].json()
    assert body["size"] == f"{size[0]}x{size[1]}"
    assert body["response_format"] == "b64_json"
    assert body["n"] == 1
    assert "A steel water bottle on a mountain trail" in body["prompt"]
    assert '"Cold for 24h"' in body["prompt"]
    assert "Lifestyle" in body["prompt"]


def test_image_answer_not_png_when_made_then_provider_malformed_response(openai_fake: FakeOpenAI) -> None:
    openai_fake.image_b64 = base64.b64encode(b"GIF89a not a png").decode()
    with image_maker(openai_fake) as images, pytest.raises(ProviderError) as caught:
        images.make(ImageBrief(prompt="A steel water bottle"), 0)
    assert (caught.value.code, caught.value.retryable) == ("provider_malformed_response", False)


def test_images_rate_limited_once_when_made_then_retried_and_succeeds(openai_fake: FakeOpenAI) -> None:
    openai_fake.rate_limit("POST", "/v1/images/generations", retry_after="1", times=1)
    with image_maker(openai_fake) as images:
        image = images.make(ImageBrief(prompt="A steel water bottle"), 0)
    seen = openai_fake.seen("POST", "/v1/images/generations")
    assert (image.width, image.height) == (1024, 1024)
    assert len(seen) == 2
    assert seen[1].at - seen[0].at >= 0.95
