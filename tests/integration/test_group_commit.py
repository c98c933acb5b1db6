"""Group commit of job requests on real PostgreSQL: a batch answers each request as the requests one at a
time would have been answered, charges once per job, and survives other writers."""

from __future__ import annotations

import random
import threading
from collections.abc import Iterator
from concurrent.futures import Future
from contextlib import contextmanager
from typing import Any
from uuid import UUID

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from adapters.bootstrap import Container
from application.group_commit import Busy, JobRequestBatcher
from application.metadata import event_metadata, metadata
from application.pressroom import JobReceipt, Pressroom
from domain.credit_account import CreditAccount
from domain.errors import DomainError, IdempotencyKeyReused, InsufficientCredits
from domain.generation_job import GenerationJob
from domain.idempotency_key import IdempotencyKey
from tests.conftest import event_log_of

BRIEF: dict[str, Any] = {"product": {"name": "Lamp"}, "count": 1}
OTHER_BRIEF: dict[str, Any] = {"product": {"name": "Desk"}, "count": 1}
IMAGES: dict[str, Any] = {"prompt": "A brass lamp", "count": 1}


@contextmanager
def held_batcher(app: Pressroom, **options: Any) -> Iterator[JobRequestBatcher]:
    """A batcher whose writer starts only when the test says so: what was submitted before is one batch."""
    batcher = JobRequestBatcher(app, autostart=False, **options)
    try:
        yield batcher
    finally:
        batcher.close()


def outcome(answer: Future[JobReceipt]) -> JobReceipt | Exception:
    try:
        return answer.result(timeout=30)
    except Exception as error:
        return error


def debits(app: Pressroom, workspace_id: UUID) -> list[int]:
    """The amounts debited from the account, as the event store has them."""
    events = app.events.get(CreditAccount.id_for(workspace_id))
    return [event.amount for event in events if isinstance(event, CreditAccount.Debited)]


@pytest.fixture
def rival(container: Container) -> Iterator[Container]:
    """Another process on the same database: what it writes, the batcher's writer did not."""
    other = Container(container.settings)
    yield other
    other.close()


def test_a_batch_with_a_request_short_of_credits_fails_that_request_alone(container: Container) -> None:
    app = container.app
    workspace_id = app.create_workspace("Acme")[0].id  # 50 credits

    with held_batcher(app) as batcher:
        answers = [
            batcher.submit(workspace_id, "image", IMAGES, 10),
            batcher.submit(workspace_id, "image", IMAGES, 10),
            batcher.submit(workspace_id, "copy", BRIEF, 1),
        ]
        batcher.start()
        first, second, third = (outcome(a) for a in answers)

    assert isinstance(first, JobReceipt) and first.credits_remaining == 20
    assert isinstance(second, InsufficientCredits)
    assert isinstance(third, JobReceipt) and third.credits_remaining == 19
    assert (batcher.stats.batches, app.credit_account(workspace_id).balance, debits(app, workspace_id)) == (1, 19, [30, 1])


def test_a_key_repeated_within_a_batch_makes_one_job_and_one_charge(container: Container) -> None:
    app = container.app
    workspace_id = app.create_workspace("Acme")[0].id

    with held_batcher(app) as batcher:
        answers = [batcher.submit(workspace_id, "copy", BRIEF, 1, idempotency_key="k-1") for _ in range(3)]
        batcher.start()
        receipts = [a.result(timeout=30) for a in answers]

    assert len({r.job.id for r in receipts}) == 1
    assert [r.duplicate for r in receipts] == [False, True, True]
    assert debits(app, workspace_id) == [1]
    assert app.get_job(workspace_id, receipts[0].job.id).status == "queued"


def test_a_key_already_stored_returns_the_stored_job_without_a_charge(container: Container) -> None:
    app = container.app
    workspace_id = app.create_workspace("Acme")[0].id
    stored = app.request_job_alone(workspace_id, "copy", BRIEF, 1, idempotency_key="k-1").job

    with held_batcher(app) as batcher:
        again = batcher.submit(workspace_id, "copy", BRIEF, 1, idempotency_key="k-1")
        batcher.start()
        receipt = again.result(timeout=30)

    assert (receipt.job.id, receipt.duplicate, debits(app, workspace_id)) == (stored.id, True, [1])


