"""Running a Kafka consumer group: decode, handle, commit only after success, dead-letter poison messages."""

from __future__ import annotations

import contextlib
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from typing import Any

import msgspec
import structlog
from kafka import KafkaConsumer, KafkaProducer
from kafka.consumer.fetcher import ConsumerRecord
from kafka.errors import KafkaError
from kafka.structs import OffsetAndMetadata, TopicPartition

from adapters.integration_events import Envelope
from application.metadata import metadata

log = structlog.get_logger()

HANDLER_TRIES = 3
# How long a poll waits for records while some are being handled: what settles meanwhile is committed after it.
SHORT_POLL_MS = 50


def _partition_of(record: ConsumerRecord) -> TopicPartition:
    return TopicPartition(record.topic, record.partition)


def _header(record: ConsumerRecord, name: str) -> str | None:
    for key, value in record.headers or []:
        if key == name:
            return bytes(value).decode()
    return None


class SettledOffsets:
    """Which records of each partition have settled, to commit no offset past one still being handled.

    Records of a partition are handed out in offset order and may settle in any order; the offset to
    commit is the one after the last of the unbroken run of settled records from the oldest. A record at
    or before one already handed out means the partition was read again from its committed offset (after
    a rebalance): what was tracked for it is forgotten, and settling a forgotten record changes nothing."""

    def __init__(self) -> None:
        self._handed_out: dict[TopicPartition, OrderedDict[int, bool]] = {}

    def __len__(self) -> int:
        return sum(len(records) for records in self._handed_out.values())

    def hand_out(self, partition: TopicPartition, offset: int) -> None:
        records = self._handed_out.setdefault(partition, OrderedDict())
        if records and offset <= next(reversed(records)):
            records.clear()
        records[offset] = False

    def settle(self, partition: TopicPartition, offset: int) -> None:
        records = self._handed_out.get(partition)
        if records is not None and offset in records:
            records[offset] = True

    def to_commit(self) -> dict[TopicPartition, OffsetAndMetadata]:
        """The offsets that moved since the last call: each the next record to read."""
        moved: dict[TopicPartition, OffsetAndMetadata] = {}
        for partition, records in self._handed_out.items():
            settled: int | None = None
            while records and records[oldest := next(iter(records))]:
                del records[oldest]
                settled = oldest
            if settled is not None:
                moved[partition] = OffsetAndMetadata(settled + 1, "", -1)
        return moved

    def keep_only(self, partitions: set[TopicPartition]) -> None:
        for partition in [p for p in self._handed_out if p not in partitions]:
            del self._handed_out[partition]


class ConsumerLoop:
    """Handles records concurrently (a slow provider does not serialise the worker), taking more from the
    broker as handlers free up, and commits each partition's offset up to the records that have settled.

    A slow record holds back only its partition's committed offset, never the handling of the records after
    it: up to `concurrency` records are handled at once and as many again wait their turn; past that, the
    loop stops fetching until one settles. A record still being handled when its partition moves to another
    consumer may be handled there too: every handler tolerates redelivery.

    With `handle_batch`, what a poll brings is first handled in one call, for consumers whose work per record
    is a lookup and a write that many records can share; if that call raises, or a record cannot be read,
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
        handle_batch: Callable[[list[Envelope]], None] | None = None,
    ) -> None:
        self.consumer = consumer
        self.handle = handle
        self.handle_batch = handle_batch
        self.dead_letters = dead_letters
        self.dead_letter_topic = dead_letter_topic
        self.executor = ThreadPoolExecutor(max_workers=concurrency, thread_name_prefix="handler")
        self.capacity = 2 * concurrency
        # Only the loop's thread reads and changes these.
        self._offsets = SettledOffsets()
        self._handling: dict[Future[None], ConsumerRecord] = {}

    def run(self, stop: threading.Event) -> None:
        try:
            while not stop.is_set():
                self._take_settled()
                self._commit()
                room = self.capacity - len(self._handling)
                if room <= 0:
                    # Full: stop fetching, and keep polling, which keeps this consumer in its group.
                    self.consumer.pause(*self.consumer.assignment())
                    wait(self._handling, timeout=0.5, return_when=FIRST_COMPLETED)
                    self.consumer.poll(timeout_ms=0)
                    continue
                self.consumer.resume(*self.consumer.paused())
                polled = self.consumer.poll(timeout_ms=SHORT_POLL_MS if self._handling else 500, max_records=room)
                self._start([record for batch in polled.values() for record in batch])
        finally:
            self.executor.shutdown(wait=True)
            # What settled before stopping is committed; a record whose dead letter failed is not, and the
            # loop's own error, if it stopped on one, is the one raised.
            with contextlib.suppress(Exception):
                self._take_settled()
                self._commit()
            self.consumer.close(autocommit=False)

    def _start(self, records: list[ConsumerRecord]) -> None:
        if not records:
            return
        for record in records:
            self._offsets.hand_out(_partition_of(record), record.offset)
        if self._settle_together(records):
            for record in records:
                self._offsets.settle(_partition_of(record), record.offset)
            return
        for record in records:
            self._handling[self.executor.submit(self._settle, record)] = record

    def _take_settled(self) -> None:
        for handling in [handling for handling in self._handling if handling.done()]:
            record = self._handling.pop(handling)
            # A dead letter that could not be sent stops the loop, its offset not committed, as before.
            handling.result()
            self._offsets.settle(_partition_of(record), record.offset)

    def _commit(self) -> None:
        self._offsets.keep_only(self.consumer.assignment())
        if offsets := self._offsets.to_commit():
            try:
                self.consumer.commit(offsets)
            except KafkaError as error:
                # A rebalance took partitions away meanwhile: their new owner reads from the last committed offsets.
                log.warning("offset_commit_failed", error=repr(error))

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
