"""CreditAccount: opens with its plan's allowance, grants once per reference, debits allowance first,
refunds what a job's Charge says is left, and adjusts without ever going below zero."""

from __future__ import annotations

import contextlib
from datetime import datetime, timedelta
from typing import Any
from uuid import UUID, uuid4

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.stateful import Bundle, RuleBasedStateMachine, invariant, multiple, precondition, rule, run_state_machine_as_test

from domain.credit_account import Charge, CreditAccount, Refund, add_months
from domain.errors import InsufficientCredits, InvalidAmount
from domain.pricing import Pricing
from domain.workspace import PLANS, UnknownPlan
from tests.unit.domain.credits import PRICING, START, account_with, prorated, rebuilt

# Opening


def test_new_account_when_opened_then_id_follows_from_workspace() -> None:
    workspace_id = uuid4()

    opened = CreditAccount.open(workspace_id, "free", START, PRICING)

    assert opened.id == CreditAccount.id_for(workspace_id)


@pytest.mark.parametrize("plan", PLANS)
def test_new_account_when_opened_then_balance_is_the_plans_allowance(plan: str) -> None:
    opened = CreditAccount.open(uuid4(), plan, START, PRICING)

    assert (opened.allowance, opened.topup, opened.balance) == (PRICING.monthly_credits(plan), 0, PRICING.monthly_credits(plan))


def test_new_account_when_opened_then_allowance_is_granted_with_reference_allowance_0() -> None:
    opened = CreditAccount.open(uuid4(), "pro", START, PRICING)

    created, granted = opened.collect_events()

    assert isinstance(created, CreditAccount.Opened)
    assert isinstance(granted, CreditAccount.Granted)
    assert (granted.kind, granted.amount, granted.reference) == ("grant", 500, "allowance:0")
    assert opened.references == {"allowance:0"}


def test_new_account_when_opened_then_first_period_starts_now() -> None:
    opened = CreditAccount.open(uuid4(), "pro", START, PRICING)

    assert (opened.plan, opened.next_plan, opened.period_index, opened.period_start, opened.anchor) == ("pro", None, 0, START, START)


def test_new_account_when_opened_then_nothing_is_used_this_period() -> None:
    assert CreditAccount.open(uuid4(), "pro", START, PRICING).used_this_period == 0


def test_unknown_plan_when_opened_then_raises_unknown_plan() -> None:
    with pytest.raises(UnknownPlan):
        CreditAccount.open(uuid4(), "platinum", START, PRICING)


def test_plan_without_monthly_credits_when_opened_then_account_opens_with_zero_balance() -> None:
    # PRESSROOM_PLAN_FREE_CREDITS=0 is a valid setting: a free plan without credits.
    opened = CreditAccount.open(uuid4(), "free", START, Pricing(free=0))

    assert opened.balance == 0


# Grants


def test_account_when_granted_then_allowance_grows() -> None:
    account = account_with()

    account.grant("grant", 50, reference="allowance:march")

    assert (account.allowance, account.topup, account.balance) == (50, 0, 50)


def test_account_when_topped_up_then_topup_grows() -> None:
    account = account_with()

    account.grant("topup", 20, reference="stripe:pi_1")

    assert (account.allowance, account.topup, account.balance) == (0, 20, 20)


def test_granted_reference_when_granted_again_then_returns_false() -> None:
    account = account_with()
    account.grant("topup", 20, reference="stripe:pi_1")

    assert account.grant("topup", 20, reference="stripe:pi_1") is False


def test_granted_reference_when_granted_again_then_records_nothing() -> None:
    account = account_with()
    account.grant("topup", 20, reference="stripe:pi_1")
    account.collect_events()

    account.grant("topup", 20, reference="stripe:pi_1")

    assert (account.collect_events(), account.balance) == ([], 20)


def test_granted_reference_when_granted_as_other_kind_then_records_nothing() -> None:
    account = account_with()
    account.grant("topup", 20, reference="shared")
    account.collect_events()

    assert account.grant("grant", 20, reference="shared") is False
    assert account.collect_events() == []


