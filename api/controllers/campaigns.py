"""Campaigns: from a product URL or a brief to approved ad creatives, and on to a publishing run."""

from __future__ import annotations

from typing import Annotated
from uuid import UUID

import msgspec
from litestar import Controller, Response, delete, get, patch, post
from litestar.params import FromPath, JSONBody, Parameter
from litestar.response import Stream

from adapters.bootstrap import Container
from adapters.media import MediaSigner
from api.campaign_schemas import (
    CampaignAssetOut,
    CampaignJobOut,
    CampaignList,
    CampaignOut,
    CampaignStatsOut,
    CampaignStatus,
    CampaignSummary,
    CreateCampaign,
    EditVariant,
    Regenerate,
    ScheduleCampaign,
    VariantOut,
    product_out,
)
from api.schemas import AppliedOut, PostBrief, RunBrief
from application.campaigns import Campaigns
from application.pressroom import Principal
from domain.campaign import TERMINAL_JOB, Campaign
from projections.campaigns import campaign_stats, list_campaigns

PIPELINE = (
    "The pipeline: `pending` → `analyzing` (the product page is read; a page that cannot be read falls back to "
    "the title and description given) → `generating` (one copy job per platform and one image job, charged together: "
    "all or none) → `awaiting_approval` → `approved` → `publishing` → `completed`; `failed` when every job failed; "
    "`deleted`. An edit or a regeneration after approval takes the approval back (`awaiting_approval`)."
)


def campaign_out(campaign: Campaign, campaigns: Campaigns, signer: MediaSigner) -> CampaignOut:
    jobs = []
    for job_id, job in campaign.jobs.items():
        status = job["status"] if job["status"] in TERMINAL_JOB else campaigns.app.get_job(campaign.workspace_id, job_id).status
        jobs.append(CampaignJobOut(id=job_id, type=job["type"], status=status, slot=job["slot"]))
    return CampaignOut(
        id=campaign.id,
        title=campaign.title,
        product_url=campaign.product_url,
        description=campaign.description,
        product=product_out(campaign.product),
        platforms=list(campaign.platforms),
        tone=campaign.tone,
        image_count=campaign.image_count,
        auto_approve=campaign.auto_approve,
        status=campaign.status,
        jobs=jobs,
        assets=[
            CampaignAssetOut(
                id=UUID(a["id"]),
                type=a["type"],
                mime=a["mime"],
                url=signer.url(UUID(a["id"]), a["filename"]),
                width=a["width"],
                height=a["height"],
                job_id=UUID(a["jobId"]),
                filename=a["filename"],
            )
            for a in campaign.assets
        ],
        variants=[msgspec.convert(v, VariantOut) for v in campaign.variants],
        content_hash=campaign.content_hash,
        approved_hash=campaign.approved_hash,
        run_id=campaign.run_id,
        failure=campaign.failure,
        created_at=campaign.created_on,
        updated_at=campaign.modified_on,
    )


