"""CreditAccount: one per workspace; the ledger of every credit granted, spent, refunded and expired.

Two balances: the plan allowance (replaced each period; what is left expires) and top-ups (never
expire). Debits take the allowance first; refunds give back top-up credits first. The balance never
goes below zero. What each job was charged is kept by the job (a `Charge`), so the account's state
does not grow with its jobs (only with its grant references: one a period, one a top-up or
adjustment): a job is never refunded more than it was charged because its Charge says how much is
left to refund.

Periods are monthly from the account's anchor (its opening); the n-th period starts n months
after it, on the anchor's day or the month's last day. A plan upgrade takes effect at once with a
pro-rated grant for the rest of the period; a downgrade takes effect at the next period.
"""

from __future__ import annotations

import calendar
from datetime import datetime, timedelta
from typing import Any, Literal, NamedTuple
from uuid import NAMESPACE_URL, UUID, uuid5

from domain.base import WorkspaceAggregate
from domain.errors import InsufficientCredits, InvalidAmount
from domain.pricing import Pricing
from domain.workspace import check_plan

_ACCOUNT_NAMESPACE = uuid5(NAMESPACE_URL, "pressroom:credit-account")

GrantKind = Literal["grant", "topup"]


def add_months(anchor: datetime, months: int) -> datetime:
    year, month = divmod(anchor.month - 1 + months, 12)
    year, month = anchor.year + year, month + 1
    return anchor.replace(year=year, month=month, day=min(anchor.day, calendar.monthrange(year, month)[1]))


class Refund(NamedTuple):
    to_allowance: int
    to_topup: int
    charged_in_period: int = 0

    @property
    def amount(self) -> int:
        return self.to_allowance + self.to_topup


class Charge(NamedTuple):
    """What one job was charged, from which balance, and how much of it has come back."""

    amount: int
    from_allowance: int
    from_topup: int
    refunded_allowance: int = 0
    refunded_topup: int = 0
    period: int = 0

    @property
    def refundable(self) -> int:
        return self.amount - self.refunded_allowance - self.refunded_topup

    def refund(self, amount: int) -> Refund:
        """Up to `amount` of what is left, top-up credits first."""
        amount = max(0, min(amount, self.refundable))
        to_topup = min(amount, self.from_topup - self.refunded_topup)
        return Refund(to_allowance=amount - to_topup, to_topup=to_topup, charged_in_period=self.period)

    def after(self, refund: Refund) -> Charge:
        return self._replace(
            refunded_allowance=self.refunded_allowance + refund.to_allowance,
            refunded_topup=self.refunded_topup + refund.to_topup,
        )