def test_opening_allowance_reference_when_granted_again_then_returns_false() -> None:
    account = CreditAccount.open(uuid4(), "pro", START, PRICING)

    assert account.grant("grant", 500, reference="allowance:0") is False


@pytest.mark.parametrize("amount", [0, -5])
def test_account_when_granted_non_positive_amount_then_raises_invalid_amount(amount: int) -> None:
    account = account_with()

    with pytest.raises(InvalidAmount):
        account.grant("grant", amount, reference="r")
    assert account.collect_events() == []


# Debits


def test_allowance_and_topup_when_debited_less_than_allowance_then_only_allowance_is_used() -> None:
    account = account_with(allowance=10, topup=5)

    account.debit(uuid4(), 4, "image")

    assert (account.allowance, account.topup) == (6, 5)


def test_allowance_and_topup_when_debited_more_than_allowance_then_topup_pays_the_rest() -> None:
    account = account_with(allowance=10, topup=5)

    account.debit(uuid4(), 12, "image")

    assert (account.allowance, account.topup) == (0, 3)


def test_allowance_and_topup_when_debited_then_returned_charge_records_the_split() -> None:
    account = account_with(allowance=10, topup=5)

    charge = account.debit(uuid4(), 12, "image")

    assert charge == Charge(amount=12, from_allowance=10, from_topup=2, refunded_allowance=0, refunded_topup=0)


def test_allowance_and_topup_when_debited_then_event_records_the_split() -> None:
    account = account_with(allowance=10, topup=5)
    job_id = uuid4()

    account.debit(job_id, 12, "image")

    (debited,) = account.collect_events()
    assert isinstance(debited, CreditAccount.Debited)
    assert (debited.job_id, debited.job_type, debited.amount, debited.from_allowance, debited.from_topup) == (job_id, "image", 12, 10, 2)


def test_balance_when_debited_exactly_then_balance_is_zero() -> None:
    account = account_with(allowance=3, topup=2)

    account.debit(uuid4(), 5, "copy")

    assert account.balance == 0


def test_low_balance_when_debited_beyond_it_then_raises_with_required_and_available() -> None:
    account = account_with(allowance=3, topup=2)

    with pytest.raises(InsufficientCredits) as raised:
        account.debit(uuid4(), 40, "video")

    assert (raised.value.required, raised.value.available) == (40, 5)
    assert raised.value.extra() == {"required": 40, "available": 5}


def test_low_balance_when_debited_beyond_it_then_records_nothing() -> None:
    account = account_with(allowance=3, topup=2)

    with pytest.raises(InsufficientCredits):
        account.debit(uuid4(), 40, "video")

    assert account.collect_events() == []
    assert (account.allowance, account.topup, account.used_this_period) == (3, 2, 0)


@pytest.mark.parametrize("amount", [0, -1])
def test_account_when_debited_non_positive_amount_then_raises_invalid_amount(amount: int) -> None:
    account = account_with(allowance=10)

    with pytest.raises(InvalidAmount):
        account.debit(uuid4(), amount, "copy")
    assert account.collect_events() == []


# Refunds


def test_debited_job_when_refunded_in_full_then_balance_is_restored() -> None:
    account = account_with(allowance=10)
    job_id = uuid4()
    charge = account.debit(job_id, 4, "image")

    refunded = account.refund(job_id, "image", charge.refund(4), "provider_error")

    assert (refunded, account.balance) == (4, 10)


def test_job_paid_from_both_balances_when_partly_refunded_then_topup_is_given_back_first() -> None:
    account = account_with(allowance=5, topup=10)
    job_id = uuid4()
    charge = account.debit(job_id, 8, "image")  # 5 from the allowance, 3 from top-ups

    account.refund(job_id, "image", charge.refund(4), "failed")

    assert (account.allowance, account.topup) == (1, 10)


