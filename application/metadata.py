"""Who and what caused an event: carried from the request into every event it records."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Any

from eventsourcing.domain import DomainEventProtocol
from eventsourcing.persistence import Mapper, StoredEvent

_current: ContextVar[dict[str, str]] = ContextVar("event_metadata", default={})  # noqa: B039 - never mutated

META_FIELD = "meta"


def current_metadata() -> dict[str, str]:
    return _current.get()


@contextmanager
def metadata(**values: str | None) -> Iterator[None]:
    """Within this block, recorded events carry these values (request id, actor, causation)."""
    merged = {**_current.get(), **{k: v for k, v in values.items() if v is not None}}
    token = _current.set(merged)
    try:
        yield
    finally:
        _current.reset(token)


class MetadataMapper(Mapper[Any]):
    """Stores the current metadata beside each event's own fields, under `meta`."""

    def to_stored_event(self, domain_event: DomainEventProtocol[Any]) -> StoredEvent:
        meta = current_metadata()
        if meta and META_FIELD not in vars(domain_event):
            object.__setattr__(domain_event, META_FIELD, dict(meta))
        return super().to_stored_event(domain_event)


def event_metadata(domain_event: object) -> dict[str, str]:
    return dict(getattr(domain_event, META_FIELD, None) or {})


def set_metadata(**values: str | None) -> None:
    """Adds to the metadata of the current context (a request's own task) until it ends."""
    _current.set({**_current.get(), **{k: v for k, v in values.items() if v is not None}})
