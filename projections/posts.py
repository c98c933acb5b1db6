"""The posts read model: one row per post, for lists, runs, the scheduler and rate limits.

Each row is a pure function of its post's events (`evolve`), and mirrors what `Post`'s events do to
the aggregate: its status, its attempts, its error, and `due_at`, the time the scheduler compares with
now (`next_attempt_at or publish_at`, as `Post.due_at`). `next_attempt_at` is kept as its own column
so that `due_at` can be recomputed exactly whichever event moves `publish_at` or the next attempt.
"""

from __future__ import annotations

from collections.abc import Collection
from datetime import datetime
from typing import Any, cast
from uuid import UUID

import msgspec
import psycopg
from psycopg.rows import class_row
from psycopg.types.json import Jsonb
from psycopg_pool import ConnectionPool

from domain.post import Outcome, Post, Status
from projections.engine import Batch, Event, evolve_rows, upsert_statement


class AttemptRow(msgspec.Struct, kw_only=True, rename="camel"):
    """One publishing attempt, stored (and served) as `{n, startedAt, finishedAt, outcome, error, httpStatus}`."""

    n: int
    started_at: datetime
    finished_at: datetime | None = None
    outcome: Outcome | None = None
    error: str | None = None
    http_status: int | None = None


class PostRow(msgspec.Struct, kw_only=True):
    id: UUID
    workspace_id: UUID
    run_id: UUID
    account_id: UUID
    provider: str
    handle: str
    text: str
    assets: list[str]
    publish_at: datetime
    next_attempt_at: datetime | None = None
    due_at: datetime
    local_time: str | None
    timezone: str
    name: str | None
    campaign_id: UUID | None
    status: Status
    provider_post_id: str | None = None
    provider_url: str | None = None
    error_code: str | None = None
    error_message: str | None = None
    attempts: list[AttemptRow] = msgspec.field(default_factory=list)
    delayed_reason: str | None = None
    published_at: datetime | None = None
    created_at: datetime
    updated_at: datetime

    def __post_init__(self) -> None:
        # A row read back from the table has its attempts as decoded JSON (camelCase keys, ISO times).
        if any(not isinstance(attempt, AttemptRow) for attempt in self.attempts):
            self.attempts = msgspec.convert(self.attempts, list[AttemptRow])


def _due(row: PostRow, **changes: Any) -> PostRow:
    """The row with `changes` and `due_at` recomputed from them, as `Post.due_at`."""
    row = msgspec.structs.replace(row, **changes)
    return msgspec.structs.replace(row, due_at=row.next_attempt_at or row.publish_at)


def _finished(
    row: PostRow, n: int, at: datetime, outcome: Outcome, error: str | None = None, http_status: int | None = None
) -> list[AttemptRow]:
    """The attempts with attempt `n` finished, as `Post._finish`."""
    return [
        msgspec.structs.replace(attempt, finished_at=at, outcome=outcome, error=error, http_status=http_status)
        if attempt.n == n
        else attempt
        for attempt in row.attempts
    ]


def _settled_published(provider_post_id: str | None, url: str | None, at: datetime) -> dict[str, Any]:
    """What `_settle_published` changes on a post."""
    return {
        "status": "published",
        "provider_post_id": provider_post_id,
        "provider_url": url,
        "published_at": at,
        "next_attempt_at": None,
        "error_code": None,
        "error_message": None,
    }


