"""How event state is stored: eventsourcing's JSON format, read with msgspec.

The format is JSONTranscoder's: plain JSON, with each value of a registered type written as
`{"_type_": name, "_data_": encoded}`. Reading it is most of what a rebuild spends, so this reads
the JSON with msgspec, several times faster than the standard library, then revives the marked
values with the same transcodings, innermost first, as the standard decoder's object hook does.
"""

from __future__ import annotations

from typing import Any
from uuid import UUID

import msgspec
from eventsourcing.persistence import JSONTranscoder, Transcoding, UUIDAsHex

_CONTAINERS = (dict, list)


class MsgspecJSONTranscoder(JSONTranscoder):
    """Reads what JSONTranscoder writes, into the same objects; writes exactly what it writes.

    Writing stays with the standard encoder: msgspec would write UUIDs, datetimes and decimals as
    plain strings rather than marked values, and floats in another notation, and what is stored
    must not depend on which transcoder wrote it.
    """

    def __init__(self) -> None:
        super().__init__()
        self._parse = msgspec.json.Decoder().decode

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

    def _revive(self, value: Any) -> Any:
        if type(value) is list:
            return [self._revive(item) if type(item) in _CONTAINERS else item for item in value]
        names = self.names
        for key, item in value.items():
            if type(item) is dict:
                # Most marked values hold a plain string: decode those here, the rest in the object hook.
                if len(item) == 2 and type(data := item.get("_data_")) is str and (transcoding := names.get(item.get("_type_", ""))):
                    value[key] = transcoding.decode(data)
                else:
                    value[key] = self._revive(item)
            elif type(item) is list:
                value[key] = self._revive(item)
        return self._decode_obj(value) if len(value) == 2 else value


class FastUUIDAsHex(UUIDAsHex):
    """The library's UUID transcoding, reading the same hex into the same UUIDs three times faster."""

    def decode(self, data: str) -> UUID:
        try:
            return msgspec.convert(data, UUID)
        except msgspec.ValidationError:
            return super().decode(data)
