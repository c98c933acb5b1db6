"""Webhook: a workspace's subscription to its own events, delivered to a URL it owns."""

from __future__ import annotations

from datetime import datetime
from uuid import UUID, uuid4

from domain.base import WorkspaceAggregate
from domain.errors import InvalidState

ALL_EVENTS = "*"


def subscribes_to(patterns: tuple[str, ...], event_type: str) -> bool:
    """`*` is every event, `job.*` every event of a family of types, anything else one type exactly."""
    family = event_type.split(".", 1)[0]
    return any(p in (ALL_EVENTS, event_type, f"{family}.*") for p in patterns)


class Webhook(WorkspaceAggregate):
    FAMILY = "workspaces"
    EVENT_PREFIX = "webhook"

    class Created(WorkspaceAggregate.Created):
        url: str
        events: tuple[str, ...]

    def __init__(self, workspace_id: UUID, url: str, events: tuple[str, ...]) -> None:
        self.workspace_id = workspace_id
        self.url = url
        self.events = tuple(events)
        self.removed_at: datetime | None = None
        self.replays = 0

    @classmethod
    def create(cls, workspace_id: UUID, url: str, events: tuple[str, ...]) -> Webhook:
        return cls._create(cls.Created, id=uuid4(), workspace_id=workspace_id, url=url, events=tuple(dict.fromkeys(events)))

    @property
    def is_removed(self) -> bool:
        return self.removed_at is not None

    def subscribes_to(self, event_type: str) -> bool:
        return not self.is_removed and subscribes_to(self.events, event_type)

    class Removed(WorkspaceAggregate.Event):
        def apply(self, webhook: Webhook) -> None:
            webhook.removed_at = self.timestamp

    def remove(self) -> None:
        if self.is_removed:
            raise InvalidState("This webhook is already removed.")
        self._record(self.Removed)

    class ReplayRequested(WorkspaceAggregate.Event):
        """Redeliver this webhook's events after log position `after`; `replay` numbers the request,
        so a second replay of the same range delivers again."""

        after: int
        replay: int

        def apply(self, webhook: Webhook) -> None:
            webhook.replays = self.replay

    def request_replay(self, after: int) -> None:
        if self.is_removed:
            raise InvalidState("A removed webhook cannot replay.")
        self._record(self.ReplayRequested, after=after, replay=self.replays + 1)