def evolve(row: PostRow | None, event: Event) -> PostRow | None:  # noqa: PLR0912 - one case per event
    """The row after one event; events of other aggregates leave it as it was."""
    if isinstance(event, Post.Created):
        return PostRow(
            id=event.originator_id,
            workspace_id=event.workspace_id,
            run_id=event.run_id,
            account_id=event.account_id,
            provider=event.provider,
            handle=event.handle,
            text=event.text,
            assets=list(event.assets),
            publish_at=event.publish_at,
            due_at=event.publish_at,
            local_time=event.local_time,
            timezone=event.timezone,
            name=event.name,
            campaign_id=event.campaign_id,
            status=cast(Status, event.status),
            created_at=event.timestamp,
            updated_at=event.timestamp,
        )
    if row is None or not isinstance(event, Post.Event):
        return row
    row = msgspec.structs.replace(row, updated_at=event.timestamp)
    match event:
        case Post.Scheduled():
            return _due(row, status="scheduled", publish_at=event.publish_at, local_time=event.local_time, timezone=event.timezone)
        case Post.PublishRequested():
            return msgspec.structs.replace(row, status="publishing")
        case Post.Delayed():
            return _due(row, status="scheduled", next_attempt_at=event.until, delayed_reason=event.reason)
        case Post.AttemptStarted():
            return msgspec.structs.replace(row, attempts=[*row.attempts, AttemptRow(n=event.n, started_at=event.at)])
        case Post.Published():
            attempts = _finished(row, event.n, event.at, "published")
            return _due(row, attempts=attempts, **_settled_published(event.provider_post_id, event.url, event.at))
        case Post.AttemptFailed():
            attempts = _finished(row, event.n, event.at, "failed", event.error, event.http_status)
            if event.retry_at is None:
                return msgspec.structs.replace(row, attempts=attempts)
            return _due(row, attempts=attempts, status="retry_pending", next_attempt_at=event.retry_at)
        case Post.OutcomeUnknown():
            attempts = _finished(row, event.n, event.at, "unknown", event.error)
            return msgspec.structs.replace(
                row, attempts=attempts, status="unknown", error_code="outcome_unknown", error_message=event.error
            )
        case Post.Reconciled():
            if event.published:
                return _due(row, **_settled_published(event.provider_post_id, event.url, event.at))
            return _due(row, status="retry_pending", next_attempt_at=event.at, error_code=None, error_message=None)
        case Post.Failed():
            return _due(row, status="failed", next_attempt_at=None, error_code=event.reason, error_message=event.message)
        case Post.Canceled():
            return _due(row, status="canceled", next_attempt_at=None)
        case Post.RetryRequested():
            return _due(row, status="scheduled", next_attempt_at=event.at, error_code=None, error_message=None)
        case Post.Deleted():
            return msgspec.structs.replace(row, status="deleted")
    return row


COLUMNS = list(PostRow.__struct_fields__)
JSONB = frozenset({"assets", "attempts"})
UPSERT = upsert_statement("posts", COLUMNS)


def _params(row: PostRow) -> list[Any]:
    return [
        Jsonb(msgspec.to_builtins(value)) if column in JSONB else value
        for column, value in zip(COLUMNS, msgspec.structs.astuple(row), strict=True)
    ]


class PostsReadModel:
    name = "posts"
    handles = Post.Event
    ddl = (
        """CREATE TABLE IF NOT EXISTS posts (
            id uuid PRIMARY KEY, workspace_id uuid NOT NULL, run_id uuid NOT NULL, account_id uuid NOT NULL,
            provider text NOT NULL, handle text NOT NULL, text text NOT NULL, assets jsonb NOT NULL,
            publish_at timestamptz NOT NULL, next_attempt_at timestamptz, due_at timestamptz NOT NULL,
            local_time text, timezone text NOT NULL, name text, campaign_id uuid, status text NOT NULL,
            provider_post_id text, provider_url text, error_code text, error_message text, attempts jsonb NOT NULL,
            delayed_reason text, published_at timestamptz, created_at timestamptz NOT NULL, updated_at timestamptz NOT NULL)""",
        "CREATE INDEX IF NOT EXISTS posts_by_workspace ON posts (workspace_id, publish_at, id)",
        "CREATE INDEX IF NOT EXISTS posts_by_run ON posts (run_id, publish_at)",
        "CREATE INDEX IF NOT EXISTS posts_due ON posts (due_at) WHERE status IN ('scheduled', 'retry_pending')",
        "CREATE INDEX IF NOT EXISTS posts_published_by_account ON posts (account_id, published_at)",
        "CREATE INDEX IF NOT EXISTS posts_unsettled ON posts (updated_at) WHERE status IN ('publishing', 'unknown')",
        "CREATE INDEX IF NOT EXISTS posts_open_by_account ON posts (account_id, publish_at) "
        "WHERE status IN ('scheduled', 'publishing', 'unknown', 'retry_pending')",
    )

    def apply(self, cursor: psycopg.Cursor[Any], batch: Batch) -> None:
        rows = evolve_rows(
            cursor,
            batch,
            table="posts",
            key="id",
            row_type=PostRow,
            key_of=lambda event: event.originator_id if isinstance(event, Post.Event) else None,
            evolve=evolve,
        ).rows
        if rows:
            cursor.executemany(UPSERT, [_params(row) for row in rows])


