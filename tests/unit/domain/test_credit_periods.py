"""CreditAccount periods and plans: monthly periods from the anchor without drift, renewals that expire
the unused allowance, upgrades now with a pro-rated grant, downgrades at the next period."""

from __future__ import annotations

import calendar
from datetime import UTC, datetime, timedelta
from uuid import uuid4

import pytest
from hypothesis import given
from hypothesis import strategies as st

from domain.credit_account import CreditAccount, add_months
from domain.pricing import Pricing
from domain.workspace import UnknownPlan
from tests.unit.domain.credits import PRICING, START, prorated, rebuilt

# An anchor at the start of a 30-day period: April 2025.
APRIL = datetime(2025, 4, 1, tzinfo=UTC)


def opened(plan: str = "pro", now: datetime = START, pricing: Pricing = PRICING) -> CreditAccount:
    account = CreditAccount.open(uuid4(), plan, now, pricing)
    account.collect_events()
    return account


# add_months and period_end


@pytest.mark.parametrize(
    ("start", "end"),
    [
        (datetime(2025, 3, 15, 9, 30, tzinfo=UTC), datetime(2025, 4, 15, 9, 30, tzinfo=UTC)),
        (datetime(2023, 1, 31, tzinfo=UTC), datetime(2023, 2, 28, tzinfo=UTC)),
        (datetime(2024, 1, 31, tzinfo=UTC), datetime(2024, 2, 29, tzinfo=UTC)),
        (datetime(2025, 3, 31, tzinfo=UTC), datetime(2025, 4, 30, tzinfo=UTC)),
        (datetime(2025, 11, 30, tzinfo=UTC), datetime(2025, 12, 30, tzinfo=UTC)),
        (datetime(2024, 12, 31, 23, 59, tzinfo=UTC), datetime(2025, 1, 31, 23, 59, tzinfo=UTC)),
        (datetime(2024, 12, 1, tzinfo=UTC), datetime(2025, 1, 1, tzinfo=UTC)),
    ],
)
def test_period_start_when_asked_for_period_end_then_it_is_a_calendar_month_later(start: datetime, end: datetime) -> None:
    assert opened(now=start).period_end == end


def test_aware_period_start_when_asked_for_period_end_then_timezone_is_kept() -> None:
    assert opened(now=datetime(2025, 1, 31, tzinfo=UTC)).period_end.tzinfo is UTC


@given(st.datetimes(min_value=datetime(2000, 1, 1), max_value=datetime(2100, 1, 1), timezones=st.just(UTC)))
def test_any_period_start_when_asked_for_period_end_then_it_is_in_the_next_month(start: datetime) -> None:
    end = opened(now=start).period_end

    assert (end.year * 12 + end.month) - (start.year * 12 + start.month) == 1
    assert end.day <= start.day
    assert end.time() == start.time()


@pytest.mark.parametrize(
    ("months", "expected"),
    [
        (0, datetime(2024, 1, 31, tzinfo=UTC)),
        (1, datetime(2024, 2, 29, tzinfo=UTC)),
        (2, datetime(2024, 3, 31, tzinfo=UTC)),
        (3, datetime(2024, 4, 30, tzinfo=UTC)),
        (12, datetime(2025, 1, 31, tzinfo=UTC)),
        (13, datetime(2025, 2, 28, tzinfo=UTC)),
    ],
)
def test_month_end_anchor_when_months_are_added_then_day_is_the_anchors_or_the_months_last(months: int, expected: datetime) -> None:
    assert add_months(datetime(2024, 1, 31, tzinfo=UTC), months) == expected


@given(
    st.datetimes(min_value=datetime(2000, 1, 1), max_value=datetime(2090, 1, 1), timezones=st.just(UTC)),
    st.integers(0, 60),
)
def test_any_anchor_when_months_are_added_then_they_count_from_the_anchor_not_the_last_period(anchor: datetime, months: int) -> None:
    moved = add_months(anchor, months)

    assert (moved.year * 12 + moved.month) - (anchor.year * 12 + anchor.month) == months
    assert moved.day == min(anchor.day, calendar.monthrange(moved.year, moved.month)[1])
    assert moved.time() == anchor.time()
    assert moved.tzinfo is anchor.tzinfo


# Renewal


def test_period_not_over_when_renewed_then_returns_false() -> None:
    account = opened()

    assert account.renew(START + timedelta(days=10), PRICING) is False


