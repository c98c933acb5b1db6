"""The publishing worker's hand-over rules on real PostgreSQL, against a receiver on loopback."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from datetime import timedelta
from uuid import UUID

import msgspec
import pytest

from adapters.bootstrap import Container
from projections.audit_log import entries
from tests.conftest import ManualClock, catch_up_all
from tests.fakes.webhook_receiver import FakeWebhookReceiver

RECONCILE_AFTER_SECONDS = 30.0


@pytest.fixture
def receiver() -> Iterator[FakeWebhookReceiver]:
    with FakeWebhookReceiver() as fake:
        yield fake


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock()


@pytest.fixture
def publishing_container(make_container: Callable[..., Container], clock: ManualClock) -> Container:
    return make_container(clock=clock, reconcile_after_seconds=RECONCILE_AFTER_SECONDS)


def handed_over_post(container: Container, clock: ManualClock, receiver: FakeWebhookReceiver) -> tuple[UUID, UUID]:
    """(workspace id, post id) of a post due now, handed over to the workers."""
    workspace = container.app.create_workspace("Acme")[0]
    account = container.publishing.connect_manual(workspace.id, "webhook", {"url": receiver.hook_url})
    catch_up_all(container)  # the schedule names accounts as the accounts read model lists them
    publish_at = clock.now() + timedelta(minutes=5)
    schedule = {"mode": "scheduled", "posts": [{"account": str(account.id), "text": "Cold water", "publishAt": publish_at.isoformat()}]}
    (post,) = container.publishing.apply(workspace.id, msgspec.json.encode(schedule)).posts
    catch_up_all(container)
    clock.current = publish_at
    assert container.publishing.request_publish(post.id)
    return workspace.id, post.id


def first_worker_mid_call(container: Container, receiver: FakeWebhookReceiver, post_id: UUID) -> threading.Thread:
    """A worker publishing the post, held by the receiver for a while after the request arrived."""
    receiver.stall("POST", "/hooks/pressroom", seconds=1.5, times=1)
    worker = threading.Thread(target=container.publishing.publish, args=(post_id,))
    worker.start()
    while not receiver.seen("POST"):
        time.sleep(0.01)
    return worker


def test_post_handed_over_twice_when_the_first_worker_is_mid_call_then_the_second_leaves_it_and_it_goes_out_once(
    publishing_container: Container, clock: ManualClock, receiver: FakeWebhookReceiver
) -> None:
    workspace_id, post_id = handed_over_post(publishing_container, clock, receiver)
    first = first_worker_mid_call(publishing_container, receiver, post_id)

    second = publishing_container.publishing.publish(post_id)
    first.join()

    post = publishing_container.publishing.get_post(workspace_id, post_id)
    assert second is None
    assert (post.status, len(post.attempts), len(receiver.posts)) == ("published", 1, 1)


def test_attempt_older_than_reconcile_after_when_handed_over_again_then_unknown_without_resending_and_the_late_receipt_settles_it(
    publishing_container: Container, clock: ManualClock, receiver: FakeWebhookReceiver
) -> None:
    workspace_id, post_id = handed_over_post(publishing_container, clock, receiver)
    first = first_worker_mid_call(publishing_container, receiver, post_id)
    clock.advance(seconds=RECONCILE_AFTER_SECONDS + 1)

    second = publishing_container.publishing.publish(post_id)
    requests_meanwhile = len(receiver.seen("POST"))
    first.join()

    post = publishing_container.publishing.get_post(workspace_id, post_id)
    assert (second, requests_meanwhile) == ("unknown", 1)
    assert (post.status, post.provider_post_id, len(receiver.posts)) == ("published", receiver.posts[0]["id"], 1)


def test_handover_no_worker_started_when_taken_over_then_published_once_and_the_late_worker_leaves_it(
    publishing_container: Container, clock: ManualClock, receiver: FakeWebhookReceiver
) -> None:
    workspace_id, post_id = handed_over_post(publishing_container, clock, receiver)
    catch_up_all(publishing_container)
    takeover = publishing_container.takeover
    clock.advance(seconds=takeover.after.total_seconds() + 1)

    started = takeover.once()
    takeover.close()  # waits for the attempt under way
    redelivered = publishing_container.publishing.publish(post_id)  # the worker's copy of the hand-over, late

    post = publishing_container.publishing.get_post(workspace_id, post_id)
    assert (started, redelivered) == (1, None)
    assert (post.status, len(post.attempts), len(receiver.posts)) == ("published", 1, 1)
    catch_up_all(publishing_container)
    (started_event,) = entries(publishing_container.pool, aggregate_id=post_id, event_type="post.attempt_started")
    assert started_event.metadata["actor"].startswith("scheduler:")  # the attempt names who made it


def test_handover_younger_than_takeover_after_when_taken_over_then_left_to_the_workers(
    publishing_container: Container, clock: ManualClock, receiver: FakeWebhookReceiver
) -> None:
    workspace_id, post_id = handed_over_post(publishing_container, clock, receiver)
    catch_up_all(publishing_container)
    takeover = publishing_container.takeover

    clock.advance(seconds=takeover.after.total_seconds() - 0.5)

    takeover.once()
    takeover.close()

    post = publishing_container.publishing.get_post(workspace_id, post_id)
    assert (post.status, len(post.attempts), receiver.seen("POST")) == ("publishing", 0, [])


def test_handover_a_worker_is_sending_when_taken_over_then_left_to_it_and_it_goes_out_once(
    publishing_container: Container, clock: ManualClock, receiver: FakeWebhookReceiver
) -> None:
    workspace_id, post_id = handed_over_post(publishing_container, clock, receiver)
    worker = first_worker_mid_call(publishing_container, receiver, post_id)
    clock.advance(seconds=publishing_container.takeover.after.total_seconds() + 1)

    taken = publishing_container.publishing.take_over(post_id, clock.now() - publishing_container.takeover.after)
    worker.join()

    post = publishing_container.publishing.get_post(workspace_id, post_id)
    assert taken is None
    assert (post.status, len(post.attempts), len(receiver.posts)) == ("published", 1, 1)
