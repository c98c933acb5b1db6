"""Campaign use cases: create, analyse, generate, approve, edit, regenerate, schedule, delete.

The pipeline's steps (`analyze`, `request_generation`, `job_ended`, `cancel_jobs`, `run_changed`) are
called by the campaign process manager as it follows the log; each is idempotent by the campaign's own
state, and a generation's jobs are requested with deterministic idempotency keys in the same save as
the campaign's `GenerationRequested`, so calling a step again never requests a job twice.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Iterator, Sequence
from datetime import datetime, timedelta
from typing import Any, cast
from uuid import UUID, uuid4

import msgspec
import structlog

from application.campaign_export import export_chunks
from application.ports import CopyBrief, ImageBrief, PageAnalyzer, Product, ProviderError
from application.pressroom import JobRequest, Pressroom, retry_on_conflict
from application.publishing import Applied, Publishing
from domain.campaign import Campaign, CampaignInvalid, copy_platform, job_slots
from domain.errors import InsufficientCredits, InvalidState
from domain.generation_job import GenerationJob
from domain.post import Post
from domain.providers import PROVIDERS, text_length
from domain.run import Run

log = structlog.get_logger()

VARIANTS_PER_PLATFORM = 3
# A schedule's account handle is provider:name; the campaign platform each provider's posts take their copy from.
PLATFORM_OF_PROVIDER = {"instagram_business": "instagram"}


class Campaigns:
    def __init__(
        self,
        app: Pressroom,
        *,
        analyzer: PageAnalyzer | None = None,
        publishing: Callable[[], Publishing] | None = None,
    ) -> None:
        self.app = app
        self.analyzer = analyzer
        self._publishing = publishing

    # Commands from clients

    def cost_of(self, platforms: Sequence[str], image_count: int) -> int:
        pricing = self.app.pricing
        return len(platforms) * pricing.cost_of("copy", VARIANTS_PER_PLATFORM) + (
            pricing.cost_of("image", image_count) if image_count else 0
        )

    def create(
        self,
        workspace_id: UUID,
        *,
        title: str,
        platforms: list[str],
        product_url: str | None = None,
        description: str | None = None,
        tone: str = "professional",
        image_count: int = 1,
        auto_approve: bool = False,
    ) -> Campaign:
        """A new campaign, refused (402, nothing charged) when the workspace could not pay for its generation now."""
        cost = self.cost_of(platforms, image_count)
        balance = self.app.credit_account(workspace_id).balance
        if cost > balance:
            raise InsufficientCredits(cost, balance)
        campaign = Campaign.create(
            uuid4(),
            workspace_id,
            title=title,
            product_url=product_url,
            description=description,
            platforms=platforms,
            tone=tone,
            image_count=image_count,
            auto_approve=auto_approve,
        )
        self.app.save(campaign)
        return campaign

    def get(self, workspace_id: UUID, campaign_id: UUID) -> Campaign:
        return self.app._get(Campaign, campaign_id, workspace_id)

    def jobs_of(self, campaign: Campaign) -> list[GenerationJob]:
        return [self.app.get_job(campaign.workspace_id, job_id) for job_id in campaign.jobs]

    def export(self, workspace_id: UUID, campaign_id: UUID) -> tuple[Campaign, Iterator[bytes]]:
        """The campaign and its ZIP as a stream of chunks; what it needs is looked up before the first chunk."""
        campaign = self.get(workspace_id, campaign_id)
        campaign.check_not_deleted()
        keys = {a["id"]: self.app.get_asset(workspace_id, UUID(a["id"])).storage_key for a in campaign.assets}
        return campaign, export_chunks(campaign, keys, self.app.media)

    @retry_on_conflict
    def approve(self, workspace_id: UUID, campaign_id: UUID) -> Campaign:
        campaign = self.get(workspace_id, campaign_id)
        campaign.approve()
        self.app.save(campaign)
        return campaign

    @retry_on_conflict
    def edit_variant(self, workspace_id: UUID, campaign_id: UUID, variant_id: UUID, **words: Any) -> Campaign:
        campaign = self.get(workspace_id, campaign_id)
        if campaign.edit_variant(variant_id, **words):
            self.app.save(campaign)
        return campaign

    @retry_on_conflict
    def regenerate(self, workspace_id: UUID, campaign_id: UUID, kind: str, platform: str | None = None) -> Campaign:
        """A new copy job for one platform, or new images: charged like any job; the approval, if any, is taken back."""
        campaign = self.get(workspace_id, campaign_id)
        if kind == "copy":
            if platform not in campaign.platforms:
                raise CampaignInvalid(f"Regenerating copy needs one of the campaign's platforms: {', '.join(campaign.platforms)}.")
            slot = f"copy:{platform}"
        else:
            if not campaign.image_count:
                raise CampaignInvalid("This campaign has no images to regenerate (imageCount 0).")
            slot = "image"
        if campaign.product is None:
            raise InvalidState(f"Campaign {campaign.id} is {campaign.status}; it cannot regenerate now.")
        campaign.check_not_deleted()
        key = f"campaign:{campaign.id}:regeneration:{campaign.regenerations + 1}:{slot}"
        request = self._job_request(campaign, kind, slot, key)
        self.app.request_jobs(
            workspace_id,
            [request],
            campaign.id,
            lambda jobs: _recorded(campaign, lambda: campaign.request_regeneration(_job_entries(jobs, [slot]))),
        )
        return campaign

    def delete(self, workspace_id: UUID, campaign_id: UUID) -> None:
        """Deletes the campaign, then cancels (and so refunds) its unfinished jobs. The process manager also
        cancels them on `Deleted`, so a crash between the two steps still refunds them."""
        campaign = self._mark_deleted(workspace_id, campaign_id)
        self.cancel_jobs(campaign.id)

    @retry_on_conflict
    def _mark_deleted(self, workspace_id: UUID, campaign_id: UUID) -> Campaign:
        campaign = self.get(workspace_id, campaign_id)
        if campaign.delete():
            self.app.save(campaign)
        return campaign

    def schedule(
        self, workspace_id: UUID, campaign_id: UUID, *, accounts: list[str], start_at: datetime, timezone: str, spacing_minutes: int
    ) -> Applied:
        """Turns the approved variants and images into a publishing run, once per approval."""
        if self._publishing is None:
            raise RuntimeError("these Campaigns were built without publishing")
        campaign = self.get(workspace_id, campaign_id)
        campaign.check_schedulable()
        envelope = schedule_envelope(campaign, accounts=accounts, start_at=start_at, timezone=timezone, spacing_minutes=spacing_minutes)
        applied = self._publishing().apply(workspace_id, msgspec.json.encode(envelope))
        self._record_scheduled(workspace_id, campaign_id, applied.run.id)
        return applied

    @retry_on_conflict
    def _record_scheduled(self, workspace_id: UUID, campaign_id: UUID, run_id: UUID) -> None:
        campaign = self.get(workspace_id, campaign_id)
        campaign.schedule(run_id)
        if campaign.pending_events:
            self.app.save(campaign)

    # Steps of the pipeline (the process manager calls these)

    def analyze(self, campaign_id: UUID) -> None:
        """Reads the product page (or takes the brief) and records what it says; a page that cannot be
        fetched or read falls back to the title and description the user gave, recorded as such."""
        campaign = self._begin_analysis(campaign_id)
        if campaign is None:
            return
        found: dict[str, Any] = {"title": campaign.title, "description": campaign.description or "", "source": ["brief"]}
        if campaign.product_url and self.analyzer is not None:
            try:
                page = self.analyzer.analyze(campaign.product_url)
            except ProviderError as error:
                found["fallback_reason"] = f"{error.code}: {error.message}"
            else:
                if page.title or page.description:
                    found = {
                        "title": page.title,
                        "description": page.description,
                        "price": page.price,
                        "currency": page.currency,
                        "brand": page.brand,
                        "images": list(page.images),
                        "source": list(page.source),
                    }
                else:
                    found["fallback_reason"] = "page_empty: the page names no title or description"
        self._record_analysis(campaign_id, found)

    @retry_on_conflict
    def _begin_analysis(self, campaign_id: UUID) -> Campaign | None:
        campaign = self.app._find(Campaign, campaign_id)
        if campaign is None or campaign.product is not None or not campaign.start_analysis():
            return None
        if campaign.pending_events:
            self.app.save(campaign)
        return campaign

    @retry_on_conflict
    def _record_analysis(self, campaign_id: UUID, found: dict[str, Any]) -> None:
        campaign = self.app._get(Campaign, campaign_id)
        if campaign.record_analysis(**found):
            self.app.save(campaign)

    @retry_on_conflict
    def request_generation(self, campaign_id: UUID) -> None:
        """Requests every job of the campaign in one save with the account and the campaign; a workspace that
        can no longer pay for all of them gets none, and the campaign fails."""
        campaign = self.app._find(Campaign, campaign_id)
        if campaign is None or not campaign.awaits_generation:
            return
        slots = job_slots(campaign)
        requests = [self._job_request(campaign, kind, slot, f"campaign:{campaign.id}:{slot}") for kind, slot in slots]
        found = campaign
        try:
            self.app.request_jobs(
                campaign.workspace_id,
                requests,
                campaign.id,
                lambda jobs: _recorded(found, lambda: found.request_generation(_job_entries(jobs, [s for _, s in slots]))),
            )
        except InsufficientCredits as error:
            unpaid = self.app._get(Campaign, campaign_id)
            unpaid.fail(f"insufficient_credits: {error.detail}")
            self.app.save(unpaid)

    def campaign_jobs(self, job_ids: Collection[UUID]) -> set[UUID]:
        """Which of these jobs were requested for a campaign, from their first events read in one query: the
        pipeline sees every job end, and most jobs belong to no campaign."""
        stored = self.app.events_after(dict.fromkeys(job_ids, 0))
        requested = (self.app.mapper.to_domain_event(e) for e in stored if e.originator_version == 1)
        return {event.originator_id for event in requested if cast(GenerationJob.Requested, event).campaign_id is not None}

    @retry_on_conflict
    def job_ended(self, job_id: UUID) -> None:
        """Takes a finished job's outputs into its campaign."""
        job = self.app._find(GenerationJob, job_id)
        if job is None or job.campaign_id is None or not job.is_terminal:
            return
        campaign = self.app._find(Campaign, job.campaign_id)
        if campaign is not None and campaign.settle_job(job.id, job.status, job.variants, job.assets):
            self.app.save(campaign)

    def cancel_jobs(self, campaign_id: UUID) -> int:
        """Cancels a deleted campaign's unfinished jobs, refunding them; returns how many this call canceled."""
        campaign = self.app._find(Campaign, campaign_id)
        if campaign is None or campaign.status != "deleted":
            return 0
        canceled = 0
        for job_id in campaign.unsettled_jobs:
            job = self.app._find(GenerationJob, job_id)
            if job is None or job.is_terminal:
                continue
            try:
                self.app.cancel_job(campaign.workspace_id, job_id)
                canceled += 1
            except InvalidState:
                pass  # it ended meanwhile, and its own end refunded what it did not make
        return canceled

    def run_changed(self, run_id: UUID) -> None:
        """A run finished: the campaign that scheduled it is complete."""
        run = self.app._find(Run, run_id)
        if run is None or not run.is_finished or not run.post_ids:
            return
        post = self.app._find(Post, run.post_ids[0])
        if post is not None and post.campaign_id is not None:
            self.publishing_settled(post.campaign_id)

    @retry_on_conflict
    def publishing_settled(self, campaign_id: UUID) -> None:
        campaign = self.app._find(Campaign, campaign_id)
        if campaign is None or campaign.run_id is None:
            return
        run = self.app._find(Run, campaign.run_id)
        if run is not None and run.is_finished and campaign.complete(run.id, run.status):
            self.app.save(campaign)

    # Job inputs

    def _job_request(self, campaign: Campaign, kind: str, slot: str, key: str) -> JobRequest:
        product = campaign.product or {}
        name = (product.get("title") or campaign.title)[:200]
        description = (product.get("description") or campaign.description or "")[:5000] or None
        if kind == "copy":
            platform = slot.removeprefix("copy:")
            brief: CopyBrief | ImageBrief = CopyBrief(
                product=Product(name=name, description=description, url=campaign.product_url),
                platform=copy_platform(platform),  # type: ignore[arg-type]
                tone=campaign.tone,  # type: ignore[arg-type]
                count=VARIANTS_PER_PLATFORM,
                custom_instructions=f"Written for {platform}.",
            )
            outputs = VARIANTS_PER_PLATFORM
        else:
            brief = ImageBrief(
                prompt=f"Product photo of {name}. {description or ''}".strip()[:1000],
                count=campaign.image_count,
                headline=name[:120],
            )
            outputs = campaign.image_count
        job_input = msgspec.to_builtins(msgspec.convert(msgspec.to_builtins(brief), type(brief)))
        return JobRequest(job_type=kind, job_input=job_input, outputs=outputs, idempotency_key=key)


