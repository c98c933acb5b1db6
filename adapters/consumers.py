"""Running a Kafka consumer group: decode, handle, commit only after success, dead-letter poison messages."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import msgspec
import structlog
from kafka import KafkaConsumer, KafkaProducer
from kafka.consumer.fetcher import ConsumerRecord

from adapters.integration_events import Envelope
from application.metadata import metadata

log = structlog.get_logger()

HANDLER_TRIES = 3


def _header(record: ConsumerRecord, name: str) -> str | None:
    for key, value in record.headers or []:
        if key == name:
            return bytes(value).decode()
    return None


class ConsumerLoop:
    """Handles each poll's records concurrently (a slow provider does not serialise the worker),
    then commits the offsets once every record of the poll is settled.

    With `handle_batch`, a poll is first handled in one call, for consumers whose work per record is a
    lookup and a write that many records can share; if that call raises, or a record cannot be read,
    each record goes through `handle` on its own, retried and dead-lettered as usual, so `handle_batch`
    must be safe to run again (what it did is done again, or not at all)."""

    def __init__(
        self,
        consumer: KafkaConsumer,
        handle: Callable[[Envelope], None],
        *,
        dead_letters: KafkaProducer,
        dead_letter_topic: str,
        concurrency: int = 8,
        on_idle: Callable[[], None] | None = None,
        handle_batch: Callable[[list[Envelope]], None] | None = None,
    ) -> None:
        self.consumer = consumer
        self.handle = handle
        self.handle_batch = handle_batch
        self.dead_letters = dead_letters
        self.dead_letter_topic = dead_letter_topic
        self.executor = ThreadPoolExecutor(max_workers=concurrency, thread_name_prefix="handler")
        self.on_idle = on_idle

    def run(self, stop: threading.Event) -> None:
        try:
            while not stop.is_set():
                polled = self.consumer.poll(timeout_ms=500, max_records=self.executor._max_workers * 4)
                records = [record for batch in polled.values() for record in batch]
                if records:
                    if not self._settle_together(records):
                        list(self.executor.map(self._settle, records))
                    self.consumer.commit()
                if self.on_idle is not None:
                    self.on_idle()
        finally:
            self.executor.shutdown(wait=True)
            # Offsets are committed after each poll's records settle; nothing is left to commit here.
            self.consumer.close(autocommit=False)

    def _settle_together(self, records: list[ConsumerRecord]) -> bool:
        """True when `handle_batch` handled every record of the poll; False leaves them to be settled one by one."""
        if self.handle_batch is None:
            return False
        try:
            self.handle_batch([msgspec.json.decode(record.value, type=Envelope) for record in records])
        except Exception as error:  # noqa: BLE001 - each record is then handled, retried or dead-lettered alone
            log.warning("batch_handler_failed", records=len(records), error=repr(error))
            return False
        return True

    def _settle(self, record: ConsumerRecord) -> None:
        error: BaseException | None = None
        for attempt in range(HANDLER_TRIES):
            try:
                envelope = msgspec.json.decode(record.value, type=Envelope)
                with (
                    structlog.contextvars.bound_contextvars(request_id=_header(record, "pressroom-request-id"), event_id=str(envelope.id)),
                    metadata(request_id=_header(record, "pressroom-request-id"), causation_id=str(envelope.id)),
                ):
                    self.handle(envelope)
                return
            except msgspec.DecodeError as poison:
                error = poison
                break
            except Exception as failure:  # noqa: BLE001 - retried, then dead-lettered, never skipped silently
                error = failure
                log.warning("handler_failed", topic=record.topic, offset=record.offset, attempt=attempt + 1, error=repr(failure))
                time.sleep(0.2 * 2**attempt)
        log.error("dead_lettered", topic=record.topic, partition=record.partition, offset=record.offset, error=repr(error))
        self.dead_letters.send(
            self.dead_letter_topic,
            key=record.key,
            value=record.value,
            headers=[
                *(record.headers or []),
                ("pressroom-error", repr(error).encode()),
                ("pressroom-source-topic", record.topic.encode()),
            ],
        ).get(timeout=30)


def run_in_thread(target: Callable[[threading.Event], Any], stop: threading.Event, name: str) -> threading.Thread:
    thread = threading.Thread(target=target, args=(stop,), name=name, daemon=True)
    thread.start()
    return thread
