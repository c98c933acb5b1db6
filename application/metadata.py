"""Who and what caused an event: carried from the request into every event it records."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Any

from eventsourcing.domain import DomainEventProtocol
from eventsourcing.persistence import Cipher, Compressor, Mapper, StoredEvent, Transcoder, find_id_convertor
from eventsourcing.utils import resolve_topic

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
    """Stores the current metadata beside each event's own fields, under `meta`; reads events as the
    library's mapper does, with what it looks up per event (class, id type, state reader) kept per topic:
    a rebuild reads every event in the log."""

    def __init__(self, transcoder: Transcoder, compressor: Compressor | None = None, cipher: Cipher | None = None) -> None:
        super().__init__(transcoder, compressor, cipher)
        self._readers: dict[tuple[str, type], _TopicReader] = {}

    def to_stored_event(self, domain_event: DomainEventProtocol[Any]) -> StoredEvent:
        meta = current_metadata()
        if meta and META_FIELD not in vars(domain_event):
            object.__setattr__(domain_event, META_FIELD, dict(meta))
        return super().to_stored_event(domain_event)

    def to_domain_event(self, stored_event: StoredEvent) -> DomainEventProtocol[Any]:
        return self.event_from(stored_event.originator_id, stored_event.originator_version, stored_event.topic, stored_event.state)

    def event_from(self, originator_id: Any, originator_version: int, topic: str, stored_state: bytes) -> DomainEventProtocol[Any]:
        """`to_domain_event` of a stored event's columns, without making the StoredEvent first (a frozen
        dataclass, slow to make, and a rebuild reads every event in the log)."""
        if self.cipher is not None or self.compressor is not None:
            return super().to_domain_event(StoredEvent(originator_id, originator_version, topic, stored_state))
        key = (topic, type(originator_id))
        reader = self._readers.get(key)
        if reader is None:
            reader = self._readers[key] = _TopicReader(self.transcoder, *key)
        try:
            state = reader.decode(stored_state)
        except Exception:  # noqa: BLE001 - the library's mapper raises its own error, naming the event
            return super().to_domain_event(StoredEvent(originator_id, originator_version, topic, stored_state))
        state["originator_id"] = reader.convert_id(originator_id)
        state["originator_version"] = originator_version
        version = state.pop("class_version", 1)
        while version < reader.class_version:
            getattr(reader.event_class, f"upcast_v{version}_v{version + 1}")(state)
            version += 1
        domain_event = object.__new__(reader.event_class)
        object.__setattr__(domain_event, "__dict__", state)
        return domain_event  # type: ignore[no-any-return]


class _TopicReader:
    def __init__(self, transcoder: Transcoder, topic: str, id_type: type) -> None:
        self.event_class: Any = resolve_topic(topic)
        self.class_version: int = getattr(self.event_class, "class_version", 1)
        self.convert_id = find_id_convertor(self.event_class, id_type)
        state_decoder = getattr(transcoder, "state_decoder", None)
        self.decode: Callable[[bytes], dict[str, Any]] = state_decoder(self.event_class) if state_decoder else transcoder.decode


def event_metadata(domain_event: object) -> dict[str, str]:
    return dict(getattr(domain_event, META_FIELD, None) or {})


def set_metadata(**values: str | None) -> None:
    """Adds to the metadata of the current context (a request's own task) until it ends."""
    _current.set({**_current.get(), **{k: v for k, v in values.items() if v is not None}})