def test_job_paid_from_both_balances_when_refunded_twice_then_second_refund_goes_to_allowance() -> None:
    account = account_with(allowance=5, topup=10)
    job_id = uuid4()
    charge = account.debit(job_id, 8, "image")
    first = charge.refund(3)
    account.refund(job_id, "image", first, "failed")

    account.refund(job_id, "image", charge.after(first).refund(2), "failed")

    assert (account.allowance, account.topup) == (2, 10)


def test_job_paid_from_allowance_when_refunded_then_nothing_goes_to_topup() -> None:
    account = account_with(allowance=10, topup=10)
    job_id = uuid4()
    charge = account.debit(job_id, 4, "image")

    account.refund(job_id, "image", charge.refund(4), "failed")

    assert (account.allowance, account.topup) == (10, 10)


def test_job_paid_from_both_balances_when_refunded_then_event_records_the_split() -> None:
    account = account_with(allowance=5, topup=10)
    job_id = uuid4()
    charge = account.debit(job_id, 8, "image")
    account.collect_events()

    account.refund(job_id, "image", charge.refund(8), "failed")

    (refunded,) = account.collect_events()
    assert isinstance(refunded, CreditAccount.Refunded)
    assert (refunded.job_id, refunded.job_type, refunded.reason) == (job_id, "image", "failed")
    assert (refunded.amount, refunded.to_topup, refunded.to_allowance) == (8, 3, 5)


def test_fully_refunded_charge_when_refunded_again_then_gives_nothing_and_records_nothing() -> None:
    account = account_with(allowance=10)
    job_id = uuid4()
    charge = account.debit(job_id, 6, "image")
    account.refund(job_id, "image", charge.refund(6), "failed")
    charge = charge.after(charge.refund(6))
    account.collect_events()

    refunded = account.refund(job_id, "image", charge.refund(6), "failed")

    assert (refunded, account.collect_events(), account.balance) == (0, [], 10)


def test_account_when_refunded_an_empty_refund_then_gives_nothing_and_records_nothing() -> None:
    account = account_with(allowance=10)

    refunded = account.refund(uuid4(), "image", Refund(0, 0), "failed")

    assert (refunded, account.collect_events(), account.balance) == (0, [], 10)


@pytest.mark.parametrize("refund", [Refund(-1, 0), Refund(0, -1), Refund(5, -2)])
def test_account_when_refunded_a_negative_part_then_raises_invalid_amount_and_records_nothing(refund: Refund) -> None:
    account = account_with(allowance=10)

    with pytest.raises(InvalidAmount):
        account.refund(uuid4(), "image", refund, "failed")
    assert (account.collect_events(), account.balance) == ([], 10)


# Adjustments


def test_account_when_adjusted_upwards_then_topup_grows_and_allowance_is_unchanged() -> None:
    account = account_with(allowance=10, topup=5)

    added = account.adjust(20, reference="support:ticket-1", reason="goodwill")

    assert (added, account.allowance, account.topup) == (True, 10, 25)


def test_account_when_adjusted_downwards_within_allowance_then_only_allowance_shrinks() -> None:
    account = account_with(allowance=10, topup=5)

    account.adjust(-4, reference="support:ticket-2", reason="double grant")

    assert (account.allowance, account.topup) == (6, 5)


def test_account_when_adjusted_downwards_beyond_allowance_then_topup_pays_the_rest() -> None:
    account = account_with(allowance=10, topup=5)

    account.adjust(-12, reference="support:ticket-3", reason="chargeback")

    assert (account.allowance, account.topup) == (0, 3)


def test_account_when_adjusted_down_by_its_whole_balance_then_balance_is_zero() -> None:
    account = account_with(allowance=10, topup=5)

    account.adjust(-15, reference="support:ticket-4", reason="chargeback")

    assert (account.allowance, account.topup, account.balance) == (0, 0, 0)