class CampaignsController(Controller):
    path = "/v1/campaigns"
    tags = ["campaigns"]  # noqa: RUF012

    @post(
        "/",
        sync_to_thread=True,
        status_code=201,
        summary="Create a campaign from a product URL or a brief",
        description=PIPELINE + " Refused with 402 `insufficient_credits` (nothing charged) when the workspace cannot pay "
        "for the whole generation now: 1 credit per platform's copy job and 3 per image.",
    )
    def create(self, principal: Principal, data: JSONBody[CreateCampaign], container: Container) -> CampaignOut:
        campaign = container.campaigns.create(
            principal.workspace_id,
            title=data.title,
            platforms=list(data.platforms),
            product_url=data.product_url,
            description=data.description,
            tone=data.tone,
            image_count=data.image_count,
            auto_approve=data.auto_approve,
        )
        return campaign_out(campaign, container.campaigns, container.signer)

    @get("/", sync_to_thread=True, summary="The workspace's campaigns, newest first (deleted ones only with status=deleted)")
    def campaigns(
        self,
        principal: Principal,
        container: Container,
        status: CampaignStatus | None = None,
        limit: Annotated[int, Parameter(ge=1, le=200)] = 50,
        cursor: str | None = None,
    ) -> CampaignList:
        page = list_campaigns(container.pool, principal.workspace_id, status=status, limit=limit, cursor=cursor)
        return CampaignList(
            campaigns=[msgspec.convert(row, CampaignSummary, from_attributes=True) for row in page.campaigns], next_cursor=page.next_cursor
        )

    @get("/stats", sync_to_thread=True, summary="How many campaigns there are, by stage (deleted ones not counted)")
    def stats(self, principal: Principal, container: Container) -> CampaignStatsOut:
        return msgspec.convert(campaign_stats(container.pool, principal.workspace_id), CampaignStatsOut, from_attributes=True)

    @get("/{campaign_id:uuid}", sync_to_thread=True, summary="One campaign with its jobs, variants and assets")
    def campaign(self, principal: Principal, campaign_id: FromPath[UUID], container: Container) -> CampaignOut:
        return campaign_out(container.campaigns.get(principal.workspace_id, campaign_id), container.campaigns, container.signer)

    @post(
        "/{campaign_id:uuid}/approve",
        sync_to_thread=True,
        status_code=200,
        summary="Approve exactly the variants and assets the campaign has now",
        description="Only from `awaiting_approval`, else 409 `invalid_state`. The approval records the content's hash "
        "(`approvedHash`); an edit or regeneration afterwards takes it back.",
    )
    def approve(self, principal: Principal, campaign_id: FromPath[UUID], container: Container) -> CampaignOut:
        campaign = container.campaigns.approve(principal.workspace_id, campaign_id)
        return campaign_out(campaign, container.campaigns, container.signer)

    @patch(
        "/{campaign_id:uuid}/variants/{variant_id:uuid}",
        sync_to_thread=True,
        summary="Edit a copy variant's words",
        description="From `awaiting_approval` or `approved` (else 409). Editing an approved campaign records "
        "`ApprovalInvalidated` and sends it back to `awaiting_approval`. An unknown variant is 404.",
    )
    def edit_variant(
        self,
        principal: Principal,
        campaign_id: FromPath[UUID],
        variant_id: FromPath[UUID],
        data: JSONBody[EditVariant],
        container: Container,
    ) -> CampaignOut:
        words = {k: v for k, v in msgspec.structs.asdict(data).items() if v is not None}
        campaign = container.campaigns.edit_variant(principal.workspace_id, campaign_id, variant_id, **words)
        return campaign_out(campaign, container.campaigns, container.signer)

    @post(
        "/{campaign_id:uuid}/regenerate",
        sync_to_thread=True,
        status_code=202,
        summary="Regenerate one platform's copy, or the images",
        description="From `awaiting_approval`, `approved` or `failed` (else 409). Requests a new job, charged like any "
        "(402 when credits do not cover it); the campaign goes to `generating`, an approval is taken back, and when the "
        "job ends its outputs replace what that platform's copy (or the images) had.",
    )
    def regenerate(
        self, principal: Principal, campaign_id: FromPath[UUID], data: JSONBody[Regenerate], container: Container
    ) -> CampaignOut:
        campaign = container.campaigns.regenerate(principal.workspace_id, campaign_id, data.type, data.platform)
        return campaign_out(campaign, container.campaigns, container.signer)

    @post(
        "/{campaign_id:uuid}/schedule",
        sync_to_thread=True,
        summary="Publish the approved variants and images as a run of posts",
        description="Only from `approved` (else 409). One post per approved variant for each account (the variants "
        "written for the account's platform, or all of them), images attached in turn, `spacingMinutes` apart from "
        "`startAt` (read in `timezone` when it has no offset). Answers like `POST /v1/posts/apply`: 201, or 422 naming "
        "each problem (unknown account, publish time in the past).",
    )
    def schedule(
        self, principal: Principal, campaign_id: FromPath[UUID], data: JSONBody[ScheduleCampaign], container: Container
    ) -> Response[AppliedOut]:
        applied = container.campaigns.schedule(
            principal.workspace_id,
            campaign_id,
            accounts=list(data.accounts),
            start_at=data.start_at,
            timezone=data.timezone,
            spacing_minutes=data.spacing_minutes,
        )
        body = AppliedOut(
            duplicate=applied.duplicate,
            run=RunBrief(id=applied.run.id, status=applied.run.status, total_posts=applied.run.total_posts),
            posts=[PostBrief(id=p.id, status=p.status) for p in applied.posts],
        )
        return Response(body, status_code=200 if applied.duplicate else 201)

    @delete(
        "/{campaign_id:uuid}",
        sync_to_thread=True,
        status_code=204,
        summary="Delete a campaign; its queued and running jobs are canceled and refunded",
        description="204. The campaign stays readable with status `deleted` (listed only with `status=deleted`); its "
        "unfinished jobs are canceled at once and refunded what they did not produce. Deleting again is 204 and changes nothing.",
    )
    def delete(self, principal: Principal, campaign_id: FromPath[UUID], container: Container) -> None:
        container.campaigns.delete(principal.workspace_id, campaign_id)

    @get(
        "/{campaign_id:uuid}/export",
        sync_to_thread=True,
        summary="The campaign as a ZIP: its media files, copy.csv and manifest.json",
        description="Streamed as it is written. `manifest.json` lists every file with its size and SHA-256, the "
        "variants, assets and product; `copy.csv` has one row per variant.",
        media_type="application/zip",
    )
    def export(self, principal: Principal, campaign_id: FromPath[UUID], container: Container) -> Stream:
        campaign, chunks = container.campaigns.export(principal.workspace_id, campaign_id)
        return Stream(
            chunks,
            media_type="application/zip",
            headers={"Content-Disposition": f'attachment; filename="campaign-{campaign.id}.zip"'},
        )
