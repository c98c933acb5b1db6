"""The credit ledger on real PostgreSQL: the account, the projected balance and the ledger always agree."""

from __future__ import annotations

import threading
from datetime import UTC, date, datetime, timedelta
from typing import Any
from uuid import UUID, uuid4

import msgspec
import psycopg
from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, rule

from adapters.bootstrap import Container
from domain.credit_account import CreditAccount
from domain.errors import InsufficientCredits
from projections.credit_accounts import projected_balance
from projections.credit_usage import CreditUsageReadModel, usage
from projections.engine import ProjectionView
from tests.conftest import ManualClock, catch_up_all

BRIEF: dict[str, Any] = {"product": {"name": "Lamp"}, "count": 1}
SIGN = {"grant": 1, "topup": 1, "refund": 1, "debit": -1, "reset": -1}


def ledger_sum(container: Container, workspace_id: UUID) -> int:
    with psycopg.connect(container.database_url) as conn:
        rows = conn.execute("SELECT type, amount FROM credit_ledger WHERE workspace_id = %s", (workspace_id,)).fetchall()
    return sum(SIGN[kind] * amount for kind, amount in rows)


def test_credit_commands_in_any_order_keep_account_projection_and_ledger_in_agreement(make_container) -> None:  # type: ignore[no-untyped-def]
    clock = ManualClock(datetime(2026, 1, 31, 12, tzinfo=UTC))
    container: Container = make_container(clock=clock)

    class CreditCommands(RuleBasedStateMachine):
        @initialize(plan=st.sampled_from(["free", "pro"]))
        def open_workspace(self, plan: str) -> None:
            self.workspace_id = container.app.create_workspace("Ledger", plan)[0].id
            self.failable: list[UUID] = []
            self.references = 0

        @rule(amount=st.integers(1, 300))
        def top_up(self, amount: int) -> None:
            self.references += 1
            container.app.top_up(self.workspace_id, amount, f"order-{self.references}")

        @rule(amount=st.integers(-400, 400).filter(bool))
        def adjust(self, amount: int) -> None:
            self.references += 1
            try:
                container.app.adjust_credits(self.workspace_id, amount, f"adj-{self.references}", "correction")
            except InsufficientCredits:
                assert -amount > container.app.credit_account(self.workspace_id).balance

        @rule()
        def request_job(self) -> None:
            try:
                self.failable.append(container.app.request_job(self.workspace_id, "copy", BRIEF, 1).job.id)
            except InsufficientCredits:
                assert container.app.credit_account(self.workspace_id).balance == 0

        @rule(data=st.data())
        def fail_job(self, data: st.DataObject) -> None:
            if self.failable:
                job_id = self.failable.pop(data.draw(st.integers(0, len(self.failable) - 1)))
                attempt = container.app.start_job(job_id, "w").attempts  # type: ignore[union-attr]
                container.app.fail_job(job_id, attempt, "provider_error", "no", retryable=False)

        @rule(days=st.integers(1, 70))
        def time_passes_and_periods_renew(self, days: int) -> None:
            clock.advance(days=days)
            container.app.renew_period(self.workspace_id)

        @rule(plan=st.sampled_from(["free", "pro", "business"]))
        def change_plan(self, plan: str) -> None:
            container.app.change_plan(self.workspace_id, plan)

        @invariant()
        def account_projection_and_ledger_agree(self) -> None:
            catch_up_all(container, batch_size=50)
            balance = container.app.credit_account(self.workspace_id).balance
            assert balance >= 0
            assert projected_balance(container.pool, self.workspace_id) == balance
            assert ledger_sum(container, self.workspace_id) == balance

    CreditCommands.TestCase.settings = settings(max_examples=12, stateful_step_count=12)
    CreditCommands.TestCase().runTest()


