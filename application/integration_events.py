"""Integration events: the stable JSON envelope that subscribers (Kafka, webhooks, the audit log) receive."""

from __future__ import annotations

import re
import sys
from datetime import datetime
from functools import cache
from typing import Any
from uuid import NAMESPACE_URL, UUID, uuid5

import msgspec

from application.metadata import META_FIELD
from domain.base import WorkspaceAggregate

SCHEMA_VERSION = 1
_EVENT_NAMESPACE = uuid5(NAMESPACE_URL, "pressroom:event")
ENVELOPE_FIELDS = {"originator_id", "originator_version", "timestamp", "workspace_id", META_FIELD}
# Internal detail and credential material never leave the system, even hashed.
PRIVATE_FIELDS = {"originator_topic", "secret_hash", "credentials_sealed", "flow_sealed", "state_hash"}


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


def _aggregate_of(event: object) -> type[WorkspaceAggregate]:
    return _aggregate_of_class(type(event))


def _aggregate_of_class(event_class: type[Any]) -> type[WorkspaceAggregate]:
    outer = getattr(sys.modules[event_class.__module__], event_class.__qualname__.split(".")[0])
    if not (isinstance(outer, type) and issubclass(outer, WorkspaceAggregate)):
        raise TypeError(f"{event_class.__qualname__} is not an event of a Pressroom aggregate")
    return outer


def snake(name: str) -> str:
    return re.sub(r"(?<!^)(?=[A-Z])", "_", name).lower()


def camel(name: str) -> str:
    head, *rest = name.split("_")
    return head + "".join(part.title() for part in rest)


@cache
def _naming(event_class: Any) -> tuple[str, str]:
    """(type, aggregate type) of an event class, worked out once per class."""
    aggregate = _aggregate_of_class(event_class)
    return f"{aggregate.EVENT_PREFIX}.{snake(event_class.__name__)}", aggregate.__name__


@cache
def camel_of(field: str) -> str:
    return camel(field)


def envelope(event: Any) -> Envelope:
    """The envelope of a domain event; its id is stable across redeliveries."""
    event_class: Any = type(event)
    event_type, aggregate_type = _naming(event_class)
    data = {camel_of(k): v for k, v in vars(event).items() if k not in ENVELOPE_FIELDS and k not in PRIVATE_FIELDS}
    return Envelope(
        id=uuid5(_EVENT_NAMESPACE, f"{event.originator_id}:{event.originator_version}"),
        type=event_type,
        aggregate_type=aggregate_type,
        aggregate_id=event.originator_id,
        version=event.originator_version,
        workspace_id=event.workspace_id,
        occurred_at=event.timestamp,
        schema_version=SCHEMA_VERSION,
        data=msgspec.to_builtins(data),
    )


def family_of(event: Any) -> str:
    return _aggregate_of(event).FAMILY