def test_a_key_reused_with_another_body_within_a_batch_fails_alone(container: Container) -> None:
    app = container.app
    workspace_id = app.create_workspace("Acme")[0].id

    with held_batcher(app) as batcher:
        answers = [
            batcher.submit(workspace_id, "copy", BRIEF, 1, idempotency_key="k-1"),
            batcher.submit(workspace_id, "copy", OTHER_BRIEF, 1, idempotency_key="k-1"),
            batcher.submit(workspace_id, "copy", OTHER_BRIEF, 1, idempotency_key="k-2"),
        ]
        batcher.start()
        first, reused, other = (outcome(a) for a in answers)

    assert isinstance(first, JobReceipt) and isinstance(other, JobReceipt)
    assert isinstance(reused, IdempotencyKeyReused)
    assert debits(app, workspace_id) == [1, 1]


def test_a_batch_is_saved_in_its_writers_own_transaction_not_queued_for_the_event_log_writer(container: Container) -> None:
    # A batch is a group already: queued behind the event log's writer thread it would only wait for it.
    app = container.app
    groups = event_log_of(container).groups
    assert groups is not None, "the event log groups other commands' inserts"
    workspaces = [app.create_workspace(name)[0].id for name in ("Acme", "Globex")]
    inserts_before = groups.stats.inserts

    with held_batcher(app) as batcher:
        answers = [batcher.submit(workspace_id, "copy", BRIEF, 1) for workspace_id in [*workspaces, workspaces[0]]]
        batcher.start()
        receipts = [outcome(answer) for answer in answers]

    assert all(isinstance(receipt, JobReceipt) for receipt in receipts)
    assert [debits(app, workspace_id) for workspace_id in workspaces] == [[1, 1], [1]]
    assert (batcher.stats.batches, groups.stats.inserts) == (1, inserts_before)


def test_each_request_in_a_batch_records_its_own_callers_metadata(container: Container) -> None:
    app = container.app
    workspace_id = app.create_workspace("Acme")[0].id

    with held_batcher(app) as batcher:
        answers = []
        for n in range(2):
            with metadata(request_id=f"req-{n}", actor=f"api_key:{n}"):
                answers.append(batcher.submit(workspace_id, "copy", BRIEF, 1, idempotency_key=f"k-{n}"))
        batcher.start()
        jobs = [a.result(timeout=30).job for a in answers]

    debit_meta = [event_metadata(e) for e in app.events.get(CreditAccount.id_for(workspace_id)) if isinstance(e, CreditAccount.Debited)]
    assert [m.get("request_id") for m in debit_meta] == ["req-0", "req-1"]
    for n, job in enumerate(jobs):
        assert [event_metadata(e)["actor"] for e in app.events.get(job.id)] == [f"api_key:{n}"]
        key_id = IdempotencyKey.id_for(workspace_id, f"k-{n}")
        assert [event_metadata(e)["request_id"] for e in app.events.get(key_id)] == [f"req-{n}"]


def test_a_batch_that_loses_a_race_to_another_process_is_applied_again_and_charges_once(
    container: Container, rival: Container, monkeypatch: pytest.MonkeyPatch
) -> None:
    app = container.app
    workspace_id = app.create_workspace("Acme")[0].id
    save = app.save
    raced: list[JobReceipt] = []

    def save_after_the_rival(*aggregates: Any, **kwargs: Any) -> Any:
        if not raced:  # between this batch's load and its save, another process debits the account
            raced.append(rival.app.request_job_alone(workspace_id, "image", IMAGES, 1))
        return save(*aggregates, **kwargs)

    monkeypatch.setattr(app, "save", save_after_the_rival)
    with held_batcher(app) as batcher:
        answers = [batcher.submit(workspace_id, "copy", BRIEF, 1, idempotency_key=f"k-{n}") for n in range(3)]
        batcher.start()
        receipts = [a.result(timeout=30) for a in answers]

    assert batcher.stats.conflicts == 1
    assert [r.credits_remaining for r in receipts] == [46, 45, 44]
    assert sorted(debits(app, workspace_id)) == [1, 1, 1, 3]
    assert app.credit_account(workspace_id).balance == 44