def test_two_resetters_at_once_reset_the_period_once(make_container) -> None:  # type: ignore[no-untyped-def]
    clock = ManualClock(datetime(2026, 3, 10, tzinfo=UTC))
    first: Container = make_container(clock=clock)
    second = Container(first.settings, clock=clock)
    workspace_id = first.app.create_workspace("Acme")[0].id
    clock.advance(days=31)
    start = threading.Barrier(2)
    results: list[bool] = []

    def reset(replica: Container) -> None:
        start.wait()
        results.append(replica.app.renew_period(workspace_id))

    try:
        threads = [threading.Thread(target=reset, args=(replica,)) for replica in (first, second)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    finally:
        second.close()

    assert sorted(results) == [False, True]
    events = [type(e).__name__ for e in first.app.events.get(CreditAccount.id_for(workspace_id))]
    assert events.count("PeriodReset") == 1
    account = first.app.credit_account(workspace_id)
    assert (account.period_index, account.allowance, account.period_start) == (1, 50, datetime(2026, 4, 10, tzinfo=UTC))


def test_sweeper_renews_every_account_whose_period_ended_and_only_those(make_container) -> None:  # type: ignore[no-untyped-def]
    clock = ManualClock(datetime(2026, 5, 1, tzinfo=UTC))
    container: Container = make_container(clock=clock)
    old = container.app.create_workspace("Old")[0].id
    clock.advance(days=20)
    new = container.app.create_workspace("New")[0].id
    clock.advance(days=15)
    catch_up_all(container)

    assert container.renew_periods_once() == 1
    catch_up_all(container)
    assert container.renew_periods_once() == 0

    assert container.app.credit_account(old).period_index == 1
    assert container.app.credit_account(new).period_index == 0


def test_usage_over_several_days_and_types_matches_a_hand_computed_fixture(container: Container) -> None:
    workspace_id, account_id = uuid4(), uuid4()
    view = ProjectionView(container.datastore, CreditUsageReadModel(), container.app.name)
    spend = [  # (day, job type, charged, refunded later)
        (date(2026, 6, 1), "copy", 1, 0),
        (date(2026, 6, 1), "image", 9, 3),
        (date(2026, 6, 3), "video", 40, 40),
        (date(2026, 6, 3), "copy", 1, 0),
        (date(2026, 6, 5), "image", 6, 0),
        (date(2026, 5, 20), "video", 40, 0),  # before the window
    ]
    events: list[Any] = []
    for day, job_type, charged, refunded in spend:
        job_id, at = uuid4(), datetime(day.year, day.month, day.day, 23, 30, tzinfo=UTC)
        common = {"originator_id": account_id, "timestamp": at, "workspace_id": workspace_id, "allowance_after": 0, "topup_after": 0}
        events.append(
            CreditAccount.Debited(
                originator_version=len(events) + 1,
                **common,
                job_id=job_id,
                job_type=job_type,
                amount=charged,
                from_allowance=charged,
                from_topup=0,
            )
        )
        if refunded:
            events.append(
                CreditAccount.Refunded(
                    originator_version=len(events) + 1,
                    **{**common, "timestamp": at + timedelta(days=1)},
                    job_id=job_id,
                    job_type=job_type,
                    amount=refunded,
                    reason="failed",
                    to_allowance=refunded,
                    to_topup=0,
                    charged_in_period=0,
                )
            )
    view.handle([(position, event) for position, event in enumerate(events, start=1)])

    seen = usage(container.pool, workspace_id, days=7, today=date(2026, 6, 6))

    assert [(d.date.day, d.credits) for d in seen.daily] == [(31, 0), (1, 7), (2, 0), (3, 1), (4, 0), (5, 6), (6, 0)]
    assert seen.by_type == {"copy": 2, "image": 12, "video": 0}
    assert (seen.period_days, seen.total_credits, seen.lifetime) == (7, 14, 54)


def test_price_change_does_not_alter_the_cost_of_a_job_already_requested(make_container) -> None:  # type: ignore[no-untyped-def]
    before: Container = make_container(cost_copy=2)
    after = Container(msgspec.structs.replace(before.settings, cost_copy=5))
    try:
        workspace_id = before.app.create_workspace("Acme")[0].id
        job = before.app.request_job(workspace_id, "copy", BRIEF, 1).job

        attempt = after.app.start_job(job.id, "w").attempts  # type: ignore[union-attr]
        after.app.fail_job(job.id, attempt, "provider_error", "no", retryable=False)
        second = after.app.request_job(workspace_id, "copy", BRIEF, 1).job

        assert (job.cost, after.app.get_job(workspace_id, job.id).credits_refunded, second.cost) == (2, 2, 5)
        assert after.app.credit_account(workspace_id).balance == 45
    finally:
        after.close()