def test_period_not_over_when_renewed_then_records_nothing() -> None:
    account = opened()

    account.renew(account.period_end - timedelta(microseconds=1), PRICING)

    assert (account.collect_events(), account.period_index, account.balance) == ([], 0, 500)


def test_period_end_reached_exactly_when_renewed_then_returns_true() -> None:
    account = opened()

    assert account.renew(account.period_end, PRICING) is True


def test_period_over_when_renewed_then_unused_allowance_expires_in_a_period_reset() -> None:
    account = opened()
    account.debit(uuid4(), 120, "video")
    account.collect_events()

    account.renew(add_months(START, 1), PRICING)

    reset, _granted = account.collect_events()
    assert isinstance(reset, CreditAccount.PeriodReset)
    assert (reset.expired, reset.period_index, reset.period_start, reset.plan) == (380, 1, add_months(START, 1), "pro")
    assert (reset.allowance_after, reset.topup_after) == (0, 0)


def test_period_over_when_renewed_then_plan_allowance_is_granted_for_the_new_period() -> None:
    account = opened()
    account.debit(uuid4(), 120, "video")
    account.collect_events()

    account.renew(add_months(START, 1), PRICING)

    _reset, granted = account.collect_events()
    assert isinstance(granted, CreditAccount.Granted)
    assert (granted.kind, granted.amount, granted.reference) == ("grant", 500, "allowance:1")
    assert account.allowance == 500


def test_period_over_when_renewed_then_used_this_period_starts_again() -> None:
    account = opened()
    account.debit(uuid4(), 120, "video")

    account.renew(add_months(START, 1), PRICING)

    assert account.used_this_period == 0


def test_period_over_when_renewed_then_topup_is_untouched() -> None:
    account = opened()
    account.grant("topup", 150, reference="lemonsqueezy:order:1")
    account.debit(uuid4(), 520, "video")  # all the allowance and 20 top-up credits

    account.renew(add_months(START, 1), PRICING)

    assert (account.allowance, account.topup) == (500, 130)


def test_period_over_when_renewed_then_period_moves_on_by_a_month() -> None:
    account = opened()

    account.renew(add_months(START, 1) + timedelta(hours=3), PRICING)

    assert (account.period_index, account.period_start, account.period_end) == (1, add_months(START, 1), add_months(START, 2))


def test_renewed_period_when_renewed_again_at_the_same_time_then_returns_false_and_records_nothing() -> None:
    account = opened()
    account.renew(add_months(START, 1), PRICING)
    account.collect_events()

    assert account.renew(add_months(START, 1), PRICING) is False
    assert account.collect_events() == []


def test_several_months_missed_when_renewed_then_one_reset_jumps_to_the_current_period() -> None:
    account = opened()

    renewed = account.renew(add_months(START, 3) + timedelta(days=2), PRICING)

    reset, granted = account.collect_events()
    assert renewed is True
    assert isinstance(reset, CreditAccount.PeriodReset)
    assert (reset.period_index, reset.period_start, reset.expired) == (3, add_months(START, 3), 500)
    assert (granted.reference, account.balance) == ("allowance:3", 500)
    assert account.period_end == add_months(START, 4)


def test_several_months_missed_when_renewed_then_no_allowance_is_granted_for_the_missed_periods() -> None:
    account = opened()

    account.renew(add_months(START, 3), PRICING)

    assert account.references == {"allowance:0", "allowance:3"}


def test_jan_31_anchor_when_renewed_in_a_leap_year_then_periods_start_feb_29_then_mar_31() -> None:
    account = opened(now=datetime(2024, 1, 31, 8, 0, tzinfo=UTC))

    account.renew(datetime(2024, 2, 29, 8, 0, tzinfo=UTC), PRICING)
    february = (account.period_start, account.period_end)
    account.renew(datetime(2024, 3, 31, 8, 0, tzinfo=UTC), PRICING)

    assert february == (datetime(2024, 2, 29, 8, 0, tzinfo=UTC), datetime(2024, 3, 31, 8, 0, tzinfo=UTC))
    assert (account.period_start, account.period_end) == (datetime(2024, 3, 31, 8, 0, tzinfo=UTC), datetime(2024, 4, 30, 8, 0, tzinfo=UTC))