def test_a_request_refused_on_an_account_in_memory_that_another_process_topped_up_is_decided_again(
    container: Container, rival: Container
) -> None:
    app = container.app
    workspace_id = app.create_workspace("Acme")[0].id  # 50 credits
    with held_batcher(app) as batcher:
        spent = batcher.submit(workspace_id, "image", IMAGES, 16)  # 48 credits
        batcher.start()
        assert outcome(spent).credits_remaining == 2  # type: ignore[union-attr]
        rival.app.top_up(workspace_id, 100, "order-1")  # the writer's account in memory does not know
        answer = outcome(batcher.submit(workspace_id, "image", IMAGES, 1))

    assert isinstance(answer, JobReceipt) and answer.credits_remaining == 99
    assert batcher.stats.trusted == 1, "the second batch was applied to the account in memory"
    assert (app.credit_account(workspace_id).balance, debits(app, workspace_id)) == (99, [48, 3])


def test_a_replayed_key_answers_the_balance_another_process_topped_up(container: Container, rival: Container) -> None:
    # A replay saves nothing on the account, so nothing but a read proves the balance it answers.
    app = container.app
    workspace_id = app.create_workspace("Acme")[0].id  # 50 credits
    with held_batcher(app) as batcher:
        batcher.start()
        first = outcome(batcher.submit(workspace_id, "copy", BRIEF, 1, idempotency_key="k-1"))
        rival.app.top_up(workspace_id, 100, "order-1")
        replayed = outcome(batcher.submit(workspace_id, "copy", BRIEF, 1, idempotency_key="k-1"))

    assert isinstance(first, JobReceipt) and isinstance(replayed, JobReceipt)
    assert (replayed.duplicate, replayed.job.id, replayed.credits_remaining) == (True, first.job.id, 149)


def test_a_batch_on_an_account_in_memory_that_another_process_changed_is_saved_once_and_the_next_batch_reads_first(
    container: Container,
    rival: Container,
) -> None:
    app = container.app
    workspace_id = app.create_workspace("Acme")[0].id  # 50 credits
    with held_batcher(app) as batcher:
        batcher.start()
        first = outcome(batcher.submit(workspace_id, "copy", BRIEF, 1))
        rival.app.request_job_alone(workspace_id, "image", IMAGES, 1)
        second = outcome(batcher.submit(workspace_id, "copy", BRIEF, 1))
        third = outcome(batcher.submit(workspace_id, "copy", BRIEF, 1))

    assert [r.credits_remaining for r in (first, second, third) if isinstance(r, JobReceipt)] == [49, 45, 44]
    # The second batch trusted its account and lost to the rival's debit; the third read the log first.
    assert (batcher.stats.trusted, batcher.stats.conflicts) == (1, 1)
    assert (app.credit_account(workspace_id).balance, debits(app, workspace_id)) == (44, [1, 3, 1, 1])


def test_a_save_that_fails_for_another_reason_answers_each_request_from_its_own_transaction(
    container: Container, monkeypatch: pytest.MonkeyPatch
) -> None:
    app = container.app
    workspace_id = app.create_workspace("Acme")[0].id
    save = app.save
    failed: list[bool] = []

    def fail_once(*aggregates: Any, **kwargs: Any) -> Any:
        if not failed:
            failed.append(True)
            raise OSError("the connection broke before the transaction began")
        return save(*aggregates, **kwargs)

    monkeypatch.setattr(app, "save", fail_once)
    with held_batcher(app) as batcher:
        answers = [batcher.submit(workspace_id, "copy", BRIEF, 1) for _ in range(4)]
        batcher.start()
        receipts = [a.result(timeout=30) for a in answers]

    assert batcher.stats.one_at_a_time == 1
    assert [r.credits_remaining for r in receipts] == [49, 48, 47, 46]
    assert debits(app, workspace_id) == [1, 1, 1, 1]


def test_a_full_queue_answers_busy_at_once_and_keeps_what_it_took(container: Container) -> None:
    app = container.app
    workspace_id = app.create_workspace("Acme")[0].id

    with held_batcher(app, max_queue=2) as batcher:
        taken = [batcher.submit(workspace_id, "copy", BRIEF, 1) for _ in range(2)]
        with pytest.raises(Busy):
            batcher.submit(workspace_id, "copy", BRIEF, 1)
        batcher.start()
        assert [a.result(timeout=30).credits_remaining for a in taken] == [49, 48]


