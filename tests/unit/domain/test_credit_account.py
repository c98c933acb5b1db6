"""CreditAccount: grants once per reference, debits allowance first, refunds never more than was charged."""

from __future__ import annotations

import contextlib
from datetime import UTC, datetime
from uuid import UUID, uuid4

import pytest
from eventsourcing.application import project_aggregate
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule, run_state_machine_as_test

from domain.credit_account import CreditAccount
from domain.errors import InsufficientCredits, InvalidAmount

START = datetime(2025, 3, 15, 9, 30, tzinfo=UTC)


def account_with(allowance: int = 0, topup: int = 0, period_start: datetime = START) -> CreditAccount:
    """An account with the given balances and nothing pending."""
    opened = CreditAccount.open(uuid4(), "pro", period_start)
    if allowance:
        opened.grant("grant", allowance, reference="allowance:seed")
    if topup:
        opened.grant("topup", topup, reference="topup:seed")
    opened.collect_events()
    return opened


def rebuilt(events: list) -> CreditAccount:
    replayed = project_aggregate(None, events)
    assert isinstance(replayed, CreditAccount)
    return replayed


# Grants


def test_new_account_when_opened_then_id_follows_from_workspace() -> None:
    workspace_id = uuid4()

    opened = CreditAccount.open(workspace_id, "free", START)

    assert opened.id == CreditAccount.id_for(workspace_id)


def test_new_account_when_opened_then_balance_is_zero() -> None:
    assert account_with().balance == 0


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


def test_allowance_and_topup_when_debited_then_event_records_the_split() -> None:
    account = account_with(allowance=10, topup=5)

    account.debit(uuid4(), 12, "image")

    (debited,) = account.collect_events()
    assert isinstance(debited, CreditAccount.Debited)
    assert (debited.amount, debited.from_allowance, debited.from_topup) == (12, 10, 2)


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
    job_id = uuid4()

    with pytest.raises(InsufficientCredits):
        account.debit(job_id, 40, "video")

    assert account.collect_events() == []
    assert (account.allowance, account.topup, account.charged_for(job_id)) == (3, 2, 0)


@pytest.mark.parametrize("amount", [0, -1])
def test_account_when_debited_non_positive_amount_then_raises_invalid_amount(amount: int) -> None:
    account = account_with(allowance=10)

    with pytest.raises(InvalidAmount):
        account.debit(uuid4(), amount, "copy")
    assert account.collect_events() == []


def test_debited_job_when_debited_again_then_records_nothing() -> None:
    account = account_with(allowance=10)
    job_id = uuid4()
    account.debit(job_id, 3, "image")
    account.collect_events()

    account.debit(job_id, 3, "image")

    assert account.collect_events() == []
    assert account.balance == 7


def test_debited_job_when_debited_again_beyond_balance_then_does_not_raise() -> None:
    account = account_with(allowance=3)
    job_id = uuid4()
    account.debit(job_id, 3, "image")

    account.debit(job_id, 3, "image")

    assert (account.balance, account.charged_for(job_id)) == (0, 3)


def test_debited_job_when_asked_then_charged_for_gives_its_amount() -> None:
    account = account_with(allowance=10)
    job_id = uuid4()

    account.debit(job_id, 3, "image")

    assert (account.charged_for(job_id), account.charged_for(uuid4())) == (3, 0)


# Refunds


def test_debited_job_when_refunded_in_full_then_balance_is_restored() -> None:
    account = account_with(allowance=10)
    job_id = uuid4()
    account.debit(job_id, 4, "image")

    refunded = account.refund(job_id, 4, "provider_error")

    assert (refunded, account.balance) == (4, 10)


def test_debited_job_when_refunded_more_than_charged_then_refund_is_capped() -> None:
    account = account_with(allowance=10)
    job_id = uuid4()
    account.debit(job_id, 4, "image")

    refunded = account.refund(job_id, 100, "provider_error")

    assert (refunded, account.balance) == (4, 10)


def test_partly_refunded_job_when_refunded_again_then_only_the_remainder_is_given() -> None:
    account = account_with(allowance=10)
    job_id = uuid4()
    account.debit(job_id, 6, "image")
    account.refund(job_id, 4, "one image failed")

    refunded = account.refund(job_id, 4, "another image failed")

    assert (refunded, account.balance) == (2, 10)


def test_fully_refunded_job_when_refunded_again_then_gives_nothing_and_records_nothing() -> None:
    account = account_with(allowance=10)
    job_id = uuid4()
    account.debit(job_id, 6, "image")
    account.refund(job_id, 6, "failed")
    account.collect_events()

    refunded = account.refund(job_id, 6, "failed")

    assert (refunded, account.collect_events(), account.balance) == (0, [], 10)


def test_unknown_job_when_refunded_then_gives_nothing_and_records_nothing() -> None:
    account = account_with(allowance=10)

    refunded = account.refund(uuid4(), 5, "failed")

    assert (refunded, account.collect_events(), account.balance) == (0, [], 10)


