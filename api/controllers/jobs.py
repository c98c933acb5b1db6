"""Generation jobs: request one, follow it, list them."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from typing import Annotated, Any
from uuid import UUID

import anyio.to_thread
import msgspec
from litestar import Controller, Response, get, post
from litestar.params import FromPath, JSONBody, Parameter
from litestar.response import ServerSentEvent, ServerSentEventMessage

from adapters.bootstrap import Container
from adapters.media import MediaSigner
from api.errors import RequestInvalid
from api.schemas import (
    AssetRef,
    CreateJob,
    JobAccepted,
    JobError,
    JobList,
    JobOut,
    JobProgress,
    JobResult,
    JobStatus,
    JobTypeName,
    Progress,
)
from application.ports import CopyBrief, ImageBrief, VideoBrief
from application.pressroom import Principal
from domain.generation_job import GenerationJob
from projections.jobs import JobRow, list_jobs

WAIT_POLL_SECONDS = 0.1


def job_result(job: GenerationJob, signer: MediaSigner) -> JobResult | None:
    if job.variants:
        return JobResult(variants=job.variants)
    if job.assets:
        return JobResult(assets=[asset_ref(asset, signer) for asset in job.assets])
    return None


def asset_ref(asset: dict[str, Any], signer: MediaSigner) -> AssetRef:
    return AssetRef(
        id=UUID(asset["id"]),
        type=asset["type"],
        mime=asset["mime"],
        url=signer.url(UUID(asset["id"]), asset["filename"]),
        width=asset["width"],
        height=asset["height"],
    )


def job_out(job: GenerationJob, signer: MediaSigner) -> JobOut:
    return JobOut(
        id=job.id,
        type=job.job_type,
        status=job.status,
        campaign_id=job.campaign_id,
        input=job.input,
        progress=Progress(done=job.produced, total=job.outputs),
        credits_reserved=job.cost,
        credits_consumed=job.credits_consumed,
        credits_refunded=job.credits_refunded,
        result=job_result(job, signer),
        error=JobError(**job.error) if job.error else None,
        attempts=job.attempts,
        created_at=job.created_on,
        started_at=job.started_at,
        completed_at=job.completed_at,
    )


def job_row_out(row: JobRow) -> JobOut:
    terminal = row.completed_at is not None
    return JobOut(
        id=row.id,
        type=row.type,
        status=row.status,
        campaign_id=row.campaign_id,
        input=row.input,
        progress=Progress(done=row.progress_done, total=row.progress_total),
        credits_reserved=row.credits_reserved,
        credits_consumed=row.credits_reserved - row.credits_refunded if terminal else 0,
        credits_refunded=row.credits_refunded,
        result=None,
        error=JobError(code=row.error_code, message=row.error_message or "") if row.error_code else None,
        attempts=row.attempts,
        created_at=row.created_at,
        started_at=row.started_at,
        completed_at=row.completed_at,
    )


BRIEFS: dict[str, type[CopyBrief | ImageBrief | VideoBrief]] = {"copy": CopyBrief, "image": ImageBrief, "video": VideoBrief}


def parse_input(data: CreateJob) -> tuple[dict[str, Any], int]:
    """The job's input, validated and with defaults filled in, and how many outputs it asks for."""
    try:
        brief = msgspec.convert(data.input, BRIEFS[data.type])
    except msgspec.ValidationError as error:
        raise RequestInvalid.from_msgspec(error, "input") from None
    return msgspec.to_builtins(brief), getattr(brief, "count", 1)


STREAM_POLL_SECONDS = 0.25


async def progress_stream(container: Container, job: GenerationJob) -> AsyncIterator[ServerSentEventMessage]:
    """One message per change of status or progress, the first at once; the stream ends with the terminal status."""
    seen: tuple[str, int] | None = None
    while True:
        state = (job.status, job.produced)
        if state != seen:
            seen = state
            body = JobProgress(status=job.status, progress=Progress(done=job.produced, total=job.outputs))
            yield ServerSentEventMessage(data=msgspec.json.encode(body).decode(), event="job", id=str(job.version))
        if job.is_terminal:
            return
        await anyio.sleep(STREAM_POLL_SECONDS)
        job = await anyio.to_thread.run_sync(container.app.get_job, job.workspace_id, job.id)


