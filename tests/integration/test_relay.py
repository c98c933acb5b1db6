"""The relay publishes every event, in log order, keyed by aggregate, in the integration envelope."""

from __future__ import annotations

import threading
from uuid import UUID

import msgspec
from kafka import KafkaConsumer, TopicPartition

from adapters.bootstrap import Container
from adapters.integration_events import Envelope, topic_for
from tests.conftest import relay_once, wait_for


def read_topic(container: Container, family: str) -> list[tuple[bytes, Envelope, dict[str, bytes]]]:
    consumer = KafkaConsumer(bootstrap_servers=container.settings.kafka_bootstrap, enable_auto_commit=False)
    topic = topic_for(family, container.settings.kafka_namespace)
    partitions = [TopicPartition(topic, p) for p in consumer.partitions_for_topic(topic) or []]
    consumer.assign(partitions)
    consumer.seek_to_beginning(*partitions)
    records = []
    for _ in range(10):
        polled = consumer.poll(timeout_ms=300)
        records += [r for batch in polled.values() for r in batch]
    consumer.close()
    return [(r.key, msgspec.json.decode(r.value, type=Envelope), {k: bytes(v) for k, v in r.headers}) for r in records]


def test_every_event_reaches_its_family_topic_in_order_with_the_envelope(container: Container) -> None:
    workspace, _ = container.app.create_workspace("Acme")
    job = container.app.request_job(workspace.id, "copy", {"product": {"name": "Lamp"}}, outputs=1).job

    assert relay_once(container) == 6

    jobs = read_topic(container, "jobs")
    assert [(e.type, e.version) for _, e, _ in jobs] == [("job.requested", 1)]
    key, envelope, headers = jobs[0]
    assert key == str(job.id).encode() and envelope.aggregate_id == job.id and envelope.workspace_id == workspace.id
    assert envelope.aggregate_type == "GenerationJob" and envelope.schema_version == 1
    assert envelope.data["cost"] == 1 and envelope.data["jobType"] == "copy"
    assert headers["pressroom-event-type"] == b"job.requested"
    credit_types = [e.type for _, e, _ in read_topic(container, "credits")]
    assert credit_types == ["credits.opened", "credits.granted", "credits.debited"]
    assert sorted(e.type for _, e, _ in read_topic(container, "workspaces")) == ["api_key.issued", "workspace.created"]


def test_relay_when_restarted_resumes_after_its_tracked_position(container: Container) -> None:
    workspace, _ = container.app.create_workspace("Acme")
    relay_once(container)
    container.app.top_up(workspace.id, 5, "order-9")

    assert relay_once(container) == 1

    assert [e.type for _, e, _ in read_topic(container, "credits")] == ["credits.opened", "credits.granted", "credits.granted"]


def test_request_id_travels_from_event_metadata_into_kafka_headers(container: Container) -> None:
    from application.metadata import metadata

    with metadata(request_id="req-42", actor="api_key:test"):
        workspace, _ = container.app.create_workspace("Acme")
    relay_once(container)

    _, envelope, headers = next(r for r in read_topic(container, "workspaces") if r[1].type == "workspace.created")
    assert headers["pressroom-request-id"] == b"req-42"
    assert headers["pressroom-actor"] == b"api_key:test"
    assert "meta" not in envelope.data and envelope.aggregate_id == UUID(str(workspace.id))


def test_running_relay_publishes_new_events_promptly(container: Container) -> None:
    stop = threading.Event()
    thread = threading.Thread(target=container.run_relay, args=(stop,), daemon=True)
    thread.start()
    try:
        container.app.create_workspace("Acme")
        wait_for(lambda: len(read_topic(container, "workspaces")) == 2, timeout=20)
    finally:
        stop.set()
        thread.join(10)