def _account_filter(account: UUID | str) -> tuple[str, Any]:
    """`account` is an account's id, or its handle (`provider:name`)."""
    if isinstance(account, UUID):
        return "account_id = %s", account
    try:
        return "account_id = %s", UUID(account)
    except ValueError:
        return "handle = %s", account


def list_posts(
    pool: ConnectionPool[Any],
    workspace_id: UUID,
    *,
    run_id: UUID | None = None,
    status: str | None = None,
    account: UUID | str | None = None,
    provider: str | None = None,
    campaign_id: UUID | None = None,
    from_: datetime | None = None,
    to: datetime | None = None,
    limit: int = 50,
    offset: int = 0,
) -> tuple[int, list[PostRow]]:
    """How many of the workspace's posts match, and a page of them by publish time.
    `from_` and `to` bound `publish_at` as a half-open range: `from_ <= publish_at < to`."""
    where = ["workspace_id = %s"]
    params: list[Any] = [workspace_id]
    for column, value in (("run_id", run_id), ("status", status), ("provider", provider), ("campaign_id", campaign_id)):
        if value is not None:
            where.append(f"{column} = %s")
            params.append(value)
    if account is not None:
        condition, value = _account_filter(account)
        where.append(condition)
        params.append(value)
    if from_ is not None:
        where.append("publish_at >= %s")
        params.append(from_)
    if to is not None:
        where.append("publish_at < %s")
        params.append(to)
    clause = " AND ".join(where)
    with pool.connection() as conn:
        count = conn.execute(f"SELECT count(*) FROM posts WHERE {clause}", params).fetchone()
        with conn.cursor(row_factory=class_row(PostRow)) as cur:
            rows = cur.execute(
                f"SELECT * FROM posts WHERE {clause} ORDER BY publish_at, id LIMIT %s OFFSET %s", [*params, limit, offset]
            ).fetchall()
    return (count[0] if count is not None else 0), rows


def get_post(pool: ConnectionPool[Any], workspace_id: UUID, post_id: UUID) -> PostRow | None:
    """The post, if it is the workspace's."""
    with pool.connection() as conn, conn.cursor(row_factory=class_row(PostRow)) as cur:
        row: PostRow | None = cur.execute("SELECT * FROM posts WHERE id = %s AND workspace_id = %s", (post_id, workspace_id)).fetchone()
    return row


def due_posts(pool: ConnectionPool[Any], now: datetime, limit: int = 500) -> list[UUID]:
    """Scheduled and retry_pending posts due by `now`, the longest due first: what the scheduler hands out.
    Only each account's first open post is handed out, so an account's posts go out in order."""
    with pool.connection() as conn:
        rows = conn.execute(
            "SELECT p.id FROM posts p WHERE p.status IN ('scheduled', 'retry_pending') AND p.due_at <= %s "
            "AND NOT EXISTS (SELECT 1 FROM posts e WHERE e.account_id = p.account_id AND e.publish_at < p.publish_at "
            "AND e.status IN ('scheduled', 'publishing', 'unknown', 'retry_pending')) "
            "ORDER BY p.due_at, p.id LIMIT %s",
            (now, limit),
        ).fetchall()
    return [row[0] for row in rows]