class CreditAccount(WorkspaceAggregate):
    FAMILY = "credits"
    EVENT_PREFIX = "credits"

    class Opened(WorkspaceAggregate.Created):
        plan: str
        period_start: datetime

    def __init__(self, workspace_id: UUID, plan: str, period_start: datetime) -> None:
        self.workspace_id = workspace_id
        self.plan = plan
        self.next_plan: str | None = None
        self.anchor = period_start
        self.period_index = 0
        self.period_start = period_start
        self.allowance = 0
        self.topup = 0
        self.references: set[str] = set()
        self.used_this_period = 0

    @staticmethod
    def id_for(workspace_id: UUID) -> UUID:
        return uuid5(_ACCOUNT_NAMESPACE, str(workspace_id))

    @classmethod
    def open(cls, workspace_id: UUID, plan: str, now: datetime, pricing: Pricing) -> CreditAccount:
        check_plan(plan)
        account = cls._create(cls.Opened, id=cls.id_for(workspace_id), workspace_id=workspace_id, plan=plan, period_start=now)
        account._grant_allowance(pricing)
        return account

    @property
    def balance(self) -> int:
        return self.allowance + self.topup

    @property
    def period_end(self) -> datetime:
        return add_months(self.anchor, self.period_index + 1)

    class BalanceChanged(WorkspaceAggregate.Event):
        allowance_after: int
        topup_after: int

        def apply(self, account: CreditAccount) -> None:
            account.allowance = self.allowance_after
            account.topup = self.topup_after

    # Grants and adjustments

    class Granted(BalanceChanged):
        kind: str
        amount: int
        reference: str
        reason: str | None

        def apply(self, account: CreditAccount) -> None:
            super().apply(account)
            account.references.add(self.reference)

    def grant(self, kind: GrantKind, amount: int, reference: str, reason: str | None = None) -> bool:
        """Adds credits once per reference; returns False when the reference was already granted."""
        if amount <= 0:
            raise InvalidAmount("A grant is a positive number of credits.")
        if reference in self.references:
            return False
        allowance, topup = (self.allowance + amount, self.topup) if kind == "grant" else (self.allowance, self.topup + amount)
        self._record(
            self.Granted,
            kind=kind,
            amount=amount,
            reference=reference,
            reason=reason,
            allowance_after=allowance,
            topup_after=topup,
        )
        return True

    class Adjusted(BalanceChanged):
        amount: int
        reference: str
        reason: str

        def apply(self, account: CreditAccount) -> None:
            super().apply(account)
            account.references.add(self.reference)

    def adjust(self, amount: int, reference: str, reason: str) -> bool:
        """An operator's correction: added credits are top-ups (they never expire); removed credits
        come from the allowance first. Never below zero; once per reference."""
        if amount == 0:
            raise InvalidAmount("An adjustment adds or removes at least one credit.")
        if reference in self.references:
            return False
        if -amount > self.balance:
            raise InsufficientCredits(required=-amount, available=self.balance)
        from_allowance = min(-amount, self.allowance) if amount < 0 else 0
        self._record(
            self.Adjusted,
            amount=amount,
            reference=reference,
            reason=reason,
            allowance_after=self.allowance - from_allowance,
            topup_after=self.topup + (amount if amount > 0 else -(-amount - from_allowance)),
        )
        return True

    # Spending

    class Debited(BalanceChanged):
        job_id: UUID
        job_type: str
        amount: int
        from_allowance: int
        from_topup: int

        def apply(self, account: CreditAccount) -> None:
            super().apply(account)
            account.used_this_period += self.amount

    def debit(self, job_id: UUID, amount: int, job_type: str) -> Charge:
        """Charges a job; the returned Charge is the job's to keep."""
        if amount <= 0:
            raise InvalidAmount("A debit is a positive number of credits.")
        if amount > self.balance:
            raise InsufficientCredits(required=amount, available=self.balance)
        from_allowance = min(amount, self.allowance)
        from_topup = amount - from_allowance
        self._record(
            self.Debited,
            job_id=job_id,
            job_type=job_type,
            amount=amount,
            from_allowance=from_allowance,
            from_topup=from_topup,
            allowance_after=self.allowance - from_allowance,
            topup_after=self.topup - from_topup,
        )
        return Charge(amount, from_allowance, from_topup, period=self.period_index)

    class Refunded(BalanceChanged):
        job_id: UUID
        job_type: str
        amount: int
        reason: str
        to_allowance: int
        to_topup: int
        charged_in_period: int

        # v1 (the first release) knew only copy jobs and one period.
        class_version = 2

        @staticmethod
        def upcast_v1_v2(state: dict[str, Any]) -> None:
            state.setdefault("job_type", "copy")
            state.setdefault("charged_in_period", 0)

        def apply(self, account: CreditAccount) -> None:
            super().apply(account)
            # A job charged in an earlier period was never part of this period's use.
            if self.charged_in_period == account.period_index:
                account.used_this_period -= self.amount

    def refund(self, job_id: UUID, job_type: str, refund: Refund, reason: str) -> int:
        """Gives back what a job's Charge says is refundable; returns the credits refunded."""
        if refund.to_allowance < 0 or refund.to_topup < 0:
            raise InvalidAmount("A refund gives credits back, never takes them.")
        if refund.amount == 0:
            return 0
        self._record(
            self.Refunded,
            job_id=job_id,
            job_type=job_type,
            amount=refund.amount,
            reason=reason,
            to_allowance=refund.to_allowance,
            to_topup=refund.to_topup,
            charged_in_period=refund.charged_in_period,
            allowance_after=self.allowance + refund.to_allowance,
            topup_after=self.topup + refund.to_topup,
        )
        return refund.amount

    # Periods and plans

    class PeriodReset(BalanceChanged):
        period_index: int
        period_start: datetime
        plan: str
        expired: int

        def apply(self, account: CreditAccount) -> None:
            super().apply(account)
            account.period_index = self.period_index
            account.period_start = self.period_start
            account.plan = self.plan
            account.next_plan = None
            account.used_this_period = 0

    def renew(self, now: datetime, pricing: Pricing) -> bool:
        """Starts the period that `now` falls in, if it has not started yet: the unused allowance
        expires and the plan's allowance is granted. Returns False when nothing was due."""
        if now < self.period_end:
            return False
        index = self.period_index + 1
        while add_months(self.anchor, index + 1) <= now:
            index += 1
        self._record(
            self.PeriodReset,
            period_index=index,
            period_start=add_months(self.anchor, index),
            plan=self.next_plan or self.plan,
            expired=self.allowance,
            allowance_after=0,
            topup_after=self.topup,
        )
        self._grant_allowance(pricing)
        return True

    def _grant_allowance(self, pricing: Pricing) -> None:
        if pricing.monthly_credits(self.plan) == 0:
            return
        self.grant(
            "grant",
            pricing.monthly_credits(self.plan),
            reference=f"allowance:{self.period_index}",
            reason=f"{self.plan} plan allowance for the period from {self.period_start.date().isoformat()}",
        )

    class PlanChanged(WorkspaceAggregate.Event):
        plan: str
        effective_at: datetime
        immediate: bool

        def apply(self, account: CreditAccount) -> None:
            if self.immediate:
                account.plan = self.plan
                account.next_plan = None
            else:
                account.next_plan = self.plan

    def change_plan(self, plan: str, now: datetime, pricing: Pricing) -> None:
        """An upgrade applies now with the rest of the period's extra credits; a downgrade at the next period."""
        check_plan(plan)
        if plan == (self.next_plan or self.plan):
            return
        old, new = pricing.monthly_credits(self.plan), pricing.monthly_credits(plan)
        if new <= old:
            self._record(self.PlanChanged, plan=plan, effective_at=self.period_end, immediate=False)
            return
        self._record(self.PlanChanged, plan=plan, effective_at=now, immediate=True)
        # Whole microseconds, so the pro-rated grant is the exact floor, never one short.
        length = (self.period_end - self.period_start) // timedelta(microseconds=1)
        left = min(max((self.period_end - now) // timedelta(microseconds=1), 0), length)
        extra = (new - old) * left // length
        if extra > 0:
            self.grant("grant", extra, reference=f"upgrade:{self.period_index}:{plan}", reason=f"upgrade to {plan}, pro-rated")
