"""Schedules, posts and runs."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated
from uuid import UUID

import anyio.to_thread
from litestar import Controller, Request, Response, delete, get, post
from litestar.params import FromPath, JSONBody, Parameter
from litestar.status_codes import HTTP_200_OK

from adapters.bootstrap import Container
from api.errors import RequestInvalid
from api.schemas import (
    AppliedOut,
    AttemptList,
    AttemptOut,
    PlannedOut,
    PostBrief,
    PostOut,
    PostPage,
    PublishRun,
    RunBrief,
    RunDetail,
    RunOut,
    RunTable,
    RunTableRow,
    Validated,
)
from application.pressroom import Principal
from domain.post import Post
from domain.run import Run
from projections.posts import PostRow, list_posts, run_posts

ENVELOPE_LIMIT = 2 * 1024 * 1024
ENVELOPE_HELP = (
    "A schedule envelope `{timezone, mode, idempotencyKey?, posts: [PostInput] | campaigns: [CampaignInput]}`, bare or as "
    "`{schedule: envelope}`. A `publishAt` without an offset is read in `timezone` (IANA, default UTC); a local time "
    "that does not exist or is ambiguous there (a DST change) is refused. Problems: 422 with `errors[{path, message}]`."
)


async def _envelope(request: Request) -> bytes:  # type: ignore[type-arg]
    raw = await request.body()
    if len(raw) > ENVELOPE_LIMIT:
        raise RequestInvalid.at("", f"A schedule is at most {ENVELOPE_LIMIT} bytes.")
    return raw


def post_out(row: PostRow) -> PostOut:
    error = {"code": row.error_code, "message": row.error_message or ""} if row.error_code else None
    return _post_out(row, error, row.created_at, row.updated_at)


def aggregate_post_out(post: Post) -> PostOut:
    return _post_out(post, post.error, post.created_on, post.modified_on)


def _post_out(post: PostRow | Post, error: dict[str, str] | None, created_at: datetime, updated_at: datetime) -> PostOut:
    """A post as served, from its read-model row or its aggregate: the fields they share, and those they keep apart."""
    return PostOut(
        id=post.id,
        run_id=post.run_id,
        provider=post.provider,
        account=post.handle,
        account_id=post.account_id,
        status=post.status,
        text=post.text,
        assets=list(post.assets),
        publish_at_utc=post.publish_at,
        local_time=post.local_time,
        timezone=post.timezone,
        due_at=post.due_at,
        delayed_reason=post.delayed_reason,
        provider_post_id=post.provider_post_id,
        provider_url=post.provider_url,
        published_at=post.published_at,
        error=error,
        attempts=len(post.attempts),
        campaign_id=post.campaign_id,
        created_at=created_at,
        updated_at=updated_at,
    )


def run_out(run: Run) -> RunOut:
    return RunOut(
        id=run.id,
        status=run.status,
        mode=run.mode,
        total_posts=run.total_posts,
        source_model=run.source_model,
        timezone=run.timezone,
        created_at=run.created_on,
    )


class PostsController(Controller):
    path = "/v1"
    tags = ["posts"]  # noqa: RUF012

    @post("/posts/validate", status_code=HTTP_200_OK, summary="Check a schedule envelope without applying it", description=ENVELOPE_HELP)
    async def validate(self, principal: Principal, request: Request, container: Container) -> Validated:  # type: ignore[type-arg]
        raw = await _envelope(request)
        plan = await anyio.to_thread.run_sync(lambda: container.publishing.validate(principal.workspace_id, raw))
        return Validated(
            ok=True,
            timezone=plan.timezone,
            mode=plan.mode,
            source_model=plan.source_model,
            total_posts=len(plan.posts),
            posts=[
                PlannedOut(
                    account=p.handle,
                    provider=p.provider,
                    publish_at_utc=p.publish_at.utc,
                    text=p.text,
                    local_time=p.publish_at.local,
                    timezone=p.publish_at.zone,
                )
                for p in plan.posts
            ],
        )

    @post(
        "/posts/apply",
        summary="Apply a schedule envelope: one run of posts (201); the same idempotencyKey again answers it (200)",
        description=ENVELOPE_HELP,
    )
    async def apply(self, principal: Principal, request: Request, container: Container) -> Response[AppliedOut]:  # type: ignore[type-arg]
        raw = await _envelope(request)
        applied = await anyio.to_thread.run_sync(lambda: container.publishing.apply(principal.workspace_id, raw))
        body = AppliedOut(
            duplicate=applied.duplicate,
            run=RunBrief(id=applied.run.id, status=applied.run.status, total_posts=applied.run.total_posts),
            posts=[PostBrief(id=p.id, status=p.status) for p in applied.posts],
        )
        return Response(body, status_code=200 if applied.duplicate else 201)

    @get("/posts", sync_to_thread=True, summary="Posts, filtered, by publish time")
    def posts(
        self,
        principal: Principal,
        container: Container,
        run_id: Annotated[UUID | None, Parameter(query="runId")] = None,
        status: Annotated[str | None, Parameter(max_length=30)] = None,
        account: Annotated[str | None, Parameter(max_length=300, description="An account id or handle")] = None,
        provider: Annotated[str | None, Parameter(max_length=50)] = None,
        campaign_id: Annotated[UUID | None, Parameter(query="campaignId")] = None,
        from_: Annotated[datetime | None, Parameter(query="from")] = None,
        to: datetime | None = None,
        limit: Annotated[int, Parameter(ge=1, le=200)] = 50,
        offset: Annotated[int, Parameter(ge=0)] = 0,
    ) -> PostPage:
        total, rows = list_posts(
            container.pool,
            principal.workspace_id,
            run_id=run_id,
            status=status,
            account=account,
            provider=provider,
            campaign_id=campaign_id,
            from_=from_,
            to=to,
            limit=limit,
            offset=offset,
        )
        return PostPage(total=total, limit=limit, offset=offset, posts=[post_out(r) for r in rows])

    @get("/posts/{post_id:uuid}", sync_to_thread=True, summary="A post")
    def one_post(self, principal: Principal, post_id: FromPath[UUID], container: Container) -> PostOut:
        return aggregate_post_out(container.publishing.get_post(principal.workspace_id, post_id))

    @get("/posts/{post_id:uuid}/attempts", sync_to_thread=True, summary="A post's attempts at the provider")
    def attempts(self, principal: Principal, post_id: FromPath[UUID], container: Container) -> AttemptList:
        post = container.publishing.get_post(principal.workspace_id, post_id)
        return AttemptList(
            attempts=[
                AttemptOut(
                    n=a.n, started_at=a.started_at, finished_at=a.finished_at, outcome=a.outcome, error=a.error, http_status=a.http_status
                )
                for a in post.attempts
            ]
        )

    @post(
        "/posts/{post_id:uuid}/retry", status_code=HTTP_200_OK, sync_to_thread=True, summary="A failed post, scheduled again now (else 409)"
    )
    def retry(self, principal: Principal, post_id: FromPath[UUID], container: Container) -> PostOut:
        return aggregate_post_out(container.publishing.retry_post(principal.workspace_id, post_id))

    @delete(
        "/posts/{post_id:uuid}",
        status_code=HTTP_200_OK,
        sync_to_thread=True,
        summary="Cancel a draft, scheduled or retry_pending post (else 409)",
    )
    def cancel(self, principal: Principal, post_id: FromPath[UUID], container: Container) -> PostOut:
        return aggregate_post_out(container.publishing.cancel_post(principal.workspace_id, post_id))

    @post(
        "/posts/{post_id:uuid}/reconcile",
        status_code=HTTP_200_OK,
        sync_to_thread=True,
        summary="Ask the provider what became of an unknown post, and settle it",
    )
    def reconcile(self, principal: Principal, post_id: FromPath[UUID], container: Container) -> PostOut:
        return aggregate_post_out(container.publishing.reconcile_post(principal.workspace_id, post_id))

    @post("/posts/{post_id:uuid}/delete", status_code=HTTP_200_OK, sync_to_thread=True, summary="Delete a published post at the provider")
    def delete_at_provider(self, principal: Principal, post_id: FromPath[UUID], container: Container) -> PostOut:
        return aggregate_post_out(container.publishing.delete_at_provider(principal.workspace_id, post_id))

    @get("/runs/{run_id:uuid}", sync_to_thread=True, summary="A run, its posts and how many are in each status")
    def run(self, principal: Principal, run_id: FromPath[UUID], container: Container) -> RunDetail:
        run = container.publishing.get_run(principal.workspace_id, run_id)
        rows = run_posts(container.pool, principal.workspace_id, run_id)
        summary: dict[str, int] = {}
        for row in rows:
            summary[row.status] = summary.get(row.status, 0) + 1
        return RunDetail(run=run_out(run), posts=[post_out(r) for r in rows], summary=summary)

    @get("/runs/{run_id:uuid}/table", sync_to_thread=True, summary="A run's posts as a timetable")
    def table(self, principal: Principal, run_id: FromPath[UUID], container: Container) -> RunTable:
        container.publishing.get_run(principal.workspace_id, run_id)
        rows = run_posts(container.pool, principal.workspace_id, run_id)
        return RunTable(rows=[RunTableRow(time=r.due_at, account=r.handle, status=r.status, post_id=r.id) for r in rows])

    @post("/runs/{run_id:uuid}/publish", status_code=HTTP_200_OK, sync_to_thread=True, summary="Schedule a draft run, shifted to `startAt`")
    def publish(
        self, principal: Principal, run_id: FromPath[UUID], container: Container, data: JSONBody[PublishRun] | None = None
    ) -> RunOut:
        start_at = data.start_at if data is not None else None
        return run_out(container.publishing.publish_run(principal.workspace_id, run_id, start_at))