def test_a_workspace_that_floods_the_queue_is_answered_busy_while_another_still_gets_in(container: Container) -> None:
    app = container.app
    flooding, other = (app.create_workspace(name)[0].id for name in ("Flood", "Quiet"))

    with held_batcher(app, max_queue=8, max_queue_per_workspace=3) as batcher:
        taken = [batcher.submit(flooding, "copy", BRIEF, 1) for _ in range(3)]
        with pytest.raises(Busy, match="this workspace"):
            batcher.submit(flooding, "copy", BRIEF, 1)
        quiet = batcher.submit(other, "copy", BRIEF, 1)
        assert batcher.waiting == 4 and batcher.stats.busy == 1
        batcher.start()
        assert [a.result(timeout=30).credits_remaining for a in taken] == [49, 48, 47]
        assert quiet.result(timeout=30).credits_remaining == 49

    assert debits(app, flooding) == [1, 1, 1] and debits(app, other) == [1]


def test_a_batch_takes_waiting_workspaces_in_turn_and_each_workspaces_requests_in_order(container: Container) -> None:
    """Two workspaces queued 6 requests ahead of a third one's: a batch of 3 holds one request of each."""
    app = container.app
    busy_a, busy_b, late = (app.create_workspace(name)[0].id for name in ("A", "B", "Late"))
    order: list[tuple[UUID, int]] = []

    with held_batcher(app, max_batch=3) as batcher:
        answers = {}
        for workspace_id in (busy_a, busy_b) * 3 + (late,):
            answer = batcher.submit(workspace_id, "copy", BRIEF, 1)
            answer.add_done_callback(lambda done, w=workspace_id: order.append((w, done.result().credits_remaining)))
            answers[answer] = workspace_id
        batcher.start()
        for answer in answers:
            answer.result(timeout=30)

    assert {workspace for workspace, _ in order[:3]} == {busy_a, busy_b, late}
    assert batcher.stats.batches == 3
    for workspace_id in (busy_a, busy_b):
        assert [left for w, left in order if w == workspace_id] == [49, 48, 47]


def test_a_caller_that_gives_up_cannot_cancel_its_command_and_the_rest_of_the_batch_is_answered(container: Container) -> None:
    """A client that disconnects cancels its request's task, which tries to cancel the answer it awaited: the
    command goes through whole (charged once, its job made) and its batch mates get their answers."""
    app = container.app
    workspace_id = app.create_workspace("Acme")[0].id

    with held_batcher(app) as batcher:
        abandoned, kept = (batcher.submit(workspace_id, "copy", BRIEF, 1) for _ in range(2))
        assert abandoned.cancel() is False
        batcher.start()
        assert kept.result(timeout=30).credits_remaining == 48
        assert not abandoned.cancelled()
        job_id = abandoned.result(timeout=30).job.id

    assert debits(app, workspace_id) == [1, 1]
    assert app.get_job(workspace_id, job_id).cost == 1


def test_requests_left_in_the_queue_at_close_are_answered_busy(container: Container) -> None:
    app = container.app
    workspace_id = app.create_workspace("Acme")[0].id
    batcher = JobRequestBatcher(app, autostart=False)
    left = batcher.submit(workspace_id, "copy", BRIEF, 1)

    batcher.close()

    assert isinstance(outcome(left), Busy)
    assert debits(app, workspace_id) == []


