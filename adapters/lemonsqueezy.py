"""LemonSqueezy webhooks: the signature check and the translation of its events into payment notices.

LemonSqueezy signs the raw body with HMAC-SHA256 (hex, `X-Signature`) and names the event in
`X-Event-Name`; the workspace comes back in `meta.custom_data.workspace_id`, set at checkout.
"""

from __future__ import annotations

import hashlib
import hmac
from typing import Any
from uuid import UUID

import msgspec

from application.billing import CreditPackPurchased, PaymentNotice, SubscriptionChanged

SUBSCRIPTION_ACTIVE = frozenset({"subscription_created", "subscription_updated", "subscription_resumed", "subscription_unpaused"})
SUBSCRIPTION_ENDED = frozenset({"subscription_expired", "subscription_cancelled"})


class InvalidSignature(Exception):
    pass


class MalformedNotice(Exception):
    pass


class CustomData(msgspec.Struct):
    workspace_id: UUID


class Meta(msgspec.Struct):
    custom_data: CustomData
    event_name: str | None = None


class Data(msgspec.Struct):
    id: str | int
    attributes: dict[str, Any]


class Webhook(msgspec.Struct):
    meta: Meta
    data: Data


class LemonSqueezy:
    def __init__(self, secret: str | None, credit_packs: dict[str, int], plans: dict[str, str]) -> None:
        self.secret = secret
        self.credit_packs = credit_packs
        self.plans = plans

    def notice_from(self, body: bytes, signature: str | None, event_name: str | None) -> PaymentNotice | None:
        """The notice in a webhook whose signature holds; raises InvalidSignature or MalformedNotice."""
        self.verify(body, signature)
        return self.notice(body, event_name)

    def verify(self, body: bytes, signature: str | None) -> None:
        if not self.secret:
            raise InvalidSignature("Payment webhooks are not configured (PRESSROOM_BILLING_WEBHOOK_SECRET).")
        expected = hmac.new(self.secret.encode(), body, hashlib.sha256).hexdigest()
        # Bytes, not text: a forged header may carry any characters, and must still just not match.
        if not signature or not hmac.compare_digest(expected.encode(), signature.strip().lower().encode()):
            raise InvalidSignature("The X-Signature header does not match the body.")

    def notice(self, body: bytes, event_name: str | None) -> PaymentNotice | None:
        """The notice a verified webhook carries; None for events that change nothing here."""
        try:
            webhook = msgspec.json.decode(body, type=Webhook)
        except msgspec.DecodeError as error:
            raise MalformedNotice(str(error)) from None
        event = event_name or webhook.meta.event_name
        attributes = webhook.data.attributes
        workspace_id = webhook.meta.custom_data.workspace_id
        if event == "order_created" and attributes.get("status") == "paid":
            item = attributes.get("first_order_item") or {}
            pack_credits = self.credit_packs.get(str(item.get("variant_id")))
            if pack_credits is None:
                raise MalformedNotice(f"Variant {item.get('variant_id')!r} is not a configured credit pack.")
            quantity = int(item.get("quantity") or 1)
            return CreditPackPurchased(
                workspace_id=workspace_id,
                order_reference=f"lemonsqueezy:order:{webhook.data.id}",
                credits=pack_credits * quantity,
                description=f"credit pack {item.get('variant_name') or item.get('variant_id')} x{quantity}",
            )
        if event in SUBSCRIPTION_ACTIVE and attributes.get("status") in {"active", "on_trial"}:
            plan = self.plans.get(str(attributes.get("variant_id")))
            if plan is None:
                raise MalformedNotice(f"Variant {attributes.get('variant_id')!r} is not a configured plan.")
            return SubscriptionChanged(workspace_id=workspace_id, plan=plan)
        if event in SUBSCRIPTION_ENDED:
            return SubscriptionChanged(workspace_id=workspace_id, plan="free")
        return None
