"""ApiKey: a workspace's credential. Only its hash and prefix are ever stored."""

from __future__ import annotations

import hashlib
from datetime import datetime
from uuid import NAMESPACE_URL, UUID, uuid5

from domain.base import WorkspaceAggregate
from domain.errors import InvalidState

SECRET_PREFIX = "pr_live_"  # noqa: S105 - a prefix, not a secret
_KEY_NAMESPACE = uuid5(NAMESPACE_URL, "pressroom:api-key")


def hash_secret(secret: str) -> str:
    # Secrets are 256-bit random strings, so a fast hash is enough to make them unguessable at rest.
    return hashlib.sha256(secret.encode()).hexdigest()


class ApiKey(WorkspaceAggregate):
    FAMILY = "workspaces"
    EVENT_PREFIX = "api_key"

    class Issued(WorkspaceAggregate.Created):
        secret_hash: str
        prefix: str
        label: str

    def __init__(self, workspace_id: UUID, secret_hash: str, prefix: str, label: str) -> None:
        self.workspace_id = workspace_id
        self.secret_hash = secret_hash
        self.prefix = prefix
        self.label = label
        self.revoked_at: datetime | None = None

    @staticmethod
    def id_for(secret: str) -> UUID:
        """The key's id follows from its secret, so authentication is one lookup by id."""
        return uuid5(_KEY_NAMESPACE, hash_secret(secret))

    @classmethod
    def issue(cls, workspace_id: UUID, secret: str, label: str) -> ApiKey:
        return cls._create(
            cls.Issued,
            id=cls.id_for(secret),
            workspace_id=workspace_id,
            secret_hash=hash_secret(secret),
            prefix=secret[: len(SECRET_PREFIX) + 6],
            label=label,
        )

    @property
    def is_revoked(self) -> bool:
        return self.revoked_at is not None

    def matches(self, secret: str) -> bool:
        return self.secret_hash == hash_secret(secret)

    class Revoked(WorkspaceAggregate.Event):
        def apply(self, key: ApiKey) -> None:
            key.revoked_at = self.timestamp

    def revoke(self, *, revoked_by: UUID) -> None:
        if revoked_by == self.id:
            raise InvalidState("A key cannot revoke itself; use another key.")
        if not self.is_revoked:
            self._record(self.Revoked)
