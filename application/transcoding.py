"""How event state is stored: eventsourcing's JSON format, read with msgspec.

The format is JSONTranscoder's: plain JSON, with each value of a registered type written as
`{"_type_": name, "_data_": encoded}`. Reading it is most of what a rebuild spends, so this reads
the JSON with msgspec, several times faster than the standard library, then revives the marked
values with the same transcodings, innermost first, as the standard decoder's object hook does.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from datetime import datetime
from types import NoneType, UnionType
from typing import Any, Literal, Union, get_args, get_origin, get_type_hints
from uuid import UUID

import msgspec
from eventsourcing.persistence import JSONTranscoder, Transcoding, UUIDAsHex

_CONTAINERS = (dict, list)
# Stored beside an event's own fields: by the metadata mapper, the library's mapper (a version > 1) and created events.
_EXTRA_FIELDS = (("meta", dict[str, str]), ("class_version", int))


class MsgspecJSONTranscoder(JSONTranscoder):
    """Reads what JSONTranscoder writes, into the same objects; writes exactly what it writes.

    Writing stays with the standard encoder: msgspec would write UUIDs, datetimes and decimals as
    plain strings rather than marked values, and floats in another notation, and what is stored
    must not depend on which transcoder wrote it.
    """

    def __init__(self) -> None:
        super().__init__()
        self._parse = msgspec.json.Decoder().decode
        self._state_decoders: dict[type, Callable[[bytes], Any]] = {}

    def register(self, transcoding: Transcoding) -> None:
        super().register(FastUUIDAsHex() if type(transcoding) is UUIDAsHex else transcoding)

    def decode(self, data: bytes) -> Any:
        try:
            parsed = self._parse(data)
        except msgspec.MsgspecError:
            # JSON that msgspec refuses and the standard decoder accepts (NaN, lone surrogates,
            # out-of-range floats): decode it the standard way, which also raises what it raised.
            return super().decode(data)
        return self._revive(parsed) if type(parsed) in _CONTAINERS else parsed

    def state_decoder(self, event_class: type) -> Callable[[bytes], Any]:
        """Reads the stored state of one event class: what `decode` gives, faster for the state's usual shape."""
        decoder = self._state_decoders.get(event_class)
        if decoder is None:
            decoder = _EventStateDecoder(self, event_class) if dataclasses.is_dataclass(event_class) else self.decode
            self._state_decoders[event_class] = decoder
        return decoder

    def _revive(self, value: Any) -> Any:
        if type(value) is list:
            return [self._revive_item(item) for item in value]
        for key, item in value.items():
            if type(item) in _CONTAINERS:
                value[key] = self._revive_item(item)
        return self._decode_obj(value) if len(value) == 2 else value

    def _revive_item(self, item: Any) -> Any:
        if type(item) is dict:
            # Most marked values hold a plain string: decode those here, the rest in the object hook.
            if len(item) == 2 and type(data := item.get("_data_")) is str and (transcoding := self.names.get(item.get("_type_", ""))):
                return transcoding.decode(data)
            return self._revive(item)
        return self._revive(item) if type(item) is list else item


class _MarkedUUID(msgspec.Struct, rename={"type": "_type_", "data": "_data_"}, forbid_unknown_fields=True):
    type: Literal["uuid_hex"]
    data: UUID


class _MarkedDatetime(msgspec.Struct, rename={"type": "_type_", "data": "_data_"}, forbid_unknown_fields=True):
    type: Literal["datetime_iso"]
    data: datetime


# What the transcodings of the marked types (FastUUIDAsHex, DatetimeAsISO) read, read by msgspec itself.
_MARKED: dict[type, type] = {UUID: _MarkedUUID, datetime: _MarkedDatetime}


class _EventStateDecoder:
    """Reads an event class's state as a typed msgspec struct: its UUIDs and datetimes as marked values
    that msgspec reads into UUIDs and datetimes, every other field as plain JSON, so only fields that
    may hold other marked values are looked at in Python. A state of another shape (an older version
    of the class, an unexpected value or transcoding) is read by the transcoder's general `decode`, so
    both give the same dict, key order included."""

    def __init__(self, transcoder: MsgspecJSONTranscoder, event_class: type) -> None:
        self.transcoder = transcoder
        hints = get_type_hints(event_class)
        stored = [f.name for f in dataclasses.fields(event_class) if f.name not in ("originator_id", "originator_version")]
        marked = {name: kind for name in stored if (kind := _marked(hints[name])) is not None}
        self.marked = tuple(marked)
        self.free = tuple(name for name in stored if name not in marked)
        fields: list[Any] = [(name, _MARKED[marked[name]] | None if name in marked else Any) for name in stored]
        fields += [(name, hint | msgspec.UnsetType, msgspec.UNSET) for name, hint in _EXTRA_FIELDS if name not in stored]
        self.extras = tuple(name for name, _ in _EXTRA_FIELDS if name not in stored)
        state = msgspec.defstruct(f"{event_class.__qualname__}State", fields, forbid_unknown_fields=True)
        self._parse = msgspec.json.Decoder(state).decode

    def __call__(self, data: bytes) -> Any:
        try:
            values = msgspec.structs.asdict(self._parse(data))
        except msgspec.MsgspecError:
            return self.transcoder.decode(data)
        found = 0
        for name in self.marked:
            if (marked := values[name]) is not None:
                values[name] = marked.data
                found += 1
        # Each marked value writes "_type_" once (the standard encoder escapes no ASCII): when the text holds
        # no more of them than were just read, no other field holds a marked value to revive.
        if data.count(b'"_type_"') > found:
            revive = self.transcoder._revive_item
            for name in self.free:
                if type(value := values[name]) in _CONTAINERS:
                    values[name] = revive(value)
        for name in self.extras:
            if values[name] is msgspec.UNSET:
                del values[name]
        return values


def _marked(hint: Any) -> type | None:
    """The type of a field stored as a marked string (or None), if it is one."""
    if get_origin(hint) in (Union, UnionType):
        args = [arg for arg in get_args(hint) if arg is not NoneType]
        return _marked(args[0]) if len(args) == 1 else None
    return hint if hint in _MARKED else None


class FastUUIDAsHex(UUIDAsHex):
    """The library's UUID transcoding, reading the same hex into the same UUIDs three times faster."""

    def decode(self, data: str) -> UUID:
        try:
            return msgspec.convert(data, UUID)
        except msgspec.ValidationError:
            return super().decode(data)