def test_account_when_adjusted_then_event_records_amount_reference_and_balances_after() -> None:
    account = account_with(allowance=10, topup=5)

    account.adjust(-12, reference="support:ticket-3", reason="chargeback")

    (adjusted,) = account.collect_events()
    assert isinstance(adjusted, CreditAccount.Adjusted)
    assert (adjusted.amount, adjusted.reference, adjusted.reason) == (-12, "support:ticket-3", "chargeback")
    assert (adjusted.allowance_after, adjusted.topup_after) == (0, 3)


def test_account_when_adjusted_down_beyond_its_balance_then_raises_with_required_and_available() -> None:
    account = account_with(allowance=10, topup=5)

    with pytest.raises(InsufficientCredits) as raised:
        account.adjust(-16, reference="support:ticket-5", reason="chargeback")

    assert (raised.value.required, raised.value.available) == (16, 15)


def test_account_when_adjusted_down_beyond_its_balance_then_records_nothing() -> None:
    account = account_with(allowance=10, topup=5)

    with contextlib.suppress(InsufficientCredits):
        account.adjust(-16, reference="support:ticket-5", reason="chargeback")

    assert (account.collect_events(), account.allowance, account.topup) == ([], 10, 5)
    assert "support:ticket-5" not in account.references


def test_adjusted_reference_when_adjusted_again_then_returns_false_and_records_nothing() -> None:
    account = account_with(allowance=10)
    account.adjust(5, reference="support:ticket-6", reason="goodwill")
    account.collect_events()

    added = account.adjust(5, reference="support:ticket-6", reason="goodwill")

    assert (added, account.collect_events(), account.balance) == (False, [], 15)


def test_granted_reference_when_adjusted_with_it_then_returns_false() -> None:
    account = account_with(allowance=10)
    account.grant("topup", 5, reference="stripe:pi_1")

    assert account.adjust(-5, reference="stripe:pi_1", reason="refunded payment") is False
    assert account.balance == 15


def test_account_when_adjusted_by_zero_then_raises_invalid_amount_and_records_nothing() -> None:
    account = account_with(allowance=10)

    with pytest.raises(InvalidAmount):
        account.adjust(0, reference="support:ticket-7", reason="nothing")
    assert account.collect_events() == []


def test_account_when_adjusted_then_used_this_period_is_unchanged() -> None:
    account = account_with(allowance=10, topup=5)
    account.debit(uuid4(), 3, "image")

    account.adjust(-4, reference="support:ticket-8", reason="correction")
    account.adjust(9, reference="support:ticket-9", reason="correction")

    assert account.used_this_period == 3


# Usage this period


def test_debits_when_made_then_used_this_period_adds_them_up() -> None:
    account = account_with(allowance=10, topup=10)

    account.debit(uuid4(), 3, "image")
    account.debit(uuid4(), 12, "image")

    assert account.used_this_period == 15


def test_debit_when_partly_refunded_then_used_this_period_counts_only_the_rest() -> None:
    account = account_with(allowance=10)
    job_id = uuid4()
    charge = account.debit(job_id, 6, "image")

    account.refund(job_id, "image", charge.refund(4), "failed")

    assert account.used_this_period == 2


def test_grants_when_made_then_used_this_period_is_unchanged() -> None:
    account = account_with(allowance=10)
    account.debit(uuid4(), 3, "image")

    account.grant("topup", 100, reference="stripe:pi_2")

    assert account.used_this_period == 3


# Replay


def test_account_history_when_replayed_then_gives_the_same_account() -> None:
    account = CreditAccount.open(uuid4(), "pro", START, PRICING)
    job_id = uuid4()
    account.grant("topup", 5, reference="stripe:pi_1")
    charge = account.debit(job_id, 12, "image")
    account.refund(job_id, "image", charge.refund(4), "failed")
    account.adjust(-3, reference="support:1", reason="correction")
    account.change_plan("free", START + timedelta(days=3), PRICING)
    account.renew(add_months(START, 2), PRICING)
    account.change_plan("business", add_months(START, 2) + timedelta(days=10), PRICING)

    replayed = rebuilt(list(account.collect_events()))

    assert replayed == account


