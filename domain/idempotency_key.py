"""IdempotencyKey: a client's key for one request, claimed by exactly one job for 24 hours.

Its id follows from (workspace, key), so two racing requests try to create the same
aggregate and the event store's version check lets exactly one win.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from uuid import NAMESPACE_URL, UUID, uuid5

from domain.base import WorkspaceAggregate
from domain.errors import IdempotencyKeyReused, InvalidState

KEY_LIFETIME = timedelta(hours=24)
_IDEMPOTENCY_NAMESPACE = uuid5(NAMESPACE_URL, "pressroom:idempotency-key")


class IdempotencyKey(WorkspaceAggregate):
    FAMILY = "jobs"
    EVENT_PREFIX = "idempotency_key"

    class Claimed(WorkspaceAggregate.Created):
        key: str
        fingerprint: str
        job_id: UUID
        claimed_at: datetime

    def __init__(self, workspace_id: UUID, key: str, fingerprint: str, job_id: UUID, claimed_at: datetime) -> None:
        self.workspace_id = workspace_id
        self.key = key
        self.fingerprint = fingerprint
        self.job_id = job_id
        self.claimed_at = claimed_at

    @staticmethod
    def id_for(workspace_id: UUID, key: str) -> UUID:
        return uuid5(_IDEMPOTENCY_NAMESPACE, f"{workspace_id}:{key}")

    @classmethod
    def claim(cls, workspace_id: UUID, key: str, fingerprint: str, job_id: UUID, now: datetime) -> IdempotencyKey:
        return cls._create(
            cls.Claimed,
            id=cls.id_for(workspace_id, key),
            workspace_id=workspace_id,
            key=key,
            fingerprint=fingerprint,
            job_id=job_id,
            claimed_at=now,
        )

    def is_live(self, now: datetime) -> bool:
        return now < self.claimed_at + KEY_LIFETIME

    def replay(self, fingerprint: str) -> UUID:
        """The job this key already made, if the request is the same one."""
        if fingerprint != self.fingerprint:
            raise IdempotencyKeyReused("This Idempotency-Key was used with a different request body in the last 24 hours.")
        return self.job_id

    class Reclaimed(WorkspaceAggregate.Event):
        fingerprint: str
        job_id: UUID
        claimed_at: datetime

        def apply(self, key: IdempotencyKey) -> None:
            key.fingerprint = self.fingerprint
            key.job_id = self.job_id
            key.claimed_at = self.claimed_at

    def reclaim(self, fingerprint: str, job_id: UUID, now: datetime) -> None:
        """After 24 hours a key may name a new request."""
        if self.is_live(now):
            raise InvalidState("This key still names its request for 24 hours after it was claimed.")
        self._record(self.Reclaimed, fingerprint=fingerprint, job_id=job_id, claimed_at=now)
