"""The base of every Pressroom aggregate: each event carries its workspace id."""

from __future__ import annotations

from typing import Any, ClassVar
from uuid import UUID

from eventsourcing.domain import Aggregate


class WorkspaceAggregate(Aggregate):
    """An aggregate that belongs to one workspace.

    `FAMILY` names the integration-event topic family, `EVENT_PREFIX` the prefix of
    its integration event types (`job.completed`).
    """

    FAMILY: ClassVar[str]
    EVENT_PREFIX: ClassVar[str]
    workspace_id: UUID

    class Event(Aggregate.Event):
        workspace_id: UUID

    class Created(Event, Aggregate.Created):
        pass

    def _record(self, event_class: type[Aggregate.Event], **fields: Any) -> None:
        self.trigger_event(event_class, workspace_id=self.workspace_id, **fields)
