"""CreditAccount: one per workspace; the ledger of every credit granted, spent and refunded.

Two balances: the plan allowance (replaced each period) and top-ups (never expire).
Debits take the allowance first; refunds give back top-up credits first, since those never expire.
The balance never goes below zero, and a job is never refunded more than it was charged.
"""

from __future__ import annotations

import calendar
from datetime import datetime
from typing import Any, Literal, NamedTuple
from uuid import NAMESPACE_URL, UUID, uuid5

from domain.base import WorkspaceAggregate
from domain.errors import InsufficientCredits, InvalidAmount

_ACCOUNT_NAMESPACE = uuid5(NAMESPACE_URL, "pressroom:credit-account")

GrantKind = Literal["grant", "topup"]


class Charge(NamedTuple):
    """What one job was charged, and how much of it has come back (immutable, so copies are cheap)."""

    amount: int
    from_allowance: int
    from_topup: int
    refunded_allowance: int = 0
    refunded_topup: int = 0

    @property
    def refundable(self) -> int:
        return self.amount - self.refunded_allowance - self.refunded_topup


class CreditAccount(WorkspaceAggregate):
    FAMILY = "credits"
    EVENT_PREFIX = "credits"

    class Opened(WorkspaceAggregate.Created):
        plan: str
        period_start: datetime

    def __init__(self, workspace_id: UUID, plan: str, period_start: datetime) -> None:
        self.workspace_id = workspace_id
        self.plan = plan
        self.period_start = period_start
        self.allowance = 0
        self.topup = 0
        self.references: set[str] = set()
        self.charges: dict[UUID, Charge] = {}
        self.used_this_period = 0

    @staticmethod
    def id_for(workspace_id: UUID) -> UUID:
        return uuid5(_ACCOUNT_NAMESPACE, str(workspace_id))

    @classmethod
    def open(cls, workspace_id: UUID, plan: str, period_start: datetime) -> CreditAccount:
        return cls._create(
            cls.Opened, id=cls.id_for(workspace_id), workspace_id=workspace_id, plan=plan, period_start=period_start
        )

    def __deepcopy__(self, memo: dict[int, Any]) -> CreditAccount:
        # Loads copy the cached account; its collections hold only immutable values, so
        # copying the containers is a full copy, and far cheaper than a generic deep copy.
        clone = object.__new__(CreditAccount)
        clone.__dict__.update(self.__dict__)
        clone.references = set(self.references)
        clone.charges = dict(self.charges)
        clone._pending_events = []
        return clone

    @property
    def period_end(self) -> datetime:
        """A month after the period's start, on the same day where the month has it, else its last day."""
        year, month = divmod(self.period_start.month, 12)
        next_year, next_month = self.period_start.year + year, month + 1
        last_day = calendar.monthrange(next_year, next_month)[1]
        return self.period_start.replace(year=next_year, month=next_month, day=min(self.period_start.day, last_day))

    @property
    def balance(self) -> int:
        return self.allowance + self.topup

    class BalanceChanged(WorkspaceAggregate.Event):
        allowance_after: int
        topup_after: int

        def apply(self, account: CreditAccount) -> None:
            account.allowance = self.allowance_after
            account.topup = self.topup_after

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

    class Debited(BalanceChanged):
        job_id: UUID
        job_type: str
        amount: int
        from_allowance: int
        from_topup: int

        def apply(self, account: CreditAccount) -> None:
            super().apply(account)
            account.charges[self.job_id] = Charge(self.amount, self.from_allowance, self.from_topup)
            account.used_this_period += self.amount

    def debit(self, job_id: UUID, amount: int, job_type: str) -> None:
        if amount <= 0:
            raise InvalidAmount("A debit is a positive number of credits.")
        if job_id in self.charges:
            return
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

    class Refunded(BalanceChanged):
        job_id: UUID
        amount: int
        reason: str
        to_allowance: int
        to_topup: int

        def apply(self, account: CreditAccount) -> None:
            super().apply(account)
            charge = account.charges[self.job_id]
            account.charges[self.job_id] = charge._replace(
                refunded_allowance=charge.refunded_allowance + self.to_allowance,
                refunded_topup=charge.refunded_topup + self.to_topup,
            )
            account.used_this_period -= self.amount

    def refund(self, job_id: UUID, amount: int, reason: str) -> int:
        """Gives back up to `amount` of what the job was charged; returns what was refunded."""
        charge = self.charges.get(job_id)
        if charge is None or amount <= 0:
            return 0
        amount = min(amount, charge.refundable)
        if amount == 0:
            return 0
        to_topup = min(amount, charge.from_topup - charge.refunded_topup)
        to_allowance = amount - to_topup
        self._record(
            self.Refunded,
            job_id=job_id,
            amount=amount,
            reason=reason,
            to_allowance=to_allowance,
            to_topup=to_topup,
            allowance_after=self.allowance + to_allowance,
            topup_after=self.topup + to_topup,
        )
        return amount

    def charged_for(self, job_id: UUID) -> int:
        charge = self.charges.get(job_id)
        return 0 if charge is None else charge.amount
