"""LemonSqueezy webhooks: the HMAC-SHA256 signature of the raw body, and the payment notice each event is."""

from __future__ import annotations

import hashlib
import hmac
import json
from typing import Any
from uuid import UUID, uuid4

import pytest

from adapters.lemonsqueezy import InvalidSignature, LemonSqueezy, MalformedNotice
from application.billing import CreditPackPurchased, SubscriptionChanged

SECRET = "whsec-test-3f9a1c"
PACK_VARIANT = 111
PRO_VARIANT = 222
BUSINESS_VARIANT = 333
WORKSPACE_ID = UUID("6f1c2d3e-4b5a-4c7d-8e9f-0a1b2c3d4e5f")


def provider(secret: str | None = SECRET) -> LemonSqueezy:
    return LemonSqueezy(secret, credit_packs={str(PACK_VARIANT): 150}, plans={str(PRO_VARIANT): "pro", str(BUSINESS_VARIANT): "business"})


def sign(body: bytes, secret: str = SECRET) -> str:
    return hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def webhook(event_name: str, data: dict[str, Any], workspace_id: object = WORKSPACE_ID) -> dict[str, Any]:
    return {
        "meta": {
            "test_mode": True,
            "event_name": event_name,
            "webhook_id": "0d9f0c3e-6f0a-4f69-9a2c-6c1c9b8b2a11",
            "custom_data": {"workspace_id": str(workspace_id)},
        },
        "data": data,
    }


def order(status: str = "paid", variant_id: int = PACK_VARIANT, quantity: int = 1, order_id: str = "1234") -> dict[str, Any]:
    return {
        "type": "orders",
        "id": order_id,
        "attributes": {
            "store_id": 5678,
            "customer_id": 42,
            "identifier": "104e18a2-d755-4d4b-80c4-a6c1dcbe1c10",
            "order_number": 1001,
            "user_name": "Ada Lovelace",
            "user_email": "ada@example.com",
            "currency": "USD",
            "subtotal": 1500,
            "total": 1500,
            "status": status,
            "status_formatted": status.title(),
            "refunded": False,
            "first_order_item": {
                "id": 9876,
                "order_id": int(order_id),
                "product_id": 555,
                "variant_id": variant_id,
                "product_name": "Pressroom credits",
                "variant_name": "150 credits",
                "quantity": quantity,
                "price": 1500,
                "test_mode": True,
            },
            "created_at": "2025-03-15T09:30:00.000000Z",
            "updated_at": "2025-03-15T09:30:00.000000Z",
            "test_mode": True,
        },
        "links": {"self": f"https://api.lemonsqueezy.com/v1/orders/{order_id}"},
    }


def subscription(status: str = "active", variant_id: int = PRO_VARIANT) -> dict[str, Any]:
    return {
        "type": "subscriptions",
        "id": "4321",
        "attributes": {
            "store_id": 5678,
            "customer_id": 42,
            "order_id": 1234,
            "order_item_id": 9876,
            "product_id": 556,
            "variant_id": variant_id,
            "product_name": "Pressroom",
            "variant_name": "Pro monthly",
            "user_name": "Ada Lovelace",
            "user_email": "ada@example.com",
            "status": status,
            "status_formatted": status.title(),
            "pause": None,
            "cancelled": status == "cancelled",
            "trial_ends_at": None,
            "billing_anchor": 15,
            "renews_at": "2025-04-15T09:30:00.000000Z",
            "ends_at": None,
            "created_at": "2025-03-15T09:30:00.000000Z",
            "updated_at": "2025-03-15T09:30:00.000000Z",
            "test_mode": True,
        },
    }


def encoded(payload: dict[str, Any]) -> bytes:
    return json.dumps(payload).encode()


def receive(payload: dict[str, Any], event_name: str | None = None) -> Any:
    """The notice in a correctly signed webhook; the event name comes from the X-Event-Name header."""
    body = encoded(payload)
    return provider().notice_from(body, sign(body), event_name or payload["meta"]["event_name"])


# Signatures


def test_body_signed_with_the_secret_when_verified_then_passes() -> None:
    body = encoded(webhook("order_created", order()))

    provider().verify(body, sign(body))


def test_body_signed_in_upper_case_hex_when_verified_then_passes() -> None:
    body = encoded(webhook("order_created", order()))

    provider().verify(body, sign(body).upper())


def test_body_signed_with_another_secret_when_verified_then_raises_invalid_signature() -> None:
    body = encoded(webhook("order_created", order()))

    with pytest.raises(InvalidSignature):
        provider().verify(body, sign(body, secret="someone-elses-secret"))


def test_body_changed_after_signing_when_verified_then_raises_invalid_signature() -> None:
    body = encoded(webhook("order_created", order()))
    tampered = encoded(webhook("order_created", order(quantity=100)))

    with pytest.raises(InvalidSignature):
        provider().verify(tampered, sign(body))


@pytest.mark.parametrize("signature", [None, ""])
def test_webhook_without_signature_when_verified_then_raises_invalid_signature(signature: str | None) -> None:
    body = encoded(webhook("order_created", order()))

    with pytest.raises(InvalidSignature):
        provider().verify(body, signature)


def test_signature_with_non_ascii_characters_when_verified_then_raises_invalid_signature() -> None:
    # Header values arrive decoded as latin-1, so a forged one can hold any of its characters.
    body = encoded(webhook("order_created", order()))

    with pytest.raises(InvalidSignature):
        provider().verify(body, "é" * 64)