def _job_entries(jobs: list[GenerationJob], slots: list[str]) -> list[dict[str, Any]]:
    return [{"id": job.id, "type": job.job_type, "slot": slot} for job, slot in zip(jobs, slots, strict=True)]


def _recorded(campaign: Campaign, change: Callable[[], None]) -> list[Campaign]:
    change()
    return [campaign]


# Schedules


def post_text(variant: dict[str, Any], provider: str, media_count: int) -> str:
    """The variant as a post: hook, body, call to action and hashtags, shortened to what the provider takes."""
    spec = PROVIDERS.get(provider)
    tags = " ".join(variant["hashtags"])
    candidates: list[str] = [
        "\n\n".join(p for p in (variant["hook"], variant["body"], variant["cta"], tags) if p),
        "\n\n".join(p for p in (variant["hook"], variant["body"], variant["cta"]) if p),
        "\n\n".join(p for p in (variant["hook"], variant["cta"]) if p),
        str(variant["hook"] or variant["body"]),
    ]
    if spec is None:
        return candidates[0]
    limit = spec.limit_for(media_count)
    for text in candidates:
        if text_length(spec, text) <= limit:
            return text
    text = candidates[-1]
    while text and text_length(spec, text + "…") > limit:
        text = text[:-1]
    return text + "…"


