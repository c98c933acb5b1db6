"""The generation worker: takes requested jobs off Kafka, runs the provider, records each output and the outcome."""

from __future__ import annotations

from collections.abc import Callable
from uuid import UUID

import msgspec
import structlog

from adapters.integration_events import Envelope
from application.metadata import metadata
from application.ports import CopyBrief, CopyWriter, ImageBrief, ImageMaker, MediaFile, ProviderError, VideoBrief, VideoMaker
from application.pressroom import Pressroom
from domain.generation_job import GenerationJob

log = structlog.get_logger()

RUNNABLE = frozenset({"job.requested", "job.requeued"})
Make = Callable[[int], MediaFile]


class GenerationWorker:
    def __init__(self, app: Pressroom, copy_writer: CopyWriter, image_maker: ImageMaker, video_maker: VideoMaker, worker_id: str) -> None:
        self.app = app
        self.copy_writer = copy_writer
        self.image_maker = image_maker
        self.video_maker = video_maker
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
        log.info("job_started", job_id=str(job_id), attempt=job.attempts, type=job.job_type)
        try:
            if job.job_type == "copy":
                self._write_copy(job)
            else:
                self._make_media(job)
        except ProviderError as error:
            self.app.fail_job(job_id, job.attempts, error.code, error.message, retryable=error.retryable)
            log.info("job_attempt_failed", job_id=str(job_id), attempt=job.attempts, code=error.code)
        except msgspec.ValidationError as error:
            self.app.fail_job(job_id, job.attempts, "invalid_input", str(error), retryable=False)

    def _write_copy(self, job: GenerationJob) -> None:
        variants = [msgspec.to_builtins(v) for v in self.copy_writer.write(msgspec.convert(job.input, CopyBrief))]
        recorded = self.app.complete_job(job.id, job.attempts, variants)
        log.info("job_completed" if recorded else "job_output_dropped", job_id=str(job.id), attempt=job.attempts)

    def _make_media(self, job: GenerationJob) -> None:
        """One output at a time: each is kept as soon as it is made, a permanent failure of one output
        leaves the others to be tried, and a canceled or superseded job stops at the next output."""
        make = self._maker_for(job)
        failure: tuple[str, str] | None = None
        for index in range(job.outputs):
            if index in job.produced_indexes:
                continue
            try:
                output = make(index)
            except ProviderError as error:
                if error.retryable:
                    raise
                failure = (error.code, error.message)
                continue
            if not self.app.record_output(job.id, job.attempts, index, output):
                log.info("job_stopped", job_id=str(job.id), attempt=job.attempts)
                return
        self.app.finish_job(job.id, job.attempts, failure)

    def _maker_for(self, job: GenerationJob) -> Make:
        if job.job_type == "image":
            image = msgspec.convert(job.input, ImageBrief)
            return lambda index: self.image_maker.make(image, index)
        video = msgspec.convert(job.input, VideoBrief)
        return lambda _: self.video_maker.make(video)
