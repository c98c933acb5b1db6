"""Operations: health of the database, the broker, the projections and the background processes."""

from __future__ import annotations

import contextlib
import socket
from datetime import UTC, datetime

from litestar import Controller, Response, get

from adapters import heartbeats
from adapters.bootstrap import Container
from api.schemas import Health, ProcessHealth, ProjectionHealth


def broker_reachable(bootstrap: str | None) -> bool:
    if not bootstrap:
        return False
    for server in bootstrap.split(","):
        host, _, port = server.strip().rpartition(":")
        with contextlib.suppress(OSError), socket.create_connection((host, int(port)), timeout=1.0):
            return True
    return False


class HealthController(Controller):
    tags = ["operations"]  # noqa: RUF012

    @get("/health", sync_to_thread=True, summary="Is Pressroom up? 503 when the database is down")
    def health(self, container: Container) -> Response[Health]:
        try:
            head = container.app.recorder.max_notification_id() or 0
            projections = {}
            for view in container.views():
                position = view.position() or 0
                projections[view.name] = ProjectionHealth(position=position, lag=max(head - position, 0))
            workers = {
                beat.process: ProcessHealth(kind=beat.kind, seen_at=beat.seen_at, started_at=beat.started_at)
                for beat in heartbeats.recent(container.pool, datetime.now(UTC))
            }
            database = True
        except Exception:  # noqa: BLE001 - any database failure means not healthy
            database, projections, workers = False, {}, {}
        broker = broker_reachable(container.settings.kafka_bootstrap)
        body = Health(ok=database, database=database, broker=broker, projections=projections, workers=workers)
        return Response(body, status_code=200 if database else 503)