def schedule_envelope(
    campaign: Campaign, *, accounts: list[str], start_at: datetime, timezone: str, spacing_minutes: int
) -> dict[str, Any]:
    """One post per approved variant for each account (the variants written for its platform, or all of them
    when none were), the images attached in turn, `spacingMinutes` apart from `startAt`."""
    if not accounts:
        raise CampaignInvalid("Name at least one account to publish on.")
    images = [a for a in campaign.assets if a.get("type") == "image"]
    posts: list[dict[str, Any]] = []
    for account in accounts:
        provider = account.split(":", 1)[0]
        platform = PLATFORM_OF_PROVIDER.get(provider, provider)
        variants = [v for v in campaign.variants if v["platform"] == platform] or campaign.variants
        for variant in variants:
            media = [images[len(posts) % len(images)]["id"]] if images else []
            at = start_at + timedelta(minutes=spacing_minutes * len(posts))
            posts.append(
                {
                    "account": account,
                    "text": post_text(variant, provider, len(media)),
                    "publishAt": at.isoformat(),
                    "assets": media,
                    "campaignId": str(campaign.id),
                    "name": f"{campaign.title[:150]} #{len(posts) + 1}",
                }
            )
    if not posts:
        raise InvalidState("The campaign has no approved variants to publish.")
    return {
        "timezone": timezone,
        "mode": "scheduled",
        "idempotencyKey": f"campaign:{campaign.id}:{campaign.approved_hash}"[:200],
        "posts": posts,
    }
