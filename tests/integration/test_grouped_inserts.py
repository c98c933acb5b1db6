"""Group commit of every command's inserts on real PostgreSQL: concurrent commands share a transaction, and
each is answered as it would have been alone, the one that conflicts or fails by itself."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any
from uuid import UUID, uuid4

import psycopg
from eventsourcing.persistence import IntegrityError, PersistenceError, RecordConflictError, StoredEvent
from hypothesis import given, settings
from hypothesis import strategies as st

from adapters.bootstrap import Container
from adapters.eventstore import writers_lock_statement
from adapters.grouped_inserts import GroupedInserts
from domain.credit_account import CreditAccount
from tests.conftest import event_log_of, wait_for


def groups_of(container: Container) -> GroupedInserts:
    groups = event_log_of(container).groups
    assert groups is not None, "group commit is on by default"
    return groups


class OneGroup:
    """Commands queued behind a writer held on the event log's lock, in the order they are added: released,
    the writer takes them all as one group."""

    def __init__(self, container: Container) -> None:
        self.container = container
        self.groups = groups_of(container)
        self.outcomes: dict[str, object] = {}
        self._threads: list[threading.Thread] = []

    def _start(self, name: str, command: Callable[[], object]) -> None:
        def run() -> None:
            try:
                self.outcomes[name] = command()
            except Exception as error:  # the outcome the test looks at
                self.outcomes[name] = error

        thread = threading.Thread(target=run, daemon=True)
        self._threads.append(thread)
        thread.start()

    @contextmanager
    def held(self) -> Iterator[OneGroup]:
        with psycopg.connect(self.container.database_url) as holder:
            holder.execute(writers_lock_statement(event_log_of(self.container)))
            taken = self.groups.stats.groups
            # The writer takes this one alone and waits on the lock: whatever comes next queues behind it.
            self._start("first", lambda: self.container.app.create_workspace("First"))
            wait_for(lambda: self.groups.stats.groups == taken + 1, interval=0.005)
            yield self
            holder.commit()
        for thread in self._threads:
            thread.join(timeout=30)

    def add(self, name: str, command: Callable[[], object]) -> None:
        queued = self.groups.waiting
        self._start(name, command)
        wait_for(lambda: self.groups.waiting == queued + 1, interval=0.005)


def test_concurrent_commands_share_one_transaction_and_each_is_saved(container: Container) -> None:
    app = container.app
    groups = groups_of(container)
    with OneGroup(container).held() as group:
        for n in range(6):
            group.add(f"workspace {n}", lambda n=n: app.create_workspace(f"Shop {n}")[0].id)
        groups_before = groups.stats.groups

    created = [group.outcomes[f"workspace {n}"] for n in range(6)]
    assert all(isinstance(workspace_id, UUID) for workspace_id in created)
    assert [app.get_workspace(workspace_id).name for workspace_id in created] == [f"Shop {n}" for n in range(6)]  # type: ignore[arg-type]
    assert groups.stats.groups == groups_before + 1 and groups.stats.split == 0


def test_two_commands_on_the_same_account_in_one_group_then_one_wins_and_the_rest_of_the_group_is_saved(container: Container) -> None:
    app = container.app
    workspace_id = app.create_workspace("Acme")[0].id
    account_id = CreditAccount.id_for(workspace_id)
    # Two copies of the account at the same version, as two processes would load it.
    first, second = app.repository.get(account_id), app.repository.get(account_id)
    assert first is not second
    first.grant("topup", 10, "order-1", None)
    second.grant("topup", 20, "order-2", None)
    with OneGroup(container).held() as group:
        group.add("first top-up", lambda: app.save(first))
        group.add("other workspace", lambda: app.create_workspace("Other")[0].id)
        group.add("second top-up", lambda: app.save(second))

    assert not isinstance(group.outcomes["first top-up"], Exception)
    assert isinstance(group.outcomes["second top-up"], RecordConflictError)
    assert isinstance(other := group.outcomes["other workspace"], UUID)
    assert app.get_workspace(other).name == "Other"
    account = app.credit_account(workspace_id)
    assert account.balance == first.balance and account.version == first.version
    assert group.groups.stats.split == 1


def test_a_command_that_cannot_be_stored_fails_alone(container: Container) -> None:
    app, recorder = container.app, event_log_of(container)
    unstorable = StoredEvent(originator_id=uuid4(), originator_version=1, topic="not\x00text", state=b"{}")
    with OneGroup(container).held() as group:
        group.add("before", lambda: app.create_workspace("Before")[0].id)
        group.add("unstorable", lambda: recorder.insert_events([unstorable]))
        group.add("after", lambda: app.create_workspace("After")[0].id)

    assert isinstance(group.outcomes["unstorable"], PersistenceError)
    assert not list(app.events.recorder.select_events(unstorable.originator_id))
    assert [app.get_workspace(group.outcomes[name]).name for name in ("before", "after")] == ["Before", "After"]  # type: ignore[arg-type]


def test_inserts_larger_than_the_connections_socket_buffer_are_written_alone_and_in_a_group(container: Container) -> None:
    # Each more than a megabyte, one event or many: psycopg's pipeline once left the tail of such an insert unsent
    # and waited for its reply forever, and every command of the process waited behind it.
    recorder = event_log_of(container)

    def big(events: int, size: int) -> list[StoredEvent]:
        aggregate_id = uuid4()
        return [StoredEvent(aggregate_id, version, "test:Event", b"x" * size) for version in range(1, events + 1)]

    inserts = {"one event": big(1, 3_000_000), "many events": big(12_000, 100), "in a group": big(8, 250_000)}
    with OneGroup(container).held() as group:
        for name in ("many events", "in a group"):
            group.add(name, lambda name=name: recorder.insert_events(inserts[name]))
    alone: list[object] = []
    writer = threading.Thread(target=lambda: alone.append(recorder.insert_events(inserts["one event"])), daemon=True)
    writer.start()
    writer.join(timeout=60)
    group.outcomes["one event"] = alone[0] if alone else "still waiting"

    for name, events in inserts.items():
        assert isinstance(ids := group.outcomes.get(name, "still waiting"), list) and len(ids) == len(events), name
        assert [e.state for e in recorder.select_events(events[0].originator_id, limit=len(events))] == [e.state for e in events]


# An insert: the (aggregate, version) of each of its events, over a few aggregates so that inserts collide.
INSERTS = st.lists(st.tuples(st.integers(0, 3), st.integers(1, 3)), min_size=1, max_size=3)


def test_a_group_ends_as_its_inserts_one_at_a_time_in_queue_order_would(container: Container) -> None:
    recorder = event_log_of(container)

    @settings(max_examples=25, deadline=None)
    @given(inserts=st.lists(INSERTS, min_size=2, max_size=7))
    def group_equals_sequence(inserts: list[list[tuple[int, int]]]) -> None:
        aggregates = [uuid4() for _ in range(4)]

        def stored(insert: list[tuple[int, int]]) -> list[StoredEvent]:
            return [StoredEvent(aggregates[a], version, "test:Event", f"{a}:{version}".encode()) for a, version in insert]

        with OneGroup(container).held() as group:
            for n, events in enumerate(map(stored, inserts)):
                group.add(str(n), lambda events=events: recorder.insert_events(events))

        taken: set[tuple[int, int]] = set()
        for n, insert in enumerate(inserts):
            outcome: Any = group.outcomes[str(n)]
            fits = len(set(insert)) == len(insert) and not taken & set(insert)
            if fits:
                taken |= set(insert)
                assert isinstance(outcome, list) and len(outcome) == len(insert), (n, outcome)
            else:
                assert isinstance(outcome, IntegrityError), (n, outcome)
        in_store = {(a, e.originator_version) for a, aggregate_id in enumerate(aggregates) for e in recorder.select_events(aggregate_id)}
        assert in_store == taken

    group_equals_sequence()
