"""The credit ledger: the entry `entry_of` makes for each credit event, with the balance after it."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from uuid import uuid4

from domain.api_key import ApiKey
from domain.credit_account import CreditAccount
from domain.generation_job import GenerationJob
from domain.workspace import Workspace
from projections.credit_ledger import entry_of

NOW = datetime(2025, 3, 15, 9, 30, tzinfo=UTC)


def funded_account(allowance: int = 10, topup: int = 5) -> CreditAccount:
    account = CreditAccount.open(uuid4(), "pro", NOW)
    account.grant("grant", allowance, reference="allowance:march")
    account.grant("topup", topup, reference="stripe:pi_1")
    account.collect_events()
    return account


def test_grant_event_when_entered_then_entry_is_a_grant_with_the_balance_after() -> None:
    account = CreditAccount.open(uuid4(), "pro", NOW)
    account.grant("grant", 50, reference="allowance:march", reason="pro plan monthly allowance")
    _opened, granted = account.collect_events()

    entry = entry_of(7, granted)

    assert entry is not None
    assert (entry.type, entry.amount, entry.balance_after) == ("grant", 50, 50)
    assert (entry.reference, entry.reason, entry.job_id) == ("allowance:march", "pro plan monthly allowance", None)


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
    account.debit(job_id, 12, "image")
    account.refund(job_id, 4, "provider_error")
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


def test_account_history_when_entered_then_each_balance_after_matches_the_account() -> None:
    account = CreditAccount.open(uuid4(), "pro", NOW)
    job_id = uuid4()
    account.grant("grant", 10, reference="allowance")
    account.grant("topup", 5, reference="stripe:pi_1")
    account.debit(job_id, 12, "image")
    account.refund(job_id, 12, "failed")
    entries = [entry_of(position, event) for position, event in enumerate(account.collect_events(), start=1)]

    assert [(e.type, e.amount, e.balance_after) for e in entries if e is not None] == [
        ("grant", 10, 10),
        ("topup", 5, 15),
        ("debit", 12, 3),
        ("refund", 12, 15),
    ]


def test_opened_event_when_entered_then_gives_no_entry() -> None:
    (opened,) = CreditAccount.open(uuid4(), "pro", NOW).collect_events()

    assert entry_of(1, opened) is None


def test_other_aggregates_events_when_entered_then_give_no_entry() -> None:
    workspace_id = uuid4()
    job = GenerationJob.request(uuid4(), workspace_id, "copy", {}, 1, "fp", None, 3)
    job.start("worker-1", NOW, NOW + timedelta(minutes=2))
    key = ApiKey.issue(workspace_id, "pr_live_secret-secret-secret", "ci")
    key.revoke(revoked_by=uuid4())
    events = [
        *Workspace.open(workspace_id, "Acme").collect_events(),
        *job.collect_events(),
        *key.collect_events(),
    ]

    assert [entry_of(position, event) for position, event in enumerate(events)] == [None] * len(events)
