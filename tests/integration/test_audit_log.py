"""The audit log on real PostgreSQL: each event's row holds exactly its envelope and metadata."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime
from types import UnionType
from typing import Any, TypeVar, Union, get_args, get_origin, get_type_hints
from uuid import UUID, uuid4

import msgspec
import psycopg
from psycopg.types.json import Jsonb

from adapters.bootstrap import Container
from application.event_catalogue import event_classes, type_name
from application.integration_events import envelope
from application.metadata import event_metadata, metadata
from projections.engine import LogFollower, read_batch

TEXT = 'Quote " backslash \\ tab \t newline \n ünïcödé 🙂'
NOW = datetime(2026, 3, 1, 9, 30, 15, 123456, tzinfo=UTC)


def example(hint: Any) -> Any:
    """A value of a field's type, its strings holding what JSON and COPY escape."""
    if hint is Any:
        return {"text": TEXT, "values": [1, 2.5, None, True], "inner": {"deep": [TEXT]}}
    if isinstance(hint, TypeVar):
        return uuid4()
    origin, args = get_origin(hint), get_args(hint)
    if origin in (Union, UnionType):
        return example(args[0])
    if origin is dict:
        return {"key": example(args[1])}
    if origin in (list, tuple):
        return origin([example(args[0])])
    return {bool: True, int: 7, float: 2.5, str: TEXT, UUID: uuid4(), datetime: NOW}[hint]


def one_of_every_event() -> list[Any]:
    events = []
    for _, event_class in event_classes():
        hints = get_type_hints(event_class)
        event = object.__new__(event_class)
        event.__dict__.update({field.name: example(hints[field.name]) for field in dataclasses.fields(event_class)})
        events.append(event)
    return events


def record(container: Container, events: list[Any]) -> None:
    container.app.recorder.insert_events([container.app.mapper.to_stored_event(event) for event in events])


def test_every_event_type_when_projected_then_its_row_is_its_envelope_and_metadata(container: Container) -> None:
    app = container.app
    with metadata(request_id="req-1", actor="admin"):
        workspace = app.create_workspace("Acme", "pro")[0]
        record(container, one_of_every_event())
    app.request_job(workspace.id, "copy", {"product": {"name": TEXT}, "count": 1}, 1)
    record(container, one_of_every_event())
    audit_log = next(view for view in container.views() if view.name == "audit_log")

    LogFollower(app, audit_log, database_url=container.database_url, batch_size=7).catch_up()

    events = read_batch(app, after=0, limit=10_000)
    with psycopg.connect(container.database_url) as conn:
        conn.execute("CREATE TEMP TABLE expected (LIKE audit_log)")
        with conn.cursor() as cursor:
            cursor.executemany(
                "INSERT INTO expected VALUES (%s, %s, %s, %s, %s, %s, %s)",
                [
                    (position, e.workspace_id, e.aggregate_id, e.type, e.occurred_at, Jsonb(e, msgspec.json.encode), Jsonb(meta))
                    for position, event in events
                    for e, meta in [(envelope(event), event_metadata(event))]
                ],
            )
        only_live = conn.execute("SELECT count(*) FROM (TABLE audit_log EXCEPT ALL TABLE expected) AS d").fetchone()
        only_expected = conn.execute("SELECT count(*) FROM (TABLE expected EXCEPT ALL TABLE audit_log) AS d").fetchone()
        types = {row[0] for row in conn.execute("SELECT DISTINCT type FROM audit_log")}
        with_metadata = conn.execute("SELECT count(*) FROM audit_log WHERE metadata ? 'request_id'").fetchone()

    assert (only_live, only_expected) == ((0,), (0,))
    assert types >= {type_name(aggregate, event_class) for aggregate, event_class in event_classes()}
    assert with_metadata is not None and with_metadata[0] > len(event_classes())