# Properties over random command sequences

REFERENCES = [f"ref:{n}" for n in range(4)]

commands = st.lists(
    st.one_of(
        st.tuples(st.just("grant"), st.sampled_from(["grant", "topup"]), st.integers(-5, 60), st.sampled_from(REFERENCES)),
        st.tuples(st.just("debit"), st.integers(0, 4), st.integers(-5, 60)),
        st.tuples(st.just("refund"), st.integers(0, 4), st.integers(-5, 60)),
        st.tuples(st.just("adjust"), st.integers(-80, 80), st.sampled_from(REFERENCES)),
        st.tuples(st.just("renew"), st.integers(0, 24 * 70)),
        st.tuples(st.just("change_plan"), st.sampled_from(PLANS), st.integers(0, 24 * 10)),
    ),
    max_size=30,
)


@settings(max_examples=200)
@given(commands)
def test_any_command_sequence_when_its_events_are_replayed_then_gives_the_same_account(sequence: list[tuple[Any, ...]]) -> None:
    account = CreditAccount.open(uuid4(), "pro", START, PRICING)
    jobs = [uuid4() for _ in range(5)]
    charges: dict[UUID, Charge] = {}
    now = START
    for command in sequence:
        # A refusal is an expected outcome here, not a failure.
        with contextlib.suppress(InvalidAmount, InsufficientCredits):
            match command:
                case ("grant", kind, amount, reference):
                    account.grant(kind, amount, reference)
                case ("debit", job, amount):
                    charges[jobs[job]] = account.debit(jobs[job], amount, "image")
                case ("refund", job, amount) if jobs[job] in charges:
                    refund = charges[jobs[job]].refund(amount)
                    account.refund(jobs[job], "image", refund, "failed")
                    charges[jobs[job]] = charges[jobs[job]].after(refund)
                case ("adjust", amount, reference):
                    account.adjust(amount, reference, "correction")
                case ("renew", hours):
                    now += timedelta(hours=hours)
                    account.renew(now, PRICING)
                case ("change_plan", plan, hours):
                    now += timedelta(hours=hours)
                    account.change_plan(plan, now, PRICING)

    replayed = rebuilt(list(account.collect_events()))

    assert replayed == account


def signed_movement(event: object) -> int:
    """What one event adds to (or takes from) the balance, read as a ledger line."""
    match event:
        case CreditAccount.Granted() | CreditAccount.Adjusted():
            return event.amount
        case CreditAccount.Debited():
            return -event.amount
        case CreditAccount.Refunded():
            return event.amount
        case CreditAccount.PeriodReset():
            return -event.expired
    return 0


def current_period_index(now: datetime) -> int:
    index = 0
    while add_months(START, index + 1) <= now:
        index += 1
    return index


