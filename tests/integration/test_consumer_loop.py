"""A consumer group's loop on the real broker: records handled concurrently with offsets committed only up
to what has settled; a poll handled in one call when the consumer can take it so, each record on its own
(retried, dead-lettered) when it cannot; and the webhook consumer's use of that."""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import UUID, uuid4

import msgspec
import pytest
from kafka import KafkaConsumer
from kafka.structs import TopicPartition

from adapters.bootstrap import Container, ServiceFailed
from adapters.consumers import ConsumerLoop
from adapters.integration_events import dead_letter_topic, topic_for
from adapters.kafka import consumer, producer
from application.integration_events import Envelope
from tests.conftest import Background, catch_up_all, wait_for


def envelope(workspace_id: UUID, event_type: str = "job.completed", occurred_at: datetime | None = None) -> Envelope:
    return Envelope(
        id=uuid4(),
        type=event_type,
        aggregate_type=event_type.split(".", maxsplit=1)[0],
        aggregate_id=uuid4(),
        version=1,
        workspace_id=workspace_id,
        occurred_at=occurred_at or datetime.now(UTC),
        schema_version=1,
        data={},
    )


def send(container: Container, *values: bytes) -> None:
    sending = producer(container.kafka_bootstrap)
    for value in values:
        sending.send(topic_for("jobs", container.settings.kafka_namespace), key=b"same partition", value=value)
    sending.flush()
    sending.close()


def loop_for(container: Container, handle: Any, handle_batch: Any = None, concurrency: int = 8) -> ConsumerLoop:
    namespace = container.settings.kafka_namespace
    return ConsumerLoop(
        consumer(container.settings, f"{namespace}-test", [topic_for("jobs", namespace)]),
        handle,
        dead_letters=producer(container.kafka_bootstrap),
        dead_letter_topic=dead_letter_topic(namespace),
        handle_batch=handle_batch,
        concurrency=concurrency,
    )


def committed(container: Container) -> int | None:
    """The test group's committed offset of the partition `send` writes to (None: nothing committed)."""
    namespace = container.settings.kafka_namespace
    topic = topic_for("jobs", namespace)
    looking = KafkaConsumer(bootstrap_servers=container.kafka_bootstrap, group_id=f"{namespace}-test", enable_auto_commit=False)
    try:
        offsets = [looking.committed(TopicPartition(topic, p)) for p in looking.partitions_for_topic(topic) or ()]
    finally:
        looking.close(autocommit=False)
    return max((o for o in offsets if o is not None), default=None)


def test_a_slow_record_holds_back_only_its_own_offset_not_the_records_after_it(container: Container, background: Background) -> None:
    sent = [envelope(uuid4()) for _ in range(20)]
    send(container, *(msgspec.json.encode(e) for e in sent))
    slow, released = sent[0].id, threading.Event()
    handled: list[UUID] = []

    def handle(received: Envelope) -> None:
        if received.id == slow:
            released.wait(timeout=30)
        handled.append(received.id)

    background.start(loop_for(container, handle, concurrency=2).run)

    # With two handlers, the 19 records after the slow one are handled while it still is.
    wait_for(lambda: len(handled) == 19)
    assert set(handled) == {e.id for e in sent[1:]}
    assert committed(container) is None  # a restart would read from the slow record again, and all after it
    released.set()
    wait_for(lambda: committed(container) == 20)
    assert handled[-1] == slow


def test_a_poll_is_handled_in_one_call(container: Container, background: Background) -> None:
    workspace_id = uuid4()
    sent = [envelope(workspace_id) for _ in range(3)]
    send(container, *(msgspec.json.encode(e) for e in sent))
    one_by_one: list[Envelope] = []
    batches: list[list[Envelope]] = []
    background.start(loop_for(container, one_by_one.append, batches.append).run)

    wait_for(lambda: sum(map(len, batches)) == 3)
    assert [e.id for batch in batches for e in batch] == [e.id for e in sent]
    assert one_by_one == []


def test_when_the_batch_handler_fails_each_record_is_handled_alone(container: Container, background: Background) -> None:
    sent = [envelope(uuid4()) for _ in range(3)]
    send(container, *(msgspec.json.encode(e) for e in sent))
    one_by_one: list[Envelope] = []

    def refuse(_: list[Envelope]) -> None:
        raise RuntimeError("the read model is away")

    background.start(loop_for(container, one_by_one.append, refuse).run)

    wait_for(lambda: len(one_by_one) == 3)
    assert [e.id for e in one_by_one] == [e.id for e in sent]


def test_an_unreadable_record_is_dead_lettered_and_the_rest_of_its_poll_still_handled(container: Container, background: Background) -> None:
    first, last = envelope(uuid4()), envelope(uuid4())
    send(container, msgspec.json.encode(first), b"not an envelope", msgspec.json.encode(last))
    handled: list[Envelope] = []
    background.start(loop_for(container, handled.append, handled.extend).run)

    wait_for(lambda: len(handled) == 2)
    assert [e.id for e in handled] == [first.id, last.id]
    dead = KafkaConsumer(
        dead_letter_topic(container.settings.kafka_namespace),
        bootstrap_servers=container.kafka_bootstrap,
        auto_offset_reset="earliest",
        consumer_timeout_ms=10_000,
    )
    try:
        letter = next(iter(dead))
    finally:
        dead.close()
    assert letter.value == b"not an envelope"
    assert dict(letter.headers)["pressroom-source-topic"] == topic_for("jobs", container.settings.kafka_namespace).encode()


def test_webhook_consumer_queues_a_poll_only_for_the_webhooks_that_subscribe(container: Container) -> None:
    app = container.app
    subscribed = app.create_workspace("Subscribed")[0].id
    quiet = app.create_workspace("Quiet")[0].id
    before_the_webhook = datetime.now(UTC) - timedelta(minutes=1)
    webhook = app.create_webhook(subscribed, "http://127.0.0.1:9/hook", ("job.*",))
    catch_up_all(container)
    wanted = envelope(subscribed)
    poll = [
        wanted,
        envelope(subscribed, "post.published"),  # not a subscribed type
        envelope(subscribed, occurred_at=before_the_webhook),  # happened before the webhook existed
        envelope(quiet),  # a workspace without webhooks
    ]
    dispatcher = container.webhook_dispatcher()
    try:
        dispatcher.handle_batch(poll)
        dispatcher.handle_batch(poll)  # a poll handled again, after a crash before its offsets were committed
    finally:
        dispatcher.client.close()

    with container.pool.connection() as conn:
        queued = conn.execute("SELECT webhook_id, event_id FROM webhook_deliveries").fetchall()
    assert queued == [(webhook.id, wanted.id)]


def test_a_service_whose_loop_fails_stops_whole_rather_than_beat_on_without_it(container: Container) -> None:
    stop, other_stopped = threading.Event(), threading.Event()

    def failing(_: threading.Event) -> None:
        raise RuntimeError("the broker went away")

    def waiting(stop: threading.Event) -> None:
        stop.wait(30)
        other_stopped.set()

    with pytest.raises(ServiceFailed, match="the broker went away"):
        container.run_with_heartbeat("worker", stop, failing, waiting)
    assert other_stopped.is_set()  # its other loop and its heartbeat stopped too, so the supervisor restarts it