def test_jan_31_anchor_when_renewed_then_periods_start_feb_28_then_mar_31_without_drift() -> None:
    account = opened(now=datetime(2025, 1, 31, tzinfo=UTC))

    account.renew(datetime(2025, 2, 28, tzinfo=UTC), PRICING)
    february = (account.period_start, account.period_end)
    account.renew(datetime(2025, 3, 31, tzinfo=UTC), PRICING)

    assert february == (datetime(2025, 2, 28, tzinfo=UTC), datetime(2025, 3, 31, tzinfo=UTC))
    assert (account.period_index, account.period_start) == (2, datetime(2025, 3, 31, tzinfo=UTC))


def test_jan_31_anchor_when_renewed_on_mar_28_then_february_period_is_still_running() -> None:
    account = opened(now=datetime(2025, 1, 31, tzinfo=UTC))
    account.renew(datetime(2025, 2, 28, tzinfo=UTC), PRICING)
    account.collect_events()

    assert account.renew(datetime(2025, 3, 28, tzinfo=UTC), PRICING) is False


def test_renewed_account_when_replayed_then_gives_the_same_account() -> None:
    account = CreditAccount.open(uuid4(), "pro", START, PRICING)
    account.renew(add_months(START, 1), PRICING)
    account.renew(add_months(START, 4), PRICING)

    assert rebuilt(list(account.collect_events())) == account


def test_job_charged_last_period_when_refunded_after_renewal_then_used_this_period_is_not_negative() -> None:
    account = opened()
    job_id = uuid4()
    charge = account.debit(job_id, 40, "video")
    account.renew(add_months(START, 1), PRICING)

    account.refund(job_id, "video", charge.refund(40), "failed")

    assert account.used_this_period >= 0


# Plan changes: upgrades


def test_pro_account_when_upgraded_mid_period_then_plan_changes_at_once() -> None:
    account = opened("pro", APRIL)

    account.change_plan("business", APRIL + timedelta(days=15), PRICING)

    assert (account.plan, account.next_plan) == ("business", None)


def test_pro_account_when_upgraded_half_way_then_half_the_extra_monthly_credits_are_granted() -> None:
    account = opened("pro", APRIL)
    now = APRIL + timedelta(days=15)

    account.change_plan("business", now, PRICING)

    changed, granted = account.collect_events()
    assert isinstance(changed, CreditAccount.PlanChanged)
    assert (changed.plan, changed.immediate, changed.effective_at) == ("business", True, now)
    assert isinstance(granted, CreditAccount.Granted)
    assert (granted.kind, granted.amount, granted.reference) == ("grant", 1000, "upgrade:0:business")
    assert account.allowance == 1500


def test_free_account_when_upgraded_a_day_in_then_grant_is_rounded_down() -> None:
    account = opened("free", APRIL)

    account.change_plan("business", APRIL + timedelta(days=1), PRICING)

    # 2450 x 29/30 = 2368.33…
    assert account.allowance == 50 + 2368


def test_free_account_when_upgraded_at_a_whole_hour_then_grant_is_the_exact_floor() -> None:
    account = opened("free", APRIL)
    now = datetime(2025, 4, 15, 16, 0, tzinfo=UTC)  # 368 of the period's 720 hours left

    account.change_plan("pro", now, PRICING)

    # 450 x 368/720 is exactly 230.
    assert account.allowance - 50 == prorated(450, APRIL, account.period_end, now) == 230


def test_account_when_upgraded_at_the_period_start_then_all_extra_credits_are_granted() -> None:
    account = opened("pro", APRIL)

    account.change_plan("business", APRIL, PRICING)

    assert account.allowance == 2500


def test_account_when_upgraded_in_a_later_period_then_grant_reference_names_that_period() -> None:
    account = opened("free", APRIL)
    account.renew(add_months(APRIL, 2), PRICING)
    account.collect_events()

    account.change_plan("pro", add_months(APRIL, 2) + timedelta(days=3), PRICING)

    _changed, granted = account.collect_events()
    assert granted.reference == "upgrade:2:pro"


def test_upgraded_account_when_renewed_then_new_plans_allowance_is_granted() -> None:
    account = opened("pro", APRIL)
    account.change_plan("business", APRIL + timedelta(days=15), PRICING)

    account.renew(add_months(APRIL, 1), PRICING)

    assert (account.plan, account.allowance) == ("business", 2500)


