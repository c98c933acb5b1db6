"""Helpers shared by the credit account tests."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import uuid4

from eventsourcing.application import project_aggregate

from domain.credit_account import CreditAccount
from domain.pricing import Pricing

START = datetime(2025, 3, 15, 9, 30, tzinfo=UTC)
PRICING = Pricing()
MICROSECOND = timedelta(microseconds=1)


def account_with(allowance: int = 0, topup: int = 0) -> CreditAccount:
    """A pro account opened at START holding exactly these balances, with nothing pending."""
    account = CreditAccount.open(uuid4(), "pro", START, Pricing(pro=allowance or 1))
    if not allowance:
        account.adjust(-1, reference="seed:empty", reason="start from nothing")
    if topup:
        account.grant("topup", topup, reference="topup:seed")
    account.collect_events()
    return account


def rebuilt(events: list[Any]) -> CreditAccount:
    replayed = project_aggregate(None, events)
    assert isinstance(replayed, CreditAccount)
    return replayed


def prorated(difference: int, period_start: datetime, period_end: datetime, now: datetime) -> int:
    """floor(difference x the part of the period left at `now`), in exact integer arithmetic."""
    whole = (period_end - period_start) // MICROSECOND
    left = min(max((period_end - now) // MICROSECOND, 0), whole)
    return difference * left // whole
