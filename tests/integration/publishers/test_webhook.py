"""The webhook publisher against a receiver on loopback: body, headers, signature, the reconcile look-up."""

from __future__ import annotations

import hashlib
import hmac
import time

import pytest

from adapters.publishers.webhook import WebhookPublisher
from application.ports import PublishError, Receipt
from tests.fakes import FakeWebhookReceiver
from tests.integration.providers.conftest import fast_options
from tests.integration.publishers.conftest import WEBHOOK_SECRET, Platform, image, outgoing


def test_post_with_media_when_published_then_json_body_idempotency_key_and_receiver_receipt(webhook: Platform) -> None:
    post = outgoing("Cold water for 24 hours.", media=(image("a.png"),))
    receipt = webhook.publisher().publish(webhook.credentials, post)
    (request,) = webhook.fake.seen("POST", "/hooks/pressroom")
    assert request.json() == {
        "id": post.post_id,
        "text": "Cold water for 24 hours.",
        "media": [{"url": "https://media.example.com/a.png?sig=abc", "mime": "image/png"}],
        "idempotencyKey": post.idempotency_key,
    }
    assert request.headers["content-type"] == "application/json"
    assert request.headers["idempotency-key"] == post.idempotency_key
    assert receipt == Receipt(provider_post_id="rcv_1", url=f"{webhook.fake.url}/posts/1")


def test_secret_set_when_published_then_signature_verifies_with_the_documented_scheme(webhook: Platform) -> None:
    webhook.publisher().publish(webhook.credentials, outgoing())
    (request,) = webhook.fake.seen("POST")
    fields = dict(part.split("=", 1) for part in request.headers["pressroom-signature"].split(","))
    assert abs(int(fields["t"]) - time.time()) < 5
    expected = hmac.new(WEBHOOK_SECRET.encode(), f"{fields['t']}.".encode() + request.body, hashlib.sha256).hexdigest()
    assert fields["v1"] == expected


def test_no_secret_when_published_then_no_signature_header() -> None:
    with FakeWebhookReceiver() as fake, WebhookPublisher(fast_options()) as publisher:
        publisher.publish({"url": fake.hook_url}, outgoing())
        (request,) = fake.seen("POST")
    assert "pressroom-signature" not in request.headers


def test_receiver_answering_no_body_when_published_then_receipt_id_is_the_idempotency_key(webhook: Platform) -> None:
    webhook.fake.answer_ids = False
    post = outgoing()
    assert webhook.publisher().publish(webhook.credentials, post) == Receipt(provider_post_id=post.idempotency_key)


def test_unknown_post_when_reconciled_then_signed_get_with_the_key_and_none_on_404(webhook: Platform) -> None:
    post = outgoing()
    assert webhook.publisher().find(webhook.credentials, post) is None
    (request,) = webhook.fake.seen("GET", "/hooks/pressroom")
    assert request.query == {"idempotencyKey": post.idempotency_key}
    assert webhook.fake.signature_valid(request)
    assert webhook.fake.seen("POST") == []


def test_receiver_rejecting_the_body_when_published_then_provider_rejected_with_its_message(webhook: Platform) -> None:
    webhook.fake.fail("POST", "/hooks/pressroom", status=422, body={"error": "text too long for our CMS"})
    with pytest.raises(PublishError) as caught:
        webhook.publisher().publish(webhook.credentials, outgoing())
    assert (caught.value.code, caught.value.retryable, caught.value.http_status) == ("provider_rejected", False, 422)
    assert "text too long for our CMS" in caught.value.message


def test_published_post_when_deleted_then_delete_unsupported(webhook: Platform) -> None:
    with pytest.raises(PublishError) as caught:
        webhook.publisher().delete(webhook.credentials, Receipt(provider_post_id="rcv_1"))
    assert (caught.value.code, caught.value.retryable) == ("delete_unsupported", False)


def test_private_url_when_verified_with_private_addresses_refused_then_url_not_allowed(webhook: Platform) -> None:
    with pytest.raises(PublishError) as caught:
        webhook.publisher(allow_private=False).verify(webhook.credentials)
    assert (caught.value.code, caught.value.retryable) == ("url_not_allowed", False)


def test_url_with_a_token_in_its_query_when_verified_then_display_name_drops_the_query(webhook: Platform) -> None:
    profile = webhook.publisher().verify({"url": f"{webhook.fake.hook_url}?token=s3cret"})
    assert profile.display_name == webhook.fake.hook_url
    assert webhook.fake.requests == []
