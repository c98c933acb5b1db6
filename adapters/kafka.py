"""Kafka clients: topic creation, the producer and consumers, configured for any Kafka-protocol broker."""

from __future__ import annotations

import contextlib
from typing import Any

from kafka import KafkaAdminClient, KafkaConsumer, KafkaProducer
from kafka.admin import NewTopic
from kafka.errors import TopicAlreadyExistsError

from adapters.integration_events import all_topics
from adapters.settings import Settings

PARTITIONS = 4


def create_topics(bootstrap: str, namespace: str) -> None:
    admin = KafkaAdminClient(bootstrap_servers=bootstrap, client_id="pressroom-migrate")
    try:
        existing = set(admin.list_topics())
        missing = [
            NewTopic(name, num_partitions=PARTITIONS, replication_factor=1) for name in all_topics(namespace) if name not in existing
        ]
        if missing:
            # Another process may create them at the same moment; either way they exist.
            with contextlib.suppress(TopicAlreadyExistsError):
                admin.create_topics(missing)
    finally:
        admin.close()


def producer(bootstrap: str) -> KafkaProducer:
    return KafkaProducer(
        bootstrap_servers=bootstrap,
        acks="all",
        enable_idempotence=True,
        linger_ms=5,
        client_id="pressroom",
    )


def consumer(settings: Settings, group: str, topics: list[str], **overrides: Any) -> KafkaConsumer:
    assert settings.kafka_bootstrap is not None
    kafka_consumer = KafkaConsumer(
        bootstrap_servers=settings.kafka_bootstrap,
        group_id=group,
        enable_auto_commit=False,
        auto_offset_reset="earliest",
        session_timeout_ms=settings.kafka_session_timeout_ms,
        heartbeat_interval_ms=settings.kafka_heartbeat_interval_ms,
        max_poll_interval_ms=settings.kafka_max_poll_interval_ms,
        # A fetch returns as soon as there is a record, or after this long: a job waits at most this for its worker.
        fetch_max_wait_ms=100,
        **overrides,
    )
    kafka_consumer.subscribe(topics)
    return kafka_consumer
