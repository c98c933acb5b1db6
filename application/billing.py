"""What a payment provider tells us, in our words: the application acts on these, whoever sent them."""

from __future__ import annotations

from uuid import UUID

import msgspec


class CreditPackPurchased(msgspec.Struct, frozen=True):
    workspace_id: UUID
    order_reference: str
    credits: int
    description: str


class SubscriptionChanged(msgspec.Struct, frozen=True):
    workspace_id: UUID
    plan: str


PaymentNotice = CreditPackPurchased | SubscriptionChanged