def test_upgraded_account_when_used_this_period_then_upgrade_grant_is_not_usage() -> None:
    account = opened("pro", APRIL)
    account.debit(uuid4(), 40, "video")

    account.change_plan("business", APRIL + timedelta(days=15), PRICING)

    assert account.used_this_period == 40


# Plan changes: downgrades


def test_business_account_when_downgraded_then_plan_is_unchanged_and_next_plan_is_set() -> None:
    account = opened("business", APRIL)

    account.change_plan("pro", APRIL + timedelta(days=3), PRICING)

    assert (account.plan, account.next_plan, account.allowance) == ("business", "pro", 2500)


def test_business_account_when_downgraded_then_change_takes_effect_at_the_period_end_without_a_grant() -> None:
    account = opened("business", APRIL)

    account.change_plan("pro", APRIL + timedelta(days=3), PRICING)

    (changed,) = account.collect_events()
    assert isinstance(changed, CreditAccount.PlanChanged)
    assert (changed.plan, changed.immediate, changed.effective_at) == ("pro", False, add_months(APRIL, 1))


def test_downgraded_account_when_renewed_then_next_plan_applies_with_its_allowance() -> None:
    account = opened("business", APRIL)
    account.change_plan("free", APRIL + timedelta(days=3), PRICING)
    account.collect_events()

    account.renew(add_months(APRIL, 1), PRICING)

    reset, granted = account.collect_events()
    assert (reset.plan, reset.expired, granted.amount) == ("free", 2500, 50)
    assert (account.plan, account.next_plan, account.allowance) == ("free", None, 50)


def test_downgraded_account_when_downgraded_again_then_the_later_choice_applies_at_renewal() -> None:
    account = opened("business", APRIL)
    account.change_plan("pro", APRIL + timedelta(days=3), PRICING)
    account.change_plan("free", APRIL + timedelta(days=4), PRICING)

    account.renew(add_months(APRIL, 1), PRICING)

    assert (account.plan, account.allowance) == ("free", 50)


def test_scheduled_downgrade_when_current_plan_is_chosen_again_then_plan_stays_after_renewal() -> None:
    account = opened("pro", APRIL)
    account.change_plan("free", APRIL + timedelta(days=3), PRICING)
    account.change_plan("pro", APRIL + timedelta(days=4), PRICING)

    account.renew(add_months(APRIL, 1), PRICING)

    assert (account.plan, account.allowance) == ("pro", 500)


def test_scheduled_downgrade_when_upgraded_then_upgrade_applies_now_and_downgrade_is_dropped() -> None:
    account = opened("pro", APRIL)
    account.change_plan("free", APRIL + timedelta(days=3), PRICING)

    account.change_plan("business", APRIL + timedelta(days=15), PRICING)

    assert (account.plan, account.next_plan, account.allowance) == ("business", None, 1500)


# Plan changes: nothing to change, unknown plans


def test_account_when_changed_to_its_own_plan_then_records_nothing() -> None:
    account = opened("pro", APRIL)

    account.change_plan("pro", APRIL + timedelta(days=3), PRICING)

    assert (account.collect_events(), account.plan, account.next_plan) == ([], "pro", None)


def test_scheduled_downgrade_when_chosen_again_then_records_nothing() -> None:
    account = opened("business", APRIL)
    account.change_plan("pro", APRIL + timedelta(days=3), PRICING)
    account.collect_events()

    account.change_plan("pro", APRIL + timedelta(days=4), PRICING)

    assert account.collect_events() == []


def test_account_when_changed_to_an_unknown_plan_then_raises_unknown_plan_and_records_nothing() -> None:
    account = opened("pro", APRIL)

    with pytest.raises(UnknownPlan):
        account.change_plan("platinum", APRIL + timedelta(days=3), PRICING)
    assert (account.collect_events(), account.plan) == ([], "pro")


def test_plan_changes_when_replayed_then_give_the_same_account() -> None:
    account = CreditAccount.open(uuid4(), "free", APRIL, PRICING)
    account.change_plan("business", APRIL + timedelta(days=2), PRICING)
    account.change_plan("pro", APRIL + timedelta(days=9), PRICING)
    account.renew(add_months(APRIL, 1), PRICING)

    assert rebuilt(list(account.collect_events())) == account
