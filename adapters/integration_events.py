"""Integration events: the stable JSON envelope that Kafka subscribers and webhooks receive."""

from __future__ import annotations

import re
import sys
from datetime import datetime
from typing import Any
from uuid import NAMESPACE_URL, UUID, uuid5

import msgspec

from application.metadata import META_FIELD, event_metadata
from domain.base import WorkspaceAggregate

SCHEMA_VERSION = 1
FAMILIES = ("workspaces", "credits", "jobs", "campaigns", "connections", "posts")
_EVENT_NAMESPACE = uuid5(NAMESPACE_URL, "pressroom:event")
_ENVELOPE_FIELDS = {"originator_id", "originator_version", "timestamp", "workspace_id", META_FIELD}
# Internal detail and credential material never leave the system, even hashed.
_PRIVATE_FIELDS = {"originator_topic", "secret_hash"}


class Envelope(msgspec.Struct, kw_only=True, rename="camel"):
    id: UUID
    type: str
    aggregate_type: str
    aggregate_id: UUID
    version: int
    workspace_id: UUID
    occurred_at: datetime
    schema_version: int
    data: dict[str, Any]


def topic_for(family: str, namespace: str = "pressroom") -> str:
    """`pressroom.jobs.v1`; another namespace lets several Pressrooms share one Kafka cluster."""
    return f"{namespace}.{family}.v1"


def dead_letter_topic(namespace: str = "pressroom") -> str:
    return topic_for("deadletter", namespace)


def all_topics(namespace: str = "pressroom") -> list[str]:
    return [*(topic_for(family, namespace) for family in FAMILIES), dead_letter_topic(namespace)]


def _aggregate_of(event: object) -> type[WorkspaceAggregate]:
    event_class = type(event)
    outer = getattr(sys.modules[event_class.__module__], event_class.__qualname__.split(".")[0])
    if not (isinstance(outer, type) and issubclass(outer, WorkspaceAggregate)):
        raise TypeError(f"{event_class.__qualname__} is not an event of a Pressroom aggregate")
    return outer


def _snake(name: str) -> str:
    return re.sub(r"(?<!^)(?=[A-Z])", "_", name).lower()


def _camel(name: str) -> str:
    head, *rest = name.split("_")
    return head + "".join(part.title() for part in rest)


def envelope_of(event: Any, namespace: str = "pressroom") -> tuple[str, Envelope]:
    """The Kafka topic and envelope for a domain event; the id is stable across redeliveries."""
    aggregate = _aggregate_of(event)
    data = {_camel(k): v for k, v in vars(event).items() if k not in _ENVELOPE_FIELDS and k not in _PRIVATE_FIELDS}
    envelope = Envelope(
        id=uuid5(_EVENT_NAMESPACE, f"{event.originator_id}:{event.originator_version}"),
        type=f"{aggregate.EVENT_PREFIX}.{_snake(type(event).__name__)}",
        aggregate_type=aggregate.__name__,
        aggregate_id=event.originator_id,
        version=event.originator_version,
        workspace_id=event.workspace_id,
        occurred_at=event.timestamp,
        schema_version=SCHEMA_VERSION,
        data=msgspec.to_builtins(data),
    )
    return topic_for(aggregate.FAMILY, namespace), envelope


def headers_of(event: Any) -> list[tuple[str, bytes]]:
    return [(f"pressroom-{k.replace('_', '-')}", v.encode()) for k, v in event_metadata(event).items()]
