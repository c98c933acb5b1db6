"""What publishing reads from the posts and connections read models (application.publishing.PublishingQueries)."""

from __future__ import annotations

from datetime import datetime
from typing import Any
from uuid import UUID

from psycopg_pool import ConnectionPool

from domain.schedule import AccountRef
from projections.connections import account_refs
from projections.posts import earlier_post_open, posts_of_account, published_since

OPEN_STATUSES = ("draft", "scheduled", "retry_pending")


class PublishingReadModels:
    def __init__(self, pool: ConnectionPool[Any]) -> None:
        self.pool = pool

    def account_refs(self, workspace_id: UUID) -> list[AccountRef]:
        return [
            AccountRef(id=row.id, provider=row.provider, handle=row.handle, status=row.status)
            for row in account_refs(self.pool, workspace_id)
            if row.handle is not None
        ]

    def open_posts_of_account(self, account_id: UUID) -> list[UUID]:
        return posts_of_account(self.pool, account_id, OPEN_STATUSES)

    def published_since(self, account_id: UUID, since: datetime) -> int:
        return published_since(self.pool, account_id, since)

    def earlier_post_open(self, account_id: UUID, post_id: UUID, publish_at: datetime) -> bool:
        return earlier_post_open(self.pool, account_id, post_id, publish_at)