@pytest.mark.parametrize("secret", [None, ""])
def test_provider_without_secret_when_verified_then_raises_invalid_signature(secret: str | None) -> None:
    body = encoded(webhook("order_created", order()))

    with pytest.raises(InvalidSignature):
        provider(secret).verify(body, sign(body, secret=""))


def test_badly_signed_webhook_when_received_then_raises_invalid_signature_before_reading_the_body() -> None:
    with pytest.raises(InvalidSignature):
        provider().notice_from(b"not json at all", "0" * 64, "order_created")


# Orders


def test_paid_order_of_a_credit_pack_when_received_then_is_a_credit_pack_purchase() -> None:
    notice = receive(webhook("order_created", order(order_id="1234")))

    assert isinstance(notice, CreditPackPurchased)
    assert (notice.workspace_id, notice.order_reference, notice.credits) == (WORKSPACE_ID, "lemonsqueezy:order:1234", 150)


def test_paid_order_of_a_credit_pack_when_received_then_description_names_the_pack_and_quantity() -> None:
    notice = receive(webhook("order_created", order()))

    assert notice.description == "credit pack 150 credits x1"


def test_paid_order_of_several_packs_when_received_then_credits_are_multiplied_by_the_quantity() -> None:
    notice = receive(webhook("order_created", order(quantity=3)))

    assert isinstance(notice, CreditPackPurchased)
    assert notice.credits == 450


def test_same_order_when_received_twice_then_reference_is_the_same() -> None:
    payload = webhook("order_created", order(order_id="1234"))

    assert receive(payload).order_reference == receive(payload).order_reference


def test_event_name_only_in_meta_when_received_then_meta_names_the_event() -> None:
    body = encoded(webhook("order_created", order()))

    notice = provider().notice_from(body, sign(body), None)

    assert isinstance(notice, CreditPackPurchased)


def test_pending_order_when_received_then_gives_no_notice() -> None:
    assert receive(webhook("order_created", order(status="pending"))) is None


def test_paid_order_of_an_unknown_variant_when_received_then_raises_malformed_notice() -> None:
    with pytest.raises(MalformedNotice):
        receive(webhook("order_created", order(variant_id=999)))


# Subscriptions


@pytest.mark.parametrize("event_name", ["subscription_created", "subscription_updated"])
def test_active_subscription_of_a_plan_variant_when_received_then_plan_changes_to_it(event_name: str) -> None:
    notice = receive(webhook(event_name, subscription(status="active", variant_id=PRO_VARIANT)))

    assert notice == SubscriptionChanged(workspace_id=WORKSPACE_ID, plan="pro")


def test_subscription_updated_to_another_variant_when_received_then_plan_changes_to_that_plan() -> None:
    notice = receive(webhook("subscription_updated", subscription(status="active", variant_id=BUSINESS_VARIANT)))

    assert notice == SubscriptionChanged(workspace_id=WORKSPACE_ID, plan="business")


def test_subscription_on_trial_when_received_then_plan_changes_to_it() -> None:
    notice = receive(webhook("subscription_created", subscription(status="on_trial")))

    assert notice == SubscriptionChanged(workspace_id=WORKSPACE_ID, plan="pro")


def test_active_subscription_of_an_unknown_variant_when_received_then_raises_malformed_notice() -> None:
    with pytest.raises(MalformedNotice):
        receive(webhook("subscription_created", subscription(variant_id=999)))


def test_subscription_updated_to_past_due_when_received_then_gives_no_notice() -> None:
    assert receive(webhook("subscription_updated", subscription(status="past_due"))) is None


@pytest.mark.parametrize(("event_name", "status"), [("subscription_expired", "expired"), ("subscription_cancelled", "cancelled")])
def test_ended_subscription_when_received_then_plan_changes_to_free(event_name: str, status: str) -> None:
    notice = receive(webhook(event_name, subscription(status=status)))

    assert notice == SubscriptionChanged(workspace_id=WORKSPACE_ID, plan="free")


# Other events and malformed bodies


def test_unrelated_event_when_received_then_gives_no_notice() -> None:
    license_key = {
        "type": "license-keys",
        "id": "77",
        "attributes": {"store_id": 5678, "order_id": 1234, "key": "80e15db5-c796-436b-850c-8f9c98a48abe", "status": "inactive"},
    }

    assert receive(webhook("license_key_created", license_key)) is None


def test_body_that_is_not_json_when_received_then_raises_malformed_notice() -> None:
    body = b"<html>not a webhook</html>"

    with pytest.raises(MalformedNotice):
        provider().notice_from(body, sign(body), "order_created")


def test_webhook_without_workspace_id_when_received_then_raises_malformed_notice() -> None:
    payload = webhook("order_created", order())
    del payload["meta"]["custom_data"]["workspace_id"]

    with pytest.raises(MalformedNotice):
        receive(payload)


def test_webhook_without_custom_data_when_received_then_raises_malformed_notice() -> None:
    payload = webhook("order_created", order())
    del payload["meta"]["custom_data"]

    with pytest.raises(MalformedNotice):
        receive(payload)


def test_webhook_whose_workspace_id_is_not_a_uuid_when_received_then_raises_malformed_notice() -> None:
    with pytest.raises(MalformedNotice):
        receive(webhook("order_created", order(), workspace_id="acme"))


def test_webhook_for_another_workspace_when_received_then_notice_names_that_workspace() -> None:
    other = uuid4()

    notice = receive(webhook("order_created", order(), workspace_id=other))

    assert notice.workspace_id == other
