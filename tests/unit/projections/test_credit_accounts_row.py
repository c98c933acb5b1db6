"""The credit accounts row: what `evolve` makes of an account's events, one at a time."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from functools import reduce
from typing import Any
from uuid import uuid4

import pytest

from domain.api_key import ApiKey
from domain.credit_account import Charge, CreditAccount, add_months
from domain.generation_job import GenerationJob
from domain.pricing import Pricing
from domain.workspace import Workspace
from projections.credit_accounts import AccountRow, evolve

NOW = datetime(2025, 3, 15, 9, 30, tzinfo=UTC)
PRICING = Pricing()


def fold(events: Any, row: AccountRow | None = None) -> AccountRow | None:
    return reduce(evolve, events, row)


def opened(plan: str = "pro", now: datetime = NOW) -> tuple[CreditAccount, AccountRow]:
    """An account and the row its events so far make."""
    account = CreditAccount.open(uuid4(), plan, now, PRICING)
    row = fold(account.collect_events())
    assert row is not None
    return account, row


def test_opened_event_when_evolved_from_nothing_then_row_starts_the_first_period() -> None:
    account = CreditAccount.open(uuid4(), "pro", NOW, PRICING)
    created, _granted = account.collect_events()

    row = evolve(None, created)

    assert row == AccountRow(
        workspace_id=account.workspace_id,
        plan="pro",
        next_plan=None,
        anchor=NOW,
        period_index=0,
        period_start=NOW,
        period_end=datetime(2025, 4, 15, 9, 30, tzinfo=UTC),
        allowance=0,
        topup=0,
        used_this_period=0,
        updated_at=created.timestamp,
    )


def test_opened_event_on_jan_31_when_evolved_then_period_ends_on_the_last_day_of_february() -> None:
    account = CreditAccount.open(uuid4(), "pro", datetime(2025, 1, 31, tzinfo=UTC), PRICING)
    created, _granted = account.collect_events()

    row = evolve(None, created)

    assert row is not None
    assert row.period_end == datetime(2025, 2, 28, tzinfo=UTC)


def test_opened_account_when_folded_then_row_holds_the_plans_allowance() -> None:
    _account, row = opened("business")

    assert (row.plan, row.allowance, row.topup) == ("business", 2500, 0)


def test_row_when_topped_up_then_topup_follows_the_event() -> None:
    account, row = opened()
    account.grant("topup", 150, reference="lemonsqueezy:order:1")
    (granted,) = account.collect_events()

    after = evolve(row, granted)

    assert after is not None
    assert (after.allowance, after.topup, after.updated_at) == (500, 150, granted.timestamp)


def test_row_when_debited_then_used_this_period_grows_and_balances_follow() -> None:
    account, row = opened()
    account.debit(uuid4(), 40, "video")
    (debited,) = account.collect_events()

    after = evolve(row, debited)

    assert after is not None
    assert (after.used_this_period, after.allowance, after.topup) == (40, 460, 0)


def test_debited_row_when_refunded_then_used_this_period_shrinks() -> None:
    account, row = opened()
    job_id = uuid4()
    charge = account.debit(job_id, 40, "video")
    debited_row = fold(account.collect_events(), row)
    account.refund(job_id, "video", charge.refund(30), "failed")
    (refunded,) = account.collect_events()

    after = evolve(debited_row, refunded)

    assert after is not None
    assert (after.used_this_period, after.allowance) == (10, 490)


def test_row_when_adjusted_then_balances_follow_and_usage_is_unchanged() -> None:
    account, row = opened()
    account.adjust(-20, reference="support:1", reason="correction")
    (adjusted,) = account.collect_events()

    after = evolve(row, adjusted)

    assert after is not None
    assert (after.allowance, after.topup, after.used_this_period) == (480, 0, 0)


def test_used_row_when_period_resets_then_it_moves_to_the_new_period_and_usage_starts_again() -> None:
    account, row = opened()
    account.debit(uuid4(), 40, "video")
    used = fold(account.collect_events(), row)
    account.renew(add_months(NOW, 1), PRICING)
    reset, _granted = account.collect_events()

    after = evolve(used, reset)

    assert after is not None
    assert (after.period_index, after.period_start, after.period_end) == (1, add_months(NOW, 1), add_months(NOW, 2))
    assert (after.used_this_period, after.allowance, after.updated_at) == (0, 0, reset.timestamp)


def test_row_when_period_resets_months_late_then_period_end_follows_the_anchor() -> None:
    account, row = opened(now=datetime(2025, 1, 31, tzinfo=UTC))
    account.renew(datetime(2025, 3, 31, tzinfo=UTC), PRICING)

    after = fold(account.collect_events(), row)

    assert after is not None
    assert (after.period_index, after.period_start, after.period_end) == (
        2,
        datetime(2025, 3, 31, tzinfo=UTC),
        datetime(2025, 4, 30, tzinfo=UTC),
    )


def test_row_when_upgraded_then_plan_changes_at_once() -> None:
    account, row = opened("pro")
    account.change_plan("business", NOW + timedelta(days=3), PRICING)
    changed, _granted = account.collect_events()

    after = evolve(row, changed)

    assert after is not None
    assert (after.plan, after.next_plan) == ("business", None)


def test_row_when_downgraded_then_next_plan_is_set_and_plan_is_kept() -> None:
    account, row = opened("business")
    account.change_plan("free", NOW + timedelta(days=3), PRICING)
    (changed,) = account.collect_events()

    after = evolve(row, changed)

    assert after is not None
    assert (after.plan, after.next_plan, after.allowance) == ("business", "free", 2500)


def test_downgraded_row_when_period_resets_then_next_plan_becomes_the_plan() -> None:
    account, row = opened("business")
    account.change_plan("free", NOW + timedelta(days=3), PRICING)
    account.renew(add_months(NOW, 1), PRICING)

    after = fold(account.collect_events(), row)

    assert after is not None
    assert (after.plan, after.next_plan, after.allowance) == ("free", None, 50)


@pytest.mark.parametrize("story", ["spend", "upgrade", "downgrade", "renew"])
def test_whole_life_when_folded_then_row_agrees_with_the_aggregate(story: str) -> None:
    account = CreditAccount.open(uuid4(), "pro", NOW, PRICING)
    job_id = uuid4()
    charge = account.debit(job_id, 43, "video")
    account.grant("topup", 150, reference="lemonsqueezy:order:1")
    account.refund(job_id, "video", charge.refund(3), "one video failed")
    if story == "upgrade":
        account.change_plan("business", NOW + timedelta(days=10), PRICING)
    elif story == "downgrade":
        account.change_plan("free", NOW + timedelta(days=10), PRICING)
    elif story == "renew":
        account.change_plan("free", NOW + timedelta(days=10), PRICING)
        account.renew(add_months(NOW, 2) + timedelta(days=1), PRICING)
        account.debit(uuid4(), 60, "video")

    row = fold(account.collect_events())

    assert row is not None
    assert (
        row.workspace_id,
        row.plan,
        row.next_plan,
        row.anchor,
        row.period_index,
        row.period_start,
        row.period_end,
        row.allowance,
        row.topup,
        row.used_this_period,
    ) == (
        account.workspace_id,
        account.plan,
        account.next_plan,
        account.anchor,
        account.period_index,
        account.period_start,
        account.period_end,
        account.allowance,
        account.topup,
        account.used_this_period,
    )


def test_row_when_evolved_with_other_aggregates_events_then_row_is_unchanged() -> None:
    account, row = opened()
    job = GenerationJob.request(uuid4(), account.workspace_id, "copy", {}, Charge(1, 1, 0), "fp", None, 3)
    job.start("worker-1", NOW, NOW + timedelta(minutes=2))
    key = ApiKey.issue(account.workspace_id, "pr_live_secret-secret-secret", "ci")
    key.revoke(revoked_by=uuid4())
    events = [
        *Workspace.open(account.workspace_id, "Acme").collect_events(),
        *job.collect_events(),
        *key.collect_events(),
    ]

    assert fold(events, row) == row


def test_nothing_when_evolved_with_another_aggregates_event_then_stays_nothing() -> None:
    assert fold(Workspace.open(uuid4(), "Acme").collect_events()) is None


def test_nothing_when_evolved_with_a_later_account_event_then_stays_nothing() -> None:
    account = CreditAccount.open(uuid4(), "pro", NOW, PRICING)
    _created, granted = account.collect_events()

    assert evolve(None, granted) is None