def test_an_overdraft_storm_on_one_workspace_accepts_exactly_what_the_credits_cover(container: Container) -> None:
    app = container.app
    workspace_id = app.create_workspace("Acme")[0].id  # 50 credits: 16 images of 3
    results: list[JobReceipt | Exception] = []
    start = threading.Barrier(40)

    def request() -> None:
        start.wait()
        try:
            results.append(app.request_job(workspace_id, "image", IMAGES, 1))
        except DomainError as error:
            results.append(error)

    threads = [threading.Thread(target=request) for _ in range(40)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    accepted = [r for r in results if isinstance(r, JobReceipt)]
    assert app.job_batcher is not None and app.job_batcher.stats.batches < 40
    assert len(results) == 40 and len(accepted) == 16
    assert all(isinstance(r, InsufficientCredits) for r in results if not isinstance(r, JobReceipt))
    assert app.credit_account(workspace_id).balance == 2
    assert debits(app, workspace_id) == [3] * 16
    assert len({r.job.id for r in accepted}) == 16


def test_two_processes_on_the_same_workspaces_with_random_routing_lose_no_update(make_container: Any) -> None:
    first: Container = make_container(plan_free_credits=300)
    second = Container(first.settings)
    try:
        workspaces = [first.app.create_workspace(f"W{n}")[0].id for n in range(4)]
        results: list[tuple[UUID, JobReceipt | Exception]] = []
        lock = threading.Lock()
        start = threading.Barrier(16)

        def client(seed: int) -> None:
            rng = random.Random(seed)
            start.wait()
            for _ in range(30):
                workspace_id = rng.choice(workspaces)
                app = rng.choice([first.app, second.app])
                key = f"k-{rng.randrange(40)}" if rng.random() < 0.3 else None
                try:
                    answer: JobReceipt | Exception = app.request_job(workspace_id, "image", IMAGES, 1, idempotency_key=key)
                except DomainError as error:
                    answer = error
                with lock:
                    results.append((workspace_id, answer))

        threads = [threading.Thread(target=client, args=(seed,)) for seed in range(16)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()

        assert len(results) == 16 * 30
        assert not [a for _, a in results if not isinstance(a, JobReceipt | InsufficientCredits)]
        for workspace_id in workspaces:
            jobs = {a.job.id for w, a in results if w == workspace_id and isinstance(a, JobReceipt)}
            balance = second.app.credit_account(workspace_id).balance
            assert debits(first.app, workspace_id) == [3] * len(jobs)
            assert balance == 300 - 3 * len(jobs) >= 0
            assert all(first.app.get_job(workspace_id, job_id).cost == 3 for job_id in jobs)
        assert first.app.job_batcher is not None and second.app.job_batcher is not None
        # The two writers did collide (dozens of times in a run here): the retry path was exercised.
        assert first.app.job_batcher.stats.conflicts + second.app.job_batcher.stats.conflicts > 0
        assert first.app.job_batcher.stats.batches + second.app.job_batcher.stats.batches < len(results)
    finally:
        second.close()


KINDS = st.tuples(
    st.integers(0, 2),  # workspace
    st.sampled_from([("copy", 1), ("image", 1), ("image", 2), ("image", 3)]),
    st.sampled_from([None, "a", "b"]),  # idempotency key
    st.sampled_from([BRIEF, OTHER_BRIEF]),
)


def test_a_batch_answers_every_request_as_the_requests_one_at_a_time_would(make_container: Any) -> None:
    container: Container = make_container(plan_free_credits=10)
    app = container.app

    @settings(max_examples=40)
    @given(requests=st.lists(KINDS, min_size=1, max_size=16))
    def batch_equals_sequence(requests: list[tuple[int, tuple[str, int], str | None, dict[str, Any]]]) -> None:
        batched = [app.create_workspace("Batched")[0].id for _ in range(3)]
        alone = [app.create_workspace("Alone")[0].id for _ in range(3)]
        with held_batcher(app) as batcher:
            answers = [
                batcher.submit(batched[w], job_type, body, outputs, idempotency_key=key) for w, (job_type, outputs), key, body in requests
            ]
            batcher.start()
            got = [outcome(a) for a in answers]
        expected: list[JobReceipt | Exception] = []
        for w, (job_type, outputs), key, body in requests:
            try:
                expected.append(app.request_job_alone(alone[w], job_type, body, outputs, idempotency_key=key))
            except DomainError as error:
                expected.append(error)

        assert [shape(a, got) for a in got] == [shape(a, expected) for a in expected]
        assert [app.credit_account(w).balance for w in batched] == [app.credit_account(w).balance for w in alone]
        assert [debits(app, w) for w in batched] == [debits(app, w) for w in alone]
        for answer in got:
            if isinstance(answer, JobReceipt):
                assert isinstance(app.get_job(answer.job.workspace_id, answer.job.id), GenerationJob)

    batch_equals_sequence()


def shape(answer: JobReceipt | Exception, answers: list[JobReceipt | Exception]) -> tuple[Any, ...]:
    """What a request was answered, without the job's random id: a duplicate names the request that made its job."""
    if isinstance(answer, Exception):
        return (type(answer).__name__,)
    made_by = next(i for i, a in enumerate(answers) if isinstance(a, JobReceipt) and a.job.id == answer.job.id)
    return (answer.duplicate, made_by, answer.credits_remaining, answer.job.cost)