@pytest.mark.parametrize("amount", [0, -3])
def test_debited_job_when_refunded_non_positive_amount_then_gives_nothing(amount: int) -> None:
    account = account_with(allowance=10)
    job_id = uuid4()
    account.debit(job_id, 6, "image")
    account.collect_events()

    assert account.refund(job_id, amount, "failed") == 0
    assert account.collect_events() == []


def test_job_paid_from_both_balances_when_partly_refunded_then_topup_is_given_back_first() -> None:
    account = account_with(allowance=5, topup=10)
    job_id = uuid4()
    account.debit(job_id, 8, "image")  # 5 from the allowance, 3 from top-ups

    account.refund(job_id, 4, "failed")

    assert (account.allowance, account.topup) == (1, 10)


def test_job_paid_from_both_balances_when_refunded_twice_then_second_refund_goes_to_allowance() -> None:
    account = account_with(allowance=5, topup=10)
    job_id = uuid4()
    account.debit(job_id, 8, "image")
    account.refund(job_id, 3, "failed")

    account.refund(job_id, 2, "failed")

    assert (account.allowance, account.topup) == (2, 10)


def test_job_paid_from_allowance_when_refunded_then_nothing_goes_to_topup() -> None:
    account = account_with(allowance=10, topup=10)
    job_id = uuid4()
    account.debit(job_id, 4, "image")

    account.refund(job_id, 4, "failed")

    assert (account.allowance, account.topup) == (10, 10)


def test_job_paid_from_both_balances_when_refunded_then_event_records_the_split() -> None:
    account = account_with(allowance=5, topup=10)
    job_id = uuid4()
    account.debit(job_id, 8, "image")
    account.collect_events()

    account.refund(job_id, 8, "failed")

    (refunded,) = account.collect_events()
    assert isinstance(refunded, CreditAccount.Refunded)
    assert (refunded.amount, refunded.to_topup, refunded.to_allowance) == (8, 3, 5)


# Usage this period


def test_new_account_when_asked_then_nothing_is_used_this_period() -> None:
    assert account_with(allowance=10).used_this_period == 0


def test_debits_when_made_then_used_this_period_adds_them_up() -> None:
    account = account_with(allowance=10, topup=10)

    account.debit(uuid4(), 3, "image")
    account.debit(uuid4(), 12, "image")

    assert account.used_this_period == 15


def test_debit_when_partly_refunded_then_used_this_period_counts_only_the_rest() -> None:
    account = account_with(allowance=10)
    job_id = uuid4()
    account.debit(job_id, 6, "image")

    account.refund(job_id, 4, "failed")

    assert account.used_this_period == 2


def test_grants_when_made_then_used_this_period_is_unchanged() -> None:
    account = account_with(allowance=10)
    account.debit(uuid4(), 3, "image")

    account.grant("topup", 100, reference="stripe:pi_2")

    assert account.used_this_period == 3


# The billing period


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
    assert account_with(period_start=start).period_end == end


def test_aware_period_start_when_asked_for_period_end_then_timezone_is_kept() -> None:
    assert account_with(period_start=datetime(2025, 1, 31, tzinfo=UTC)).period_end.tzinfo is UTC


@given(st.datetimes(min_value=datetime(2000, 1, 1), max_value=datetime(2100, 1, 1), timezones=st.just(UTC)))
def test_any_period_start_when_asked_for_period_end_then_it_is_in_the_next_month(start: datetime) -> None:
    end = account_with(period_start=start).period_end

    assert (end.year * 12 + end.month) - (start.year * 12 + start.month) == 1
    assert end.day == start.day or end.day < start.day
    assert end.time() == start.time()


# Replay


def test_account_history_when_replayed_then_gives_the_same_account() -> None:
    account = CreditAccount.open(uuid4(), "pro", START)
    job_id = uuid4()
    account.grant("grant", 10, reference="allowance")
    account.grant("topup", 5, reference="stripe:pi_1")
    account.debit(job_id, 12, "image")
    account.refund(job_id, 4, "failed")

    replayed = rebuilt(list(account.collect_events()))

    assert replayed == account


# Properties over random command sequences

JOBS = [UUID(int=n) for n in range(1, 6)]
REFERENCES = [f"ref:{n}" for n in range(4)]

commands = st.lists(
    st.one_of(
        st.tuples(st.just("grant"), st.sampled_from(["grant", "topup"]), st.integers(-5, 60), st.sampled_from(REFERENCES)),
        st.tuples(st.just("debit"), st.sampled_from(JOBS), st.integers(-5, 60)),
        st.tuples(st.just("refund"), st.sampled_from(JOBS), st.integers(-5, 60)),
    ),
    max_size=30,
)


