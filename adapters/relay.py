"""The relay: every event, in log order, to its Kafka topic; the position is tracked after the broker acknowledges."""

from __future__ import annotations

import msgspec
from eventsourcing.persistence import Tracking
from eventsourcing.postgres import PostgresDatastore
from kafka import KafkaProducer

from adapters.integration_events import envelope_of, headers_of
from projections.engine import Batch, TrackedConsumer

ACK_TIMEOUT_SECONDS = 30


class KafkaRelay(TrackedConsumer):
    def __init__(self, datastore: PostgresDatastore, producer: KafkaProducer, application_name: str, namespace: str) -> None:
        super().__init__(datastore, "relay", application_name)
        self.namespace = namespace
        self.producer = producer

    def handle(self, batch: Batch) -> None:
        # At-least-once: a crash between the flush and the tracking insert resends this batch,
        # with the same envelope ids, which consumers dedupe.
        sent = []
        for _, event in batch:
            topic, envelope = envelope_of(event, self.namespace)
            sent.append(
                self.producer.send(
                    topic,
                    key=str(envelope.aggregate_id).encode(),
                    value=msgspec.json.encode(envelope),
                    headers=[("pressroom-event-type", envelope.type.encode()), *headers_of(event)],
                )
            )
        self.producer.flush()
        for acknowledgement in sent:
            acknowledgement.get(timeout=ACK_TIMEOUT_SECONDS)
        self.insert_tracking(Tracking(self.application_name, batch[-1][0]))
