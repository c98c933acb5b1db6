"""The generation worker: takes requested jobs off Kafka, runs the provider, records the outcome."""

from __future__ import annotations

from uuid import UUID

import msgspec
import structlog

from adapters.integration_events import Envelope
from application.metadata import metadata
from application.ports import CopyBrief, CopyWriter, ProviderError
from application.pressroom import Pressroom

log = structlog.get_logger()

RUNNABLE = frozenset({"job.requested", "job.requeued"})


class GenerationWorker:
    def __init__(self, app: Pressroom, copy_writer: CopyWriter, worker_id: str) -> None:
        self.app = app
        self.copy_writer = copy_writer
        self.worker_id = worker_id

    def handle(self, envelope: Envelope) -> None:
        if envelope.type in RUNNABLE:
            with metadata(actor=f"worker:{self.worker_id}"):
                self.run(envelope.aggregate_id)

    def run(self, job_id: UUID) -> None:
        # The job's own state machine dedupes redeliveries: only a queued job, or one whose
        # lease ran out, can be started, and only the current attempt can record an outcome.
        job = self.app.start_job(job_id, self.worker_id)
        if job is None:
            return
        attempt = job.attempts
        log.info("job_started", job_id=str(job_id), attempt=attempt)
        try:
            brief = msgspec.convert(job.input, CopyBrief)
            variants = [msgspec.to_builtins(v) for v in self.copy_writer.write(brief)]
        except ProviderError as error:
            self.app.fail_job(job_id, attempt, error.code, error.message, retryable=error.retryable)
            log.info("job_attempt_failed", job_id=str(job_id), attempt=attempt, code=error.code)
            return
        except msgspec.ValidationError as error:
            self.app.fail_job(job_id, attempt, "invalid_input", str(error), retryable=False)
            return
        recorded = self.app.complete_job(job_id, attempt, variants)
        log.info("job_completed" if recorded else "job_output_dropped", job_id=str(job_id), attempt=attempt)