def run(account: CreditAccount, command: tuple) -> None:
    """Runs one command; a refusal is an expected outcome here, not a failure."""
    with contextlib.suppress(InvalidAmount, InsufficientCredits):
        match command:
            case ("grant", kind, amount, reference):
                account.grant(kind, amount, reference)
            case ("debit", job_id, amount):
                account.debit(job_id, amount, "image")
            case ("refund", job_id, amount):
                account.refund(job_id, amount, "failed")


@settings(max_examples=200)
@given(commands)
def test_any_command_sequence_when_its_events_are_replayed_then_gives_the_same_account(sequence: list[tuple]) -> None:
    account = CreditAccount.open(uuid4(), "pro", START)
    for command in sequence:
        run(account, command)

    replayed = rebuilt(list(account.collect_events()))

    assert replayed == account
    assert (replayed.allowance, replayed.topup, replayed.used_this_period) == (
        account.allowance,
        account.topup,
        account.used_this_period,
    )


class CreditAccountMachine(RuleBasedStateMachine):
    """Drives one account with valid and invalid commands, against a plain model of the ledger."""

    def __init__(self) -> None:
        super().__init__()
        self.account = CreditAccount.open(uuid4(), "pro", START)
        self.history = list(self.account.collect_events())
        self.granted = 0
        self.debited = 0
        self.refunded = 0
        self.references: set[str] = set()
        self.charged: dict[UUID, int] = {}
        self.given_back: dict[UUID, int] = {}

    def _collect(self) -> list:
        events = list(self.account.collect_events())
        self.history += events
        return events

    @rule(kind=st.sampled_from(["grant", "topup"]), amount=st.integers(1, 60), reference=st.sampled_from(REFERENCES))
    def grant(self, kind: str, amount: int, reference: str) -> None:
        added = self.account.grant(kind, amount, reference)  # type: ignore[arg-type]
        events = self._collect()
        assert added is (reference not in self.references)
        assert len(events) == int(added)
        if added:
            self.references.add(reference)
            self.granted += amount

    @rule(kind=st.sampled_from(["grant", "topup"]), amount=st.integers(-5, 0), reference=st.text(max_size=5))
    def grant_nothing(self, kind: str, amount: int, reference: str) -> None:
        with pytest.raises(InvalidAmount):
            self.account.grant(kind, amount, reference)  # type: ignore[arg-type]
        assert self._collect() == []

    @rule(job_id=st.sampled_from(JOBS), amount=st.integers(1, 60))
    def debit(self, job_id: UUID, amount: int) -> None:
        balance = self.account.balance
        if job_id not in self.charged and amount > balance:
            with pytest.raises(InsufficientCredits) as raised:
                self.account.debit(job_id, amount, "image")
            assert (raised.value.required, raised.value.available) == (amount, balance)
            assert self._collect() == []
            return
        self.account.debit(job_id, amount, "image")
        events = self._collect()
        if job_id in self.charged:
            assert events == []
        else:
            assert len(events) == 1
            self.charged[job_id] = amount
            self.debited += amount

    @precondition(lambda self: self.account.balance > 0)
    @rule(job_id=st.sampled_from(JOBS), data=st.data())
    def debit_at_most_balance(self, job_id: UUID, data: st.DataObject) -> None:
        self.debit(job_id, data.draw(st.integers(1, self.account.balance)))

    @rule(job_id=st.sampled_from(JOBS), amount=st.integers(-5, 60))
    def refund(self, job_id: UUID, amount: int) -> None:
        remainder = self.charged.get(job_id, 0) - self.given_back.get(job_id, 0)
        expected = max(0, min(amount, remainder))

        refunded = self.account.refund(job_id, amount, "failed")

        assert refunded == expected
        assert len(self._collect()) == int(expected > 0)
        self.given_back[job_id] = self.given_back.get(job_id, 0) + refunded
        self.refunded += refunded

    @invariant()
    def balance_is_grants_minus_debits_plus_refunds(self) -> None:
        assert self.account.balance == self.granted - self.debited + self.refunded >= 0

    @invariant()
    def balances_are_never_negative(self) -> None:
        assert self.account.allowance >= 0
        assert self.account.topup >= 0

    @invariant()
    def no_job_is_refunded_more_than_it_was_charged(self) -> None:
        for job_id, amount in self.charged.items():
            assert 0 <= self.given_back.get(job_id, 0) <= amount
            assert self.account.charged_for(job_id) == amount

    @invariant()
    def used_this_period_is_debits_minus_refunds(self) -> None:
        assert self.account.used_this_period == self.debited - self.refunded

    @invariant()
    def replaying_the_history_gives_the_same_balances(self) -> None:
        replayed = rebuilt(self.history)
        assert (replayed.allowance, replayed.topup, replayed.used_this_period, replayed.version) == (
            self.account.allowance,
            self.account.topup,
            self.account.used_this_period,
            self.account.version,
        )
        assert replayed.charges == self.account.charges


def test_any_command_sequence_when_run_then_ledger_invariants_hold_after_every_step() -> None:
    run_state_machine_as_test(CreditAccountMachine, settings=settings(max_examples=100, stateful_step_count=40))
