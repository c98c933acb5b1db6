"""The credit accounts read model: each workspace's balances and period, for the sweeper and for audits
that compare the projected balance with the account and the ledger."""

from __future__ import annotations

from datetime import datetime
from typing import Any
from uuid import UUID

import msgspec
import psycopg
from psycopg_pool import ConnectionPool

from domain.credit_account import CreditAccount, add_months
from projections.engine import Batch, Event, evolve_rows, write_rows


class AccountRow(msgspec.Struct, kw_only=True):
    workspace_id: UUID
    plan: str
    next_plan: str | None = None
    anchor: datetime
    period_index: int = 0
    period_start: datetime
    period_end: datetime
    allowance: int = 0
    topup: int = 0
    used_this_period: int = 0
    updated_at: datetime


def evolve(row: AccountRow | None, event: Event) -> AccountRow | None:
    """The row after one event; events of other aggregates leave it as it was."""
    if isinstance(event, CreditAccount.Opened):
        return AccountRow(
            workspace_id=event.workspace_id,
            plan=event.plan,
            anchor=event.period_start,
            period_start=event.period_start,
            period_end=add_months(event.period_start, 1),
            updated_at=event.timestamp,
        )
    if row is None or not isinstance(event, CreditAccount.Event):
        return row
    row = msgspec.structs.replace(row, updated_at=event.timestamp)
    if isinstance(event, CreditAccount.BalanceChanged):
        row = msgspec.structs.replace(row, allowance=event.allowance_after, topup=event.topup_after)
    match event:
        case CreditAccount.Debited():
            return msgspec.structs.replace(row, used_this_period=row.used_this_period + event.amount)
        case CreditAccount.Refunded() if event.charged_in_period == row.period_index:
            return msgspec.structs.replace(row, used_this_period=row.used_this_period - event.amount)
        case CreditAccount.PeriodReset():
            return msgspec.structs.replace(
                row,
                plan=event.plan,
                next_plan=None,
                period_index=event.period_index,
                period_start=event.period_start,
                period_end=add_months(row.anchor, event.period_index + 1),
                used_this_period=0,
            )
        case CreditAccount.PlanChanged(immediate=True):
            return msgspec.structs.replace(row, plan=event.plan, next_plan=None)
        case CreditAccount.PlanChanged():
            return msgspec.structs.replace(row, next_plan=event.plan)
    return row


class CreditAccountsReadModel:
    name = "credit_accounts"
    handles = CreditAccount.Event
    ddl = (
        """CREATE TABLE IF NOT EXISTS credit_accounts (
            workspace_id uuid PRIMARY KEY, plan text NOT NULL, next_plan text, anchor timestamptz NOT NULL,
            period_index int NOT NULL, period_start timestamptz NOT NULL, period_end timestamptz NOT NULL,
            allowance int NOT NULL, topup int NOT NULL, used_this_period int NOT NULL, updated_at timestamptz NOT NULL)""",
        "CREATE INDEX IF NOT EXISTS credit_accounts_by_period_end ON credit_accounts (period_end)",
    )

    def apply(self, cursor: psycopg.Cursor[Any], batch: Batch) -> None:
        rows = evolve_rows(
            cursor,
            batch,
            table="credit_accounts",
            key="workspace_id",
            row_type=AccountRow,
            key_of=lambda event: event.workspace_id if isinstance(event, CreditAccount.Event) else None,
            evolve=evolve,
        ).rows
        write_rows(cursor, "credit_accounts", rows, upsert_on="workspace_id")


def due_for_renewal(pool: ConnectionPool[Any], now: datetime, limit: int = 500) -> list[UUID]:
    with pool.connection() as conn:
        rows = conn.execute(
            "SELECT workspace_id FROM credit_accounts WHERE period_end <= %s ORDER BY period_end LIMIT %s", (now, limit)
        ).fetchall()
    return [row[0] for row in rows]


def projected_balance(pool: ConnectionPool[Any], workspace_id: UUID) -> int | None:
    with pool.connection() as conn:
        row = conn.execute("SELECT allowance + topup FROM credit_accounts WHERE workspace_id = %s", (workspace_id,)).fetchone()
    return None if row is None else int(row[0])