def unsettled_posts(pool: ConnectionPool[Any], statuses: Collection[str], idle_since: datetime, limit: int = 500) -> list[UUID]:
    """Posts in any of `statuses` (publishing, unknown) that have not changed since `idle_since`: for the sweeper."""
    with pool.connection() as conn:
        rows = conn.execute(
            "SELECT id FROM posts WHERE status = ANY(%s) AND updated_at < %s ORDER BY updated_at, id LIMIT %s",
            (list(statuses), idle_since, limit),
        ).fetchall()
    return [row[0] for row in rows]


def stale_handovers(pool: ConnectionPool[Any], handed_before: datetime, limit: int = 100) -> list[UUID]:
    """Posts handed over to the publishing workers before `handed_before` that no worker has started, oldest due
    first: for the scheduler to take over. (One per account at most: the scheduler hands out an account's posts
    one at a time.)"""
    with pool.connection() as conn:
        rows = conn.execute(
            "SELECT id FROM posts WHERE status = 'publishing' AND updated_at < %s "
            "AND NOT EXISTS (SELECT 1 FROM jsonb_array_elements(attempts) a WHERE a ->> 'finishedAt' IS NULL) "
            "ORDER BY publish_at, id LIMIT %s",
            (handed_before, limit),
        ).fetchall()
    return [row[0] for row in rows]


def earlier_post_open(pool: ConnectionPool[Any], account_id: UUID, post_id: UUID, publish_at: datetime) -> bool:
    """Whether a post to the same account meant to go out before `publish_at` has not gone out yet
    (scheduled, delayed, being sent, unknown or waiting for a retry)."""
    with pool.connection() as conn:
        row = conn.execute(
            "SELECT 1 FROM posts WHERE account_id = %s AND id <> %s AND publish_at < %s "
            "AND status IN ('scheduled', 'publishing', 'unknown', 'retry_pending') LIMIT 1",
            (account_id, post_id, publish_at),
        ).fetchone()
    return row is not None


def posts_of_account(pool: ConnectionPool[Any], account_id: UUID, statuses: Collection[str]) -> list[UUID]:
    """The account's posts in any of `statuses` (a disconnected account's posts to fail), by publish time."""
    with pool.connection() as conn:
        rows = conn.execute(
            "SELECT id FROM posts WHERE account_id = %s AND status = ANY(%s) ORDER BY publish_at, id", (account_id, list(statuses))
        ).fetchall()
    return [row[0] for row in rows]


def published_since(pool: ConnectionPool[Any], account_id: UUID, since: datetime) -> int:
    """How many of the account's posts were published at or after `since` (deleted ones too): for rate limits."""
    with pool.connection() as conn:
        row = conn.execute("SELECT count(*) FROM posts WHERE account_id = %s AND published_at >= %s", (account_id, since)).fetchone()
    return int(row[0]) if row is not None else 0


def run_posts(pool: ConnectionPool[Any], workspace_id: UUID, run_id: UUID) -> list[PostRow]:
    """The run's posts by publish time."""
    with pool.connection() as conn, conn.cursor(row_factory=class_row(PostRow)) as cur:
        rows: list[PostRow] = cur.execute(
            "SELECT * FROM posts WHERE run_id = %s AND workspace_id = %s ORDER BY publish_at, id", (run_id, workspace_id)
        ).fetchall()
    return rows


def status_counts(pool: ConnectionPool[Any], run_id: UUID) -> dict[str, int]:
    """How many of the run's posts are in each status (statuses no post is in are left out)."""
    with pool.connection() as conn:
        rows = conn.execute("SELECT status, count(*) FROM posts WHERE run_id = %s GROUP BY status", (run_id,)).fetchall()
    return {status: int(count) for status, count in rows}
