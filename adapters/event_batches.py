"""Reads the events of many aggregates, each after its own version, in one query on eventsourcing's PostgreSQL table."""

from __future__ import annotations

from collections.abc import Mapping
from uuid import UUID

from eventsourcing.persistence import AggregateRecorder, StoredEvent
from eventsourcing.postgres import PostgresAggregateRecorder
from psycopg.sql import SQL, Identifier

from application.pressroom import EventsAfter, select_one_by_one


def events_after_for(recorder: AggregateRecorder) -> EventsAfter:
    """One query for PostgreSQL; one per aggregate for any other recorder."""
    if not isinstance(recorder, PostgresAggregateRecorder):
        return lambda after: select_one_by_one(recorder, after)
    statement = SQL(
        "SELECT e.originator_id, e.originator_version, e.topic, e.state "
        "FROM {schema}.{table} e JOIN unnest(%b::uuid[], %b::bigint[]) AS w(id, version) "
        "ON e.originator_id = w.id AND e.originator_version > w.version "
        "ORDER BY e.originator_id, e.originator_version"
    ).format(schema=Identifier(recorder.datastore.schema), table=Identifier(recorder.events_table_name))

    def select(after: Mapping[UUID, int]) -> list[StoredEvent]:
        if not after:
            return []
        with recorder.datastore.get_connection() as conn, conn.cursor() as cursor:
            cursor.execute(statement, (list(after), list(after.values())), prepare=True)
            return [
                StoredEvent(
                    originator_id=row["originator_id"],
                    originator_version=row["originator_version"],
                    topic=row["topic"],
                    state=bytes(row["state"]),
                )
                for row in cursor.fetchall()
            ]

    return select