class JobsController(Controller):
    path = "/v1/jobs"
    tags = ["jobs"]  # noqa: RUF012

    @post(
        "/",
        status_code=202,
        summary="Request a generation job",
        description="202 with the new job; 200 with the original job when the same Idempotency-Key "
        "(header or body) comes again within 24 h with the same body; 422 when it comes with another body; "
        "402 when credits do not cover the job; 503 `busy` with `Retry-After: 1` when the write queue, or the "
        "workspace's share of it, is full. With `wait`, holds the answer until the job is terminal (then 200 "
        "with the whole job) or `wait` seconds pass.",
        responses=None,
    )
    async def request_job(
        self,
        principal: Principal,
        data: JSONBody[CreateJob],
        container: Container,
        idempotency_key: Annotated[str | None, Parameter(header="Idempotency-Key", max_length=128, required=False)] = None,
        wait: Annotated[int, Parameter(ge=0, le=30, description="Seconds to wait for a terminal status")] = 0,
    ) -> Response[JobAccepted | JobOut]:
        if idempotency_key and data.idempotency_key and idempotency_key != data.idempotency_key:
            raise RequestInvalid.at("idempotencyKey", "The Idempotency-Key header and the body's idempotencyKey differ.")
        job_input, outputs = parse_input(data)
        app, batcher = container.app, container.app.job_batcher
        request = (principal.workspace_id, data.type, job_input, outputs, data.campaign_id, idempotency_key or data.idempotency_key)
        # A group-committed request waits for the writer's answer in the event loop, holding no thread.
        receipt = await (asyncio.wrap_future(batcher.submit(*request)) if batcher else anyio.to_thread.run_sync(app.request_job, *request))
        job = receipt.job
        if receipt.duplicate:
            wait = 0  # a replay answers at once, as the original request's receipt
        deadline = time.monotonic() + wait
        while wait and not job.is_terminal and time.monotonic() < deadline:
            await anyio.sleep(WAIT_POLL_SECONDS)
            job = await anyio.to_thread.run_sync(container.app.get_job, principal.workspace_id, job.id)
        if wait and job.is_terminal:
            return Response(job_out(job, container.signer), status_code=200)
        accepted = JobAccepted(
            job_id=job.id,
            status=job.status,
            credits_reserved=0 if receipt.duplicate else job.cost,
            credits_remaining=receipt.credits_remaining,
            poll_url=f"/v1/jobs/{job.id}",
            duplicate=receipt.duplicate,
        )
        return Response(accepted, status_code=200 if receipt.duplicate else 202)

    @get("/{job_id:uuid}", sync_to_thread=True, summary="One job, as it is now")
    def job(self, principal: Principal, job_id: FromPath[UUID], container: Container) -> JobOut:
        return job_out(container.app.get_job(principal.workspace_id, job_id), container.signer)

    @post(
        "/{job_id:uuid}/cancel",
        status_code=200,
        sync_to_thread=True,
        summary="Cancel a queued or processing job; what it did not produce is refunded. A terminal job is 409.",
    )
    def cancel(self, principal: Principal, job_id: FromPath[UUID], container: Container) -> JobOut:
        return job_out(container.app.cancel_job(principal.workspace_id, job_id), container.signer)

    @get("/{job_id:uuid}/events", summary="Server-sent events of the job's status and progress, until it is terminal")
    async def events(self, principal: Principal, job_id: FromPath[UUID], container: Container) -> ServerSentEvent:
        job = await anyio.to_thread.run_sync(container.app.get_job, principal.workspace_id, job_id)
        return ServerSentEvent(progress_stream(container, job))

    @get("/", sync_to_thread=True, summary="The workspace's jobs, newest first (without their results)")
    def jobs(
        self,
        principal: Principal,
        container: Container,
        status: JobStatus | None = None,
        job_type: Annotated[JobTypeName | None, Parameter(query="type")] = None,
        campaign_id: Annotated[UUID | None, Parameter(query="campaignId")] = None,
        limit: Annotated[int, Parameter(ge=1, le=200)] = 50,
        cursor: str | None = None,
    ) -> JobList:
        page = list_jobs(
            container.pool,
            principal.workspace_id,
            status=status,
            job_type=job_type,
            campaign_id=campaign_id,
            limit=limit,
            cursor=cursor,
        )
        return JobList(jobs=[job_row_out(row) for row in page.jobs], next_cursor=page.next_cursor)
