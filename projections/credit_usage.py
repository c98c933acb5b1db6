"""The credit usage read model: what each job cost net of refunds, on the day it was charged."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from typing import Any
from uuid import UUID

import msgspec
import psycopg
from psycopg_pool import ConnectionPool

from domain.credit_account import CreditAccount
from domain.pricing import JOB_TYPES
from projections.engine import Batch, write_rows


class UsageRow(msgspec.Struct):
    job_id: UUID
    workspace_id: UUID
    job_type: str
    day: date
    credits: int


class DailyUsage(msgspec.Struct):
    date: date
    credits: int


class Usage(msgspec.Struct):
    period_days: int
    total_credits: int
    by_type: dict[str, int]
    daily: list[DailyUsage]
    lifetime: int


class CreditUsageReadModel:
    name = "credit_usage"
    handles = CreditAccount.Event
    ddl = (
        """CREATE TABLE IF NOT EXISTS credit_usage (
            job_id uuid PRIMARY KEY, workspace_id uuid NOT NULL, job_type text NOT NULL, day date NOT NULL,
            credits int NOT NULL)""",
        "CREATE INDEX IF NOT EXISTS credit_usage_by_day ON credit_usage (workspace_id, day)",
    )

    def apply(self, cursor: psycopg.Cursor[Any], batch: Batch) -> None:
        # A refund always comes after its debit in the log, so a batch's inserts can all go first.
        charged = [
            UsageRow(e.job_id, e.workspace_id, e.job_type, utc_day(e.timestamp), e.amount)
            for _, e in batch
            if isinstance(e, CreditAccount.Debited)
        ]
        refunded = [(e.amount, e.job_id) for _, e in batch if isinstance(e, CreditAccount.Refunded)]
        # A debit is recorded once, and the tracking position makes each batch apply exactly once.
        write_rows(cursor, "credit_usage", charged)
        if refunded:
            # A refund lowers the job's cost on the day it was charged, so no day goes negative.
            cursor.executemany("UPDATE credit_usage SET credits = credits - %s WHERE job_id = %s", refunded)


def utc_day(moment: datetime) -> date:
    return moment.astimezone(UTC).date()


def usage(pool: ConnectionPool[Any], workspace_id: UUID, *, days: int, today: date) -> Usage:
    """Usage over the `days` days ending `today` (UTC), every day present, and over all time."""
    first = today - timedelta(days=days - 1)
    with pool.connection() as conn:
        per_day = dict(
            conn.execute(
                "SELECT day, SUM(credits) FROM credit_usage WHERE workspace_id = %s AND day BETWEEN %s AND %s GROUP BY day",
                (workspace_id, first, today),
            ).fetchall()
        )
        per_type = dict(
            conn.execute(
                "SELECT job_type, SUM(credits) FROM credit_usage WHERE workspace_id = %s AND day BETWEEN %s AND %s GROUP BY job_type",
                (workspace_id, first, today),
            ).fetchall()
        )
        (lifetime,) = conn.execute(
            "SELECT COALESCE(SUM(credits), 0) FROM credit_usage WHERE workspace_id = %s", (workspace_id,)
        ).fetchone() or (0,)
    daily = [DailyUsage(date=first + timedelta(days=n), credits=int(per_day.get(first + timedelta(days=n), 0))) for n in range(days)]
    return Usage(
        period_days=days,
        total_credits=sum(day.credits for day in daily),
        by_type={job_type: int(per_type.get(job_type, 0)) for job_type in JOB_TYPES},
        daily=daily,
        lifetime=int(lifetime),
    )
