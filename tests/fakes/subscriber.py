"""A webhook receiver on loopback: records every delivery; answers 204 unless a test scripts a fault."""

from __future__ import annotations

import json
from typing import Any

from tests.fakes.servers import FakeServer, Reply, Seen


class EventReceiver(FakeServer):
    def route(self, request: Seen) -> Reply:
        return Reply(204)

    def failure_reply(self, status: int) -> Reply:
        return Reply(status, b"receiver is down", {"Content-Type": "text/plain"})

    def events(self, event_type: str | None = None) -> list[dict[str, Any]]:
        """The envelope of every POST received (failed attempts included), optionally of one type."""
        bodies = [json.loads(r.body) for r in self.seen("POST")]
        return [b for b in bodies if event_type is None or b["type"] == event_type]
