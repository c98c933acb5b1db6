"""The event log as a product: a workspace's events, any aggregate as it was, and the live stream."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import datetime
from typing import Annotated, Any
from uuid import UUID

import anyio.to_thread
import msgspec
from litestar import Controller, Request, get
from litestar.params import FromPath, Parameter
from litestar.response import ServerSentEvent, ServerSentEventMessage

from adapters.bootstrap import Container
from api.errors import RequestInvalid
from api.schemas import AggregateState, AuditEvents
from application.pressroom import Principal
from projections.audit_log import AuditEntry, entries

STREAM_POLL_SECONDS = 0.02
POLLS_AFTER_WAKE = 25  # half a second of short polls after an event is recorded
STREAM_IDLE_SECONDS = 2.0
PRIVATE_STATE = {"secret_hash", "_pending_events", "credentials_sealed", "flow_sealed", "state_hash"}


def state_of(aggregate: Any) -> dict[str, Any]:
    """The aggregate's own fields, as JSON; never credential material."""
    fields = {key.lstrip("_"): value for key, value in vars(aggregate).items() if key not in PRIVATE_STATE}
    return msgspec.to_builtins(fields, builtin_types=(), str_keys=True, enc_hook=str)  # type: ignore[no-any-return]


class AuditController(Controller):
    path = "/v1"
    tags = ["audit"]  # noqa: RUF012

    @get("/audit/events", sync_to_thread=True, summary="This workspace's events in log order, each in the integration envelope")
    def events(
        self,
        principal: Principal,
        container: Container,
        aggregate_id: Annotated[UUID | None, Parameter(query="aggregateId")] = None,
        event_type: Annotated[str | None, Parameter(query="type", max_length=100)] = None,
        after: Annotated[int, Parameter(ge=0, description="Log position to start after")] = 0,
        limit: Annotated[int, Parameter(ge=1, le=1000)] = 100,
    ) -> AuditEvents:
        found = entries(
            container.pool, workspace_id=principal.workspace_id, aggregate_id=aggregate_id, event_type=event_type, after=after, limit=limit
        )
        return AuditEvents(events=[e.envelope for e in found], next_after=found[-1].position if len(found) == limit else None)

    @get("/audit/aggregates/{aggregate_id:uuid}", sync_to_thread=True, summary="An aggregate as it was at `version` or `at` (or now)")
    def aggregate(
        self,
        principal: Principal,
        container: Container,
        aggregate_id: FromPath[UUID],
        version: Annotated[int | None, Parameter(ge=1)] = None,
        at: datetime | None = None,
    ) -> AggregateState:
        if version is not None and at is not None:
            raise RequestInvalid.at("at", "Ask for a version or a time, not both.")
        aggregate = container.app.as_of(principal.workspace_id, aggregate_id, version=version, at=at)
        return AggregateState(
            aggregate_type=type(aggregate).__name__, id=aggregate.id, version=aggregate.version, state=state_of(aggregate)
        )

    @get("/events/stream", summary="This workspace's events, live, as server-sent events; resumes after `after` or Last-Event-ID")
    async def stream(
        self,
        request: Request[Any, Any, Any],
        principal: Principal,
        container: Container,
        after: Annotated[int | None, Parameter(ge=0)] = None,
    ) -> ServerSentEvent:
        resume = request.headers.get("last-event-id")
        start = int(resume) if resume and resume.isdigit() else (after if after is not None else await _head(container))
        return ServerSentEvent(_follow(container, principal.workspace_id, start))


async def _head(container: Container) -> int:
    """Where a new stream starts: after the last event recorded so far."""
    head: int | None = await anyio.to_thread.run_sync(container.app.recorder.max_notification_id)
    return head or 0


def _page(container: Container, workspace_id: UUID, position: int) -> list[AuditEntry]:
    return entries(container.pool, workspace_id=workspace_id, after=position, limit=500)


async def _follow(container: Container, workspace_id: UUID, position: int) -> AsyncIterator[ServerSentEventMessage]:
    # Woken by the event store's notification; the audit log read model follows a few milliseconds
    # later, so a wake-up is followed by short polls before waiting again.
    polls_left = 0
    while True:
        found = await anyio.to_thread.run_sync(_page, container, workspace_id, position)
        for entry in found:
            position = entry.position
            yield ServerSentEventMessage(data=msgspec.json.encode(entry.envelope).decode(), event=entry.envelope.type, id=str(position))
        if found:
            continue
        if polls_left:
            polls_left -= 1
            await anyio.sleep(STREAM_POLL_SECONDS)
        else:
            await container.event_notifier.wait(STREAM_IDLE_SECONDS)
            polls_left = POLLS_AFTER_WAKE
