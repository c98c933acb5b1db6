"""The one-query load of many aggregates' newer events (adapters/event_batches.py), on real PostgreSQL: what it
reads, and that it reads it by the primary key however long the log has grown."""

from __future__ import annotations

from uuid import UUID, uuid4

import psycopg
from eventsourcing.persistence import StoredEvent

from adapters.bootstrap import Container
from adapters.event_batches import events_after_for, events_after_statement
from adapters.eventstore import EventLogRecorder
from tests.conftest import event_log_of, events_table

TOPIC = "domain.credit_account:CreditAccount.Debited"


def store_histories(recorder: EventLogRecorder, aggregates: int, versions: int) -> list[UUID]:
    ids = [uuid4() for _ in range(aggregates)]
    events = [StoredEvent(i, version, TOPIC, b'{"v":%d}' % version) for i in ids for version in range(1, versions + 1)]
    recorder.insert_events(events)
    return ids


def test_each_aggregate_is_read_after_its_own_version_in_order(container: Container) -> None:
    recorder = event_log_of(container)
    first, second, untouched = store_histories(recorder, 3, 5)
    unknown = uuid4()

    events = events_after_for(recorder)({first: 3, second: 0, unknown: 0})

    assert [(e.originator_id, e.originator_version) for e in events] == [
        *sorted([(first, 4), (first, 5), *((second, v) for v in range(1, 6))]),
    ]
    assert all(e.originator_id != untouched for e in events)
    assert events_after_for(recorder)({}) == []


def test_a_batch_load_reads_by_the_primary_key_not_the_whole_log(container: Container) -> None:
    # A long log of busy aggregates, with fresh statistics: the shape under which a plain join of the wanted
    # versions to the events table was planned as a scan of the whole table.
    recorder = event_log_of(container)
    ids = store_histories(recorder, 100, 200)
    wanted = ids[:16]
    with psycopg.connect(container.database_url, autocommit=True) as conn:
        conn.execute(f"ANALYZE {events_table(container)}")
        plan = "\n".join(
            row[0]
            for row in conn.execute(
                b"EXPLAIN " + events_after_statement(recorder).as_bytes(conn), (wanted, [197] * len(wanted)), binary=False
            )
        )
        assert "Seq Scan" not in plan, plan
        assert recorder.events_table_name in plan, plan
    events = events_after_for(recorder)(dict.fromkeys(wanted, 197))
    assert len(events) == 16 * 3
