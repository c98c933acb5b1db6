"""The credit ledger: the entry `entry_of` makes for each credit event, with the balance after it."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from uuid import uuid4

from domain.api_key import ApiKey
from domain.credit_account import Charge, CreditAccount, add_months
from domain.generation_job import GenerationJob
from domain.pricing import Pricing
from domain.workspace import Workspace
from projections.credit_ledger import entry_of

NOW = datetime(2025, 3, 15, 9, 30, tzinfo=UTC)


def funded_account(allowance: int = 10, topup: int = 5) -> CreditAccount:
    """A pro account whose plan allowance is `allowance`, topped up by `topup`."""
    account = CreditAccount.open(uuid4(), "pro", NOW, Pricing(pro=allowance))
    account.grant("topup", topup, reference="stripe:pi_1")
    account.collect_events()
    return account


def test_opening_allowance_when_entered_then_entry_is_a_grant_with_the_balance_after() -> None:
    account = CreditAccount.open(uuid4(), "pro", NOW, Pricing(pro=50))
    _opened, granted = account.collect_events()

    entry = entry_of(7, granted)

    assert entry is not None
    assert (entry.type, entry.amount, entry.balance_after, entry.job_id) == ("grant", 50, 50, None)
    assert (entry.reference, entry.reason) == ("allowance:0", "pro plan allowance for the period from 2025-03-15")


def test_grant_event_when_entered_then_entry_carries_its_reference_and_reason() -> None:
    account = funded_account(allowance=10, topup=5)
    account.grant("grant", 50, reference="promo:spring", reason="spring promotion")
    (granted,) = account.collect_events()

    entry = entry_of(8, granted)

    assert entry is not None
    assert (entry.type, entry.amount, entry.balance_after) == ("grant", 50, 65)
    assert (entry.reference, entry.reason) == ("promo:spring", "spring promotion")


def test_topup_event_when_entered_then_entry_is_a_topup_with_the_balance_after() -> None:
    account = funded_account(allowance=10, topup=5)
    account.grant("topup", 20, reference="stripe:pi_2", reason="card payment")
    (granted,) = account.collect_events()

    entry = entry_of(8, granted)

    assert entry is not None
    assert (entry.type, entry.amount, entry.balance_after, entry.reference) == ("topup", 20, 35, "stripe:pi_2")


def test_debit_event_when_entered_then_entry_is_a_debit_naming_the_job() -> None:
    account = funded_account(allowance=10, topup=5)
    job_id = uuid4()
    account.debit(job_id, 12, "image")
    (debited,) = account.collect_events()

    entry = entry_of(9, debited)

    assert entry is not None
    assert (entry.type, entry.amount, entry.balance_after) == ("debit", 12, 3)
    assert (entry.job_id, entry.reason, entry.reference) == (job_id, "image", None)


def test_refund_event_when_entered_then_entry_is_a_refund_naming_the_job() -> None:
    account = funded_account(allowance=10, topup=5)
    job_id = uuid4()
    charge = account.debit(job_id, 12, "image")
    account.refund(job_id, "image", charge.refund(4), "provider_error")
    _debited, refunded = account.collect_events()

    entry = entry_of(10, refunded)

    assert entry is not None
    assert (entry.type, entry.amount, entry.balance_after) == ("refund", 4, 7)
    assert (entry.job_id, entry.reason) == (job_id, "provider_error")


def test_credit_event_when_entered_then_entry_carries_position_workspace_and_time() -> None:
    account = funded_account()
    account.debit(uuid4(), 1, "copy")
    (debited,) = account.collect_events()

    entry = entry_of(42, debited)

    assert entry is not None
    assert (entry.position, entry.workspace_id, entry.created_at) == (42, account.workspace_id, debited.timestamp)


def test_credit_event_when_entered_twice_then_entry_id_is_the_same() -> None:
    account = funded_account()
    account.debit(uuid4(), 1, "copy")
    (debited,) = account.collect_events()

    first, second = entry_of(42, debited), entry_of(42, debited)

    assert first is not None and second is not None
    assert first.id == second.id


def test_two_credit_events_when_entered_then_entry_ids_differ() -> None:
    account = funded_account()
    account.debit(uuid4(), 1, "copy")
    account.debit(uuid4(), 1, "copy")
    entries = [entry_of(position, event) for position, event in enumerate(account.collect_events(), start=1)]

    assert len({entry.id for entry in entries if entry is not None}) == 2


# Adjustments


def test_upward_adjustment_when_entered_then_entry_is_a_grant_naming_its_reference() -> None:
    account = funded_account(allowance=10, topup=5)
    account.adjust(20, reference="support:ticket-1", reason="goodwill")
    (adjusted,) = account.collect_events()

    entry = entry_of(11, adjusted)

    assert entry is not None
    assert (entry.type, entry.amount, entry.balance_after) == ("grant", 20, 35)
    assert (entry.reference, entry.reason, entry.job_id) == ("support:ticket-1", "goodwill", None)


def test_downward_adjustment_when_entered_then_entry_is_a_debit_of_the_positive_amount() -> None:
    account = funded_account(allowance=10, topup=5)
    account.adjust(-12, reference="support:ticket-2", reason="chargeback")
    (adjusted,) = account.collect_events()

    entry = entry_of(12, adjusted)

    assert entry is not None
    assert (entry.type, entry.amount, entry.balance_after) == ("debit", 12, 3)
    assert (entry.reference, entry.reason, entry.job_id) == ("support:ticket-2", "chargeback", None)


# Period resets


def test_period_reset_with_unused_allowance_when_entered_then_entry_is_a_reset_of_the_expired_credits() -> None:
    account = funded_account(allowance=10, topup=5)
    account.debit(uuid4(), 4, "image")
    account.collect_events()
    account.renew(add_months(NOW, 1), Pricing(pro=10))
    reset, _granted = account.collect_events()

    entry = entry_of(13, reset)

    assert entry is not None
    assert (entry.type, entry.amount, entry.balance_after, entry.job_id) == ("reset", 6, 5, None)
    assert entry.created_at == reset.timestamp


def test_period_reset_with_unused_allowance_when_entered_then_next_grant_restores_the_balance() -> None:
    account = funded_account(allowance=10, topup=5)
    account.renew(add_months(NOW, 1), Pricing(pro=10))
    entries = [entry_of(position, event) for position, event in enumerate(account.collect_events(), start=20)]

    assert [(e.type, e.amount, e.balance_after, e.reference) for e in entries if e is not None] == [
        ("reset", 10, 5, None),
        ("grant", 10, 15, "allowance:1"),
    ]


def test_period_reset_with_nothing_expired_when_entered_then_gives_no_entry() -> None:
    account = funded_account(allowance=10, topup=5)
    account.debit(uuid4(), 10, "image")
    account.collect_events()
    account.renew(add_months(NOW, 1), Pricing(pro=10))
    reset, _granted = account.collect_events()

    assert isinstance(reset, CreditAccount.PeriodReset)
    assert reset.expired == 0
    assert entry_of(14, reset) is None


def test_plan_change_when_entered_then_gives_no_entry_but_its_upgrade_grant_does() -> None:
    account = funded_account(allowance=10, topup=5)
    account.change_plan("business", NOW + timedelta(days=1), Pricing(pro=10))
    changed, granted = account.collect_events()

    assert entry_of(15, changed) is None
    assert entry_of(16, granted) is not None


# Whole histories


def test_account_history_when_entered_then_each_balance_after_matches_the_account() -> None:
    account = CreditAccount.open(uuid4(), "pro", NOW, Pricing(pro=10))
    job_id = uuid4()
    account.grant("topup", 5, reference="stripe:pi_1")
    charge = account.debit(job_id, 12, "image")
    account.refund(job_id, "image", charge.refund(12), "failed")
    account.adjust(-3, reference="support:1", reason="correction")
    account.renew(add_months(NOW, 1), Pricing(pro=10))
    entries = [entry_of(position, event) for position, event in enumerate(account.collect_events(), start=1)]

    assert [(e.type, e.amount, e.balance_after) for e in entries if e is not None] == [
        ("grant", 10, 10),
        ("topup", 5, 15),
        ("debit", 12, 3),
        ("refund", 12, 15),
        ("debit", 3, 12),
        ("reset", 7, 5),
        ("grant", 10, 15),
    ]
    assert entries[-1] is not None
    assert entries[-1].balance_after == account.balance


def test_opened_event_when_entered_then_gives_no_entry() -> None:
    opened, _granted = CreditAccount.open(uuid4(), "pro", NOW, Pricing()).collect_events()

    assert entry_of(1, opened) is None


def test_other_aggregates_events_when_entered_then_give_no_entry() -> None:
    workspace_id = uuid4()
    job = GenerationJob.request(uuid4(), workspace_id, "copy", {}, Charge(1, 1, 0), "fp", None, 3)
    job.start("worker-1", NOW, NOW + timedelta(minutes=2))
    key = ApiKey.issue(workspace_id, "pr_live_secret-secret-secret", "ci")
    key.revoke(revoked_by=uuid4())
    events = [
        *Workspace.open(workspace_id, "Acme").collect_events(),
        *job.collect_events(),
        *key.collect_events(),
    ]

    assert [entry_of(position, event) for position, event in enumerate(events)] == [None] * len(events)
