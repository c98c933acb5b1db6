"""PostgreSQL advisory locks as a KeyedLock: one holder per key across every process on the database.

Transaction-scoped (`pg_try_advisory_xact_lock`), so a holder that dies, or whose connection breaks,
lets go with its transaction. A key is a UUID within a named scope, folded into the lock's bigint.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any
from uuid import UUID

from psycopg_pool import ConnectionPool


class AdvisoryLocks:
    def __init__(self, pool: ConnectionPool[Any], scope: str) -> None:
        self.pool = pool
        self.scope = scope

    def lock_id(self, key: UUID) -> int:
        digest = hashlib.sha256(f"{self.scope}\x00{key}".encode()).digest()
        return int.from_bytes(digest[:8], "big", signed=True)

    @contextmanager
    def hold(self, key: UUID) -> Iterator[bool]:
        """Yields True while this caller holds the key's lock, False (at once, without waiting) if another does."""
        with self.pool.connection() as conn, conn.transaction():
            row = conn.execute("SELECT pg_try_advisory_xact_lock(%s)", (self.lock_id(key),)).fetchone()
            yield bool(row and row[0])