class CreditAccountMachine(RuleBasedStateMachine):
    """Drives one account with valid and invalid commands, against a plain model of its balances.

    The model keeps the allowance and top-ups apart, and what came in and went out by kind; each
    job's Charge is kept here, as a job would keep it.
    """

    jobs = Bundle("jobs")

    def __init__(self) -> None:
        super().__init__()
        self.account = CreditAccount.open(uuid4(), "pro", START, PRICING)
        self.history = list(self.account.collect_events())
        self.now = START
        self.charges: dict[UUID, Charge] = {}
        self.references = {"allowance:0"}
        self.plan, self.next_plan, self.period_index = "pro", None, 0
        self.allowance, self.topup = PRICING.pro, 0
        self.granted = PRICING.pro
        self.topped_up = 0
        self.added = 0
        self.removed = 0
        self.debited = 0
        self.refunded = 0
        self.expired = 0

    def _collect(self) -> list[Any]:
        events = list(self.account.collect_events())
        self.history += events
        return events

    # Grants

    @rule(kind=st.sampled_from(["grant", "topup"]), amount=st.integers(1, 60), reference=st.sampled_from(REFERENCES))
    def grant(self, kind: str, amount: int, reference: str) -> None:
        added = self.account.grant(kind, amount, reference)  # type: ignore[arg-type]
        events = self._collect()
        assert added is (reference not in self.references)
        assert len(events) == int(added)
        if added:
            self.references.add(reference)
            if kind == "grant":
                self.allowance += amount
                self.granted += amount
            else:
                self.topup += amount
                self.topped_up += amount

    @rule(kind=st.sampled_from(["grant", "topup"]), amount=st.integers(-5, 0), reference=st.text(max_size=5))
    def grant_nothing(self, kind: str, amount: int, reference: str) -> None:
        with pytest.raises(InvalidAmount):
            self.account.grant(kind, amount, reference)  # type: ignore[arg-type]
        assert self._collect() == []

    # Debits and refunds

    @rule(target=jobs, amount=st.integers(1, 60))
    def debit(self, amount: int) -> Any:
        job_id = uuid4()
        balance = self.account.balance
        if amount > balance:
            with pytest.raises(InsufficientCredits) as raised:
                self.account.debit(job_id, amount, "image")
            assert (raised.value.required, raised.value.available) == (amount, balance)
            assert self._collect() == []
            return multiple()
        charge = self.account.debit(job_id, amount, "image")
        assert len(self._collect()) == 1
        from_allowance = min(amount, self.allowance)
        assert charge == Charge(amount, from_allowance, amount - from_allowance, period=self.account.period_index)
        self.allowance -= from_allowance
        self.topup -= amount - from_allowance
        self.debited += amount
        self.charges[job_id] = charge
        return job_id

    @precondition(lambda self: self.account.balance > 0)
    @rule(target=jobs, data=st.data())
    def debit_at_most_balance(self, data: st.DataObject) -> Any:
        return self.debit(data.draw(st.integers(1, self.account.balance)))

    @rule(job_id=jobs, amount=st.integers(-5, 60))
    def refund(self, job_id: UUID, amount: int) -> None:
        charge = self.charges[job_id]
        expected = max(0, min(amount, charge.refundable))
        refund = charge.refund(amount)

        refunded = self.account.refund(job_id, "image", refund, "failed")

        assert refunded == refund.amount == expected
        assert len(self._collect()) == int(expected > 0)
        self.charges[job_id] = charge.after(refund)
        self.allowance += refund.to_allowance
        self.topup += refund.to_topup
        self.refunded += refunded

    # Adjustments

    @rule(amount=st.integers(-80, 80).filter(bool), reference=st.sampled_from([*REFERENCES, "adj:0", "adj:1", "adj:2"]))
    def adjust(self, amount: int, reference: str) -> None:
        balance = self.account.balance
        if reference in self.references:
            assert self.account.adjust(amount, reference, "correction") is False
            assert self._collect() == []
            return
        if -amount > balance:
            with pytest.raises(InsufficientCredits) as raised:
                self.account.adjust(amount, reference, "correction")
            assert (raised.value.required, raised.value.available) == (-amount, balance)
            assert self._collect() == []
            return
        assert self.account.adjust(amount, reference, "correction") is True
        assert len(self._collect()) == 1
        self.references.add(reference)
        if amount > 0:
            self.topup += amount
            self.added += amount
        else:
            from_allowance = min(-amount, self.allowance)
            self.allowance -= from_allowance
            self.topup -= -amount - from_allowance
            self.removed += -amount

    @rule(reference=st.text(max_size=5))
    def adjust_by_nothing(self, reference: str) -> None:
        with pytest.raises(InvalidAmount):
            self.account.adjust(0, reference, "nothing")
        assert self._collect() == []

    # Periods and plans

    @rule(hours=st.integers(0, 24 * 70))
    def renew(self, hours: int) -> None:
        self.now += timedelta(hours=hours)
        due = self.now >= add_months(START, self.period_index + 1)

        renewed = self.account.renew(self.now, PRICING)

        events = self._collect()
        assert renewed is due
        if not due:
            assert events == []
            return
        reset, granted = events
        assert isinstance(reset, CreditAccount.PeriodReset)
        assert isinstance(granted, CreditAccount.Granted)
        self.period_index = current_period_index(self.now)
        self.plan, self.next_plan = self.next_plan or self.plan, None
        assert (reset.period_index, reset.period_start, reset.expired) == (
            self.period_index,
            add_months(START, self.period_index),
            self.allowance,
        )
        assert (granted.reference, granted.amount) == (f"allowance:{self.period_index}", PRICING.monthly_credits(self.plan))
        self.expired += self.allowance
        self.allowance = PRICING.monthly_credits(self.plan)
        self.granted += self.allowance
        self.references.add(granted.reference)

    @rule(plan=st.sampled_from(PLANS), hours=st.integers(0, 24 * 10))
    def change_plan(self, plan: str, hours: int) -> None:
        self.now += timedelta(hours=hours)
        self.account.change_plan(plan, self.now, PRICING)
        events = self._collect()
        if plan == (self.next_plan or self.plan):
            assert events == []
            return
        changed, *granted = events
        assert isinstance(changed, CreditAccount.PlanChanged)
        old, new = PRICING.monthly_credits(self.plan), PRICING.monthly_credits(plan)
        if new <= old:
            assert (changed.immediate, granted) == (False, [])
            self.next_plan = plan
            return
        assert changed.immediate is True
        self.plan, self.next_plan = plan, None
        end, start = add_months(START, self.period_index + 1), add_months(START, self.period_index)
        at_most = prorated(new - old, start, end, self.now)
        extra = sum(event.amount for event in granted)
        assert 0 <= extra <= at_most
        if granted:
            (grant,) = granted
            assert grant.reference == f"upgrade:{self.period_index}:{plan}"
            self.references.add(grant.reference)
        self.allowance += extra
        self.granted += extra

    @rule(plan=st.text(max_size=10).filter(lambda name: name not in PLANS))
    def change_to_an_unknown_plan(self, plan: str) -> None:
        with pytest.raises(UnknownPlan):
            self.account.change_plan(plan, self.now, PRICING)
        assert self._collect() == []

    # Invariants

    @invariant()
    def balances_are_never_negative(self) -> None:
        assert self.account.allowance >= 0
        assert self.account.topup >= 0
        assert self.account.balance == self.account.allowance + self.account.topup >= 0

    @invariant()
    def balances_are_the_models(self) -> None:
        assert (self.account.allowance, self.account.topup) == (self.allowance, self.topup)
        assert (self.account.plan, self.account.next_plan, self.account.period_index) == (self.plan, self.next_plan, self.period_index)

    @invariant()
    def balance_is_the_sum_of_signed_ledger_movements(self) -> None:
        assert self.account.balance == (
            self.granted + self.topped_up + self.added - self.debited - self.removed + self.refunded - self.expired
        )
        assert self.account.balance == sum(signed_movement(event) for event in self.history)

    @invariant()
    def no_job_is_refunded_more_than_it_was_charged(self) -> None:
        for charge in self.charges.values():
            assert 0 <= charge.refunded_topup <= charge.from_topup
            assert 0 <= charge.refunded_allowance <= charge.from_allowance
            assert 0 <= charge.refundable <= charge.amount

    @invariant()
    def replaying_the_history_gives_the_same_account(self) -> None:
        replayed = rebuilt(self.history)
        fields = ("allowance", "topup", "plan", "next_plan", "period_index", "period_start", "references", "used_this_period", "version")
        assert {name: getattr(replayed, name) for name in fields} == {name: getattr(self.account, name) for name in fields}


def test_any_command_sequence_when_run_then_ledger_invariants_hold_after_every_step() -> None:
    run_state_machine_as_test(CreditAccountMachine, settings=settings(max_examples=100, stateful_step_count=40))
