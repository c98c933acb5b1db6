"""Charge and Refund: what a job was charged, from which balance, and never refunded more than that."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from domain.credit_account import Charge, Refund

# Refund


def test_refund_with_both_parts_when_asked_for_amount_then_it_is_their_sum() -> None:
    assert Refund(to_allowance=2, to_topup=3).amount == 5


# Refunding a charge


def test_new_charge_when_asked_then_all_of_it_is_refundable() -> None:
    assert Charge(8, from_allowance=5, from_topup=3).refundable == 8


def test_charge_from_allowance_when_refunded_in_full_then_all_goes_to_allowance() -> None:
    assert Charge(4, from_allowance=4, from_topup=0).refund(4) == Refund(to_allowance=4, to_topup=0)


def test_charge_when_refunded_more_than_charged_then_refund_is_capped_at_the_charge() -> None:
    assert Charge(4, from_allowance=4, from_topup=0).refund(100) == Refund(to_allowance=4, to_topup=0)


def test_charge_from_both_balances_when_partly_refunded_then_topup_is_given_back_first() -> None:
    assert Charge(8, from_allowance=5, from_topup=3).refund(4) == Refund(to_allowance=1, to_topup=3)


def test_charge_from_both_balances_when_refunded_less_than_topup_part_then_all_goes_to_topup() -> None:
    assert Charge(8, from_allowance=5, from_topup=3).refund(2) == Refund(to_allowance=0, to_topup=2)


def test_charge_from_both_balances_when_refunded_in_full_then_each_balance_gets_its_part_back() -> None:
    assert Charge(8, from_allowance=5, from_topup=3).refund(8) == Refund(to_allowance=5, to_topup=3)


def test_charge_when_refunded_zero_then_refund_is_empty() -> None:
    assert Charge(8, from_allowance=5, from_topup=3).refund(0) == Refund(0, 0)


def test_charge_when_refunded_a_negative_amount_then_refund_is_empty() -> None:
    assert Charge(8, from_allowance=5, from_topup=3).refund(-3) == Refund(0, 0)


def test_charge_when_refund_is_computed_then_charge_itself_is_unchanged() -> None:
    charge = Charge(8, from_allowance=5, from_topup=3)

    charge.refund(4)

    assert charge.refundable == 8


# After a refund


def test_charge_when_a_refund_is_applied_then_refunded_parts_grow() -> None:
    charge = Charge(8, from_allowance=5, from_topup=3)

    after = charge.after(Refund(to_allowance=1, to_topup=3))

    assert (after.refunded_allowance, after.refunded_topup, after.refundable) == (1, 3, 4)


def test_partly_refunded_charge_when_refunded_again_then_only_the_remainder_is_given() -> None:
    charge = Charge(6, from_allowance=6, from_topup=0)
    charge = charge.after(charge.refund(4))

    assert charge.refund(4) == Refund(to_allowance=2, to_topup=0)


def test_charge_with_topup_refunded_when_refunded_again_then_rest_goes_to_allowance() -> None:
    charge = Charge(8, from_allowance=5, from_topup=3)
    charge = charge.after(charge.refund(3))

    assert charge.refund(2) == Refund(to_allowance=2, to_topup=0)


def test_fully_refunded_charge_when_refunded_again_then_refund_is_empty() -> None:
    charge = Charge(8, from_allowance=5, from_topup=3)
    charge = charge.after(charge.refund(8))

    assert (charge.refundable, charge.refund(8)) == (0, Refund(0, 0))


# Properties


@st.composite
def charges(draw: st.DrawFn) -> Charge:
    from_allowance = draw(st.integers(0, 100))
    from_topup = draw(st.integers(0 if from_allowance else 1, 100))
    return Charge(from_allowance + from_topup, from_allowance, from_topup)


@given(charges(), st.lists(st.integers(-10, 120), max_size=10))
def test_any_charge_when_refunded_repeatedly_then_never_more_than_charged_from_either_balance(charge: Charge, amounts: list[int]) -> None:
    given_back = 0
    for amount in amounts:
        refund = charge.refund(amount)
        assert refund.to_allowance >= 0
        assert refund.to_topup >= 0
        assert refund.amount == max(0, min(amount, charge.refundable))
        charge = charge.after(refund)
        given_back += refund.amount

    assert given_back == charge.amount - charge.refundable <= charge.amount
    assert 0 <= charge.refunded_topup <= charge.from_topup
    assert 0 <= charge.refunded_allowance <= charge.from_allowance


@given(charges(), st.integers(0, 250))
def test_any_charge_when_partly_refunded_then_topup_is_given_back_before_allowance(charge: Charge, amount: int) -> None:
    refund = charge.refund(amount)

    assert refund.to_topup == min(refund.amount, charge.from_topup)
