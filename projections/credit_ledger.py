"""The credit ledger read model: one row per credit movement, newest first, with the balance after it."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal, cast
from uuid import NAMESPACE_URL, UUID, uuid5

import msgspec
import psycopg
from psycopg.rows import class_row
from psycopg_pool import ConnectionPool

from application.integration_events import event_ids
from domain.credit_account import CreditAccount
from projections.engine import Batch, Event, write_rows
from projections.paging import InvalidCursor, decode_cursor, encode_cursor

EntryType = Literal["grant", "topup", "debit", "refund", "reset"]
_entry_id = event_ids(uuid5(NAMESPACE_URL, "pressroom:ledger-entry"))


class LedgerEntry(msgspec.Struct, kw_only=True):
    id: UUID
    workspace_id: UUID
    position: int
    type: EntryType
    amount: int
    balance_after: int
    job_id: UUID | None = None
    reference: str | None = None
    reason: str | None = None
    created_at: datetime


def entry_of(position: int, event: Event) -> LedgerEntry | None:
    """The ledger entry an event makes, if it moves credits."""
    match event:
        case CreditAccount.Granted():
            return _entry(position, event, cast(EntryType, event.kind), event.amount, reference=event.reference, reason=event.reason)
        case CreditAccount.Debited():
            return _entry(position, event, "debit", event.amount, job_id=event.job_id, reason=event.job_type)
        case CreditAccount.Refunded():
            return _entry(position, event, "refund", event.amount, job_id=event.job_id, reason=event.reason)
        case CreditAccount.Adjusted():
            direction: EntryType = "grant" if event.amount > 0 else "debit"
            return _entry(position, event, direction, abs(event.amount), reference=event.reference, reason=event.reason)
        case CreditAccount.PeriodReset() if event.expired > 0:
            return _entry(position, event, "reset", event.expired, reason="unused allowance expired at the period's end")
    return None


def _entry(
    position: int,
    event: CreditAccount.BalanceChanged,
    kind: EntryType,
    amount: int,
    *,
    job_id: UUID | None = None,
    reference: str | None = None,
    reason: str | None = None,
) -> LedgerEntry:
    return LedgerEntry(
        id=_entry_id(event.originator_id, event.originator_version),
        workspace_id=event.workspace_id,
        position=position,
        type=kind,
        amount=amount,
        balance_after=event.allowance_after + event.topup_after,
        job_id=job_id,
        reference=reference,
        reason=reason,
        created_at=event.timestamp,
    )


class CreditLedgerReadModel:
    name = "credit_ledger"
    handles = CreditAccount.Event
    ddl = (
        """CREATE TABLE IF NOT EXISTS credit_ledger (
            id uuid PRIMARY KEY, workspace_id uuid NOT NULL, position bigint NOT NULL, type text NOT NULL,
            amount int NOT NULL, balance_after int NOT NULL, job_id uuid, reference text, reason text,
            created_at timestamptz NOT NULL)""",
        "CREATE INDEX IF NOT EXISTS credit_ledger_by_workspace ON credit_ledger (workspace_id, position DESC)",
    )

    def apply(self, cursor: psycopg.Cursor[Any], batch: Batch) -> None:
        # Append-only: the tracking position makes each batch apply exactly once.
        write_rows(cursor, "credit_ledger", [entry for position, event in batch if (entry := entry_of(position, event)) is not None])


class LedgerPage(msgspec.Struct):
    transactions: list[LedgerEntry]
    next_cursor: str | None


def list_transactions(pool: ConnectionPool[Any], workspace_id: UUID, *, limit: int = 50, cursor: str | None = None) -> LedgerPage:
    before = None
    if cursor is not None:
        (position,) = decode_cursor(cursor, 1)
        if not position.isdigit():
            raise InvalidCursor("This cursor is not one this API gave out.")
        before = int(position)
    with pool.connection() as conn, conn.cursor(row_factory=class_row(LedgerEntry)) as cur:
        rows = cur.execute(
            "SELECT * FROM credit_ledger WHERE workspace_id = %s AND (%s::bigint IS NULL OR position < %s) ORDER BY position DESC LIMIT %s",
            (workspace_id, before, before, limit + 1),
        ).fetchall()
    next_cursor = encode_cursor(rows[limit - 1].position) if len(rows) > limit else None
    return LedgerPage(transactions=rows[:limit], next_cursor=next_cursor)
