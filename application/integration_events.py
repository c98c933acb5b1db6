"""Integration events: the stable JSON envelope that subscribers (Kafka, webhooks, the audit log) receive."""

from __future__ import annotations

import hashlib
import re
import sys
from collections.abc import Callable
from datetime import datetime
from functools import cache
from typing import Any
from uuid import NAMESPACE_URL, UUID, uuid5

import msgspec

from application.metadata import META_FIELD
from domain.base import WorkspaceAggregate

SCHEMA_VERSION = 1
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


_DataType = tuple[Callable[..., Any], tuple[str, ...]]


class _DataTypes(dict[tuple[str, ...], _DataType]):
    """For an event's fields, in order: a Struct of those that go in `data`, each named as its `data`
    key, and which fields those are; worked out once per set of fields. msgspec makes such a Struct
    several times faster than the dict of the same keys, and encodes it as the same JSON object."""

    def __missing__(self, fields: tuple[str, ...]) -> _DataType:
        kept = tuple(field for field in fields if field not in ENVELOPE_FIELDS and field not in PRIVATE_FIELDS)
        # Untracked by the garbage collector: an instance lives for one envelope and nothing it holds refers back to it.
        data = msgspec.defstruct("Data", kept, rename={field: camel(field) for field in kept}, gc=False)
        made = self[fields] = (data, kept)
        return made


_data_types = _DataTypes()


# A name-based UUID's version (5) and variant bits, as uuid.uuid5 sets them.
_UUID5_CLEAR = ~((0xC000 << 48) | (0xF000 << 64))
_UUID5_SET = (0x8000 << 48) | (5 << 76)
_canonical = msgspec.json.encode  # a UUID's canonical text, quoted


def event_ids(namespace: UUID) -> Callable[[UUID, int], UUID]:
    """`uuid5(namespace, f"{aggregate_id}:{version}")`: an id per recorded event, the same ids made
    several times faster (a rebuild makes one for every event)."""
    prefix = namespace.bytes

    def event_id(aggregate_id: UUID, version: int) -> UUID:
        digest = hashlib.sha1(b"%s%s:%d" % (prefix, _canonical(aggregate_id)[1:-1], version), usedforsecurity=False).digest()
        return msgspec.convert((int.from_bytes(digest[:16], "big") & _UUID5_CLEAR | _UUID5_SET).to_bytes(16, "big"), UUID)

    return event_id


_event_id = event_ids(uuid5(NAMESPACE_URL, "pressroom:event"))


def envelope(event: Any) -> Envelope:
    """The envelope of a domain event; its id is stable across redeliveries."""
    published = envelope_to_encode(event)
    published.data = msgspec.to_builtins(published.data)
    return published


def envelope_to_encode(event: Any) -> Envelope:
    """`envelope(event)` for msgspec to encode, to the same JSON, made faster for the audit log, which
    stores one for every event: its `data` is a Struct holding the event's own values, not builtins."""
    event_class: Any = type(event)
    event_type, aggregate_type = _naming(event_class)
    values = vars(event)
    data_type, fields = _data_types[tuple(values)]
    return Envelope(
        id=_event_id(event.originator_id, event.originator_version),
        type=event_type,
        aggregate_type=aggregate_type,
        aggregate_id=event.originator_id,
        version=event.originator_version,
        workspace_id=event.workspace_id,
        occurred_at=event.timestamp,
        schema_version=SCHEMA_VERSION,
        data=data_type(*map(values.__getitem__, fields)),
    )


def family_of(event: Any) -> str:
    return _aggregate_of(event).FAMILY
