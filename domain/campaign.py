"""Campaign: from a product URL or a brief to approved ad creatives, and on to a publishing run.

The campaign keeps the content its jobs produced (copy variants, image assets), so what an approval
binds to is the campaign's own state: `Approved` carries the hash of exactly those variants and
assets, and any edit or regeneration after it records `ApprovalInvalidated` first.
"""

from __future__ import annotations

import hashlib
from typing import Any, Literal
from uuid import NAMESPACE_URL, UUID, uuid5

import msgspec

from domain.base import WorkspaceAggregate
from domain.errors import DomainError, InvalidState, NotFound

Status = Literal["pending", "analyzing", "generating", "awaiting_approval", "approved", "publishing", "completed", "failed", "deleted"]
STATUSES: tuple[Status, ...] = (
    "pending",
    "analyzing",
    "generating",
    "awaiting_approval",
    "approved",
    "publishing",
    "completed",
    "failed",
    "deleted",
)
IN_PROGRESS: frozenset[str] = frozenset({"pending", "analyzing", "generating", "approved", "publishing"})
EDITABLE: frozenset[str] = frozenset({"awaiting_approval", "approved"})
REGENERABLE: frozenset[str] = frozenset({"awaiting_approval", "approved", "failed"})
TERMINAL_JOB: frozenset[str] = frozenset({"completed", "partial", "failed", "canceled", "expired"})

# A campaign names social platforms; copy jobs speak the ad platforms' dialects.
COPY_PLATFORM: dict[str, str] = {
    "facebook": "meta",
    "instagram": "meta",
    "threads": "meta",
    "meta": "meta",
    "x": "x",
    "linkedin": "linkedin",
    "tiktok": "tiktok",
    "pinterest": "pinterest",
    "google": "google",
    "youtube": "google",
}
_VARIANT_NAMESPACE = uuid5(NAMESPACE_URL, "pressroom:campaign-variant")


def copy_platform(platform: str) -> str:
    return COPY_PLATFORM.get(platform, "universal")


def variant_id(job_id: UUID, index: int) -> UUID:
    """A variant's id follows from the job that wrote it and its place there."""
    return uuid5(_VARIANT_NAMESPACE, f"{job_id}:{index}")


def content_hash(variants: list[dict[str, Any]], assets: list[dict[str, Any]]) -> str:
    """The hash of the approvable content: every variant's words and every asset's id, order-free."""
    words = sorted((str(v["id"]), v["platform"], v["hook"], v["body"], v["cta"], tuple(v["hashtags"])) for v in variants)
    canonical = msgspec.json.encode({"variants": words, "assets": sorted(str(a["id"]) for a in assets)})
    return hashlib.sha256(canonical).hexdigest()


class Campaign(WorkspaceAggregate):
    FAMILY = "campaigns"
    EVENT_PREFIX = "campaign"

    class Created(WorkspaceAggregate.Created):
        title: str
        product_url: str | None
        description: str | None
        platforms: list[str]
        tone: str
        image_count: int
        auto_approve: bool

    def __init__(
        self,
        workspace_id: UUID,
        title: str,
        product_url: str | None,
        description: str | None,
        platforms: list[str],
        tone: str,
        image_count: int,
        auto_approve: bool,
    ) -> None:
        self.workspace_id = workspace_id
        self.title = title
        self.product_url = product_url
        self.description = description
        self.platforms = platforms
        self.tone = tone
        self.image_count = image_count
        self.auto_approve = auto_approve
        self.status: Status = "pending"
        self.product: dict[str, Any] | None = None
        # job id -> {"type", "slot", "status"}; a slot is "copy:<platform>" or "image"
        self.jobs: dict[UUID, dict[str, str]] = {}
        self.variants: list[dict[str, Any]] = []
        self.assets: list[dict[str, Any]] = []
        self.approved_hash: str | None = None
        self.run_id: UUID | None = None
        self.failure: str | None = None
        self.regenerations = 0

    @classmethod
    def create(
        cls,
        campaign_id: UUID,
        workspace_id: UUID,
        *,
        title: str,
        product_url: str | None,
        description: str | None,
        platforms: list[str],
        tone: str,
        image_count: int,
        auto_approve: bool,
    ) -> Campaign:
        if not platforms:
            raise CampaignInvalid("A campaign needs at least one platform.")
        if len(set(platforms)) != len(platforms):
            raise CampaignInvalid("Each platform may be named once.")
        if not 0 <= image_count <= 4:
            raise CampaignInvalid("imageCount is 0 to 4.")
        return cls._create(
            cls.Created,
            id=campaign_id,
            workspace_id=workspace_id,
            title=title,
            product_url=product_url,
            description=description,
            platforms=platforms,
            tone=tone,
            image_count=image_count,
            auto_approve=auto_approve,
        )

    # Guards

    def check_not_deleted(self) -> None:
        if self.status == "deleted":
            raise CampaignDeleted(f"Campaign {self.id} was deleted.")

    def _check_status(self, allowed: frozenset[str] | set[str], doing: str) -> None:
        self.check_not_deleted()
        if self.status not in allowed:
            raise InvalidState(f"Campaign {self.id} is {self.status}; it cannot {doing} now.")

    @property
    def content_hash(self) -> str:
        return content_hash(self.variants, self.assets)

    @property
    def unsettled_jobs(self) -> list[UUID]:
        return [job_id for job_id, job in self.jobs.items() if job["status"] not in TERMINAL_JOB]

    # Analysis

    class AnalysisStarted(WorkspaceAggregate.Event):
        def apply(self, campaign: Campaign) -> None:
            campaign.status = "analyzing"

    def start_analysis(self) -> bool:
        """Marks the product analysis begun; False (and nothing recorded) once it is past that point."""
        if self.status == "pending":
            self._record(self.AnalysisStarted)
        return self.status == "analyzing"

    class ProductAnalyzed(WorkspaceAggregate.Event):
        title: str
        description: str
        price: str | None
        currency: str | None
        brand: str | None
        images: list[str]
        source: list[str]
        fallback_reason: str | None

        def apply(self, campaign: Campaign) -> None:
            campaign.product = {
                "title": self.title,
                "description": self.description,
                "price": self.price,
                "currency": self.currency,
                "brand": self.brand,
                "images": list(self.images),
                "source": list(self.source),
                "fallbackReason": self.fallback_reason,
            }

    def record_analysis(
        self,
        *,
        title: str,
        description: str,
        price: str | None = None,
        currency: str | None = None,
        brand: str | None = None,
        images: list[str] | None = None,
        source: list[str] | None = None,
        fallback_reason: str | None = None,
    ) -> bool:
        """Keeps what the product page said, or the brief as fallback; once only."""
        if self.status != "analyzing" or self.product is not None:
            return False
        self._record(
            self.ProductAnalyzed,
            title=title or self.title,
            description=description or self.description or "",
            price=price,
            currency=currency,
            brand=brand,
            images=images or [],
            source=source or [],
            fallback_reason=fallback_reason,
        )
        return True

    @property
    def awaits_generation(self) -> bool:
        return self.status == "analyzing" and self.product is not None

    # Generation

    class GenerationRequested(WorkspaceAggregate.Event):
        jobs: list[dict[str, Any]]  # [{"id": UUID, "type": "copy"|"image", "slot": str}]

        def apply(self, campaign: Campaign) -> None:
            campaign.status = "generating"
            for job in self.jobs:
                campaign.jobs[UUID(str(job["id"]))] = {"type": job["type"], "slot": job["slot"], "status": "queued"}

    def request_generation(self, jobs: list[dict[str, Any]]) -> None:
        """The first generation: the jobs were requested (and charged) in the same save as this event."""
        if not self.awaits_generation:
            raise InvalidState(f"Campaign {self.id} is {self.status}; its generation was already requested.")
        if not jobs:
            raise CampaignInvalid("A campaign's generation has at least one job.")
        self._record(self.GenerationRequested, jobs=jobs)

    class RegenerationRequested(GenerationRequested):
        def apply(self, campaign: Campaign) -> None:
            super().apply(campaign)
            campaign.regenerations += 1

    def request_regeneration(self, jobs: list[dict[str, Any]]) -> None:
        self._check_status(REGENERABLE, "regenerate")
        self._invalidate_approval("regenerated")
        self._record(self.RegenerationRequested, jobs=jobs)

    class JobSettled(WorkspaceAggregate.Event):
        job_id: UUID
        job_status: str
        variants: list[dict[str, Any]]
        assets: list[dict[str, Any]]

        def apply(self, campaign: Campaign) -> None:
            job = campaign.jobs[self.job_id]
            job["status"] = self.job_status
            if not self.variants and not self.assets:
                return  # a job that made nothing leaves what its slot had
            slot = job["slot"]
            same_slot = {str(job_id) for job_id, j in campaign.jobs.items() if j["slot"] == slot}
            campaign.variants = [v for v in campaign.variants if v["jobId"] not in same_slot] + [dict(v) for v in self.variants]
            campaign.assets = [a for a in campaign.assets if a["jobId"] not in same_slot] + [dict(a) for a in self.assets]

    def settle_job(self, job_id: UUID, job_status: str, variants: list[dict[str, Any]], assets: list[dict[str, Any]]) -> bool:
        """Takes in a job's outcome; once every job is settled, the campaign is ready (or failed).
        Returns whether anything was recorded."""
        job = self.jobs.get(job_id)
        if self.status == "deleted" or job is None or job["status"] in TERMINAL_JOB:
            return False
        if job_status not in TERMINAL_JOB:
            raise InvalidState(f"Job {job_id} is {job_status}, not over.")
        platform = job["slot"].removeprefix("copy:") if job["type"] == "copy" else None
        own_variants = [
            {
                "id": str(variant_id(job_id, i)),
                "jobId": str(job_id),
                "platform": platform,
                "hook": str(v.get("hook", "")),
                "body": str(v.get("body", "")),
                "cta": str(v.get("cta", "")),
                "hashtags": [str(tag) for tag in v.get("hashtags", [])],
                "edited": False,
            }
            for i, v in enumerate(variants)
        ]
        own_assets = [{**a, "id": str(a["id"]), "jobId": str(job_id)} for a in assets]
        self._record(self.JobSettled, job_id=job_id, job_status=job_status, variants=own_variants, assets=own_assets)
        if self.status == "generating" and not self.unsettled_jobs:
            self._finish_generation()
        return True

    class ReadyForApproval(WorkspaceAggregate.Event):
        def apply(self, campaign: Campaign) -> None:
            campaign.status = "awaiting_approval"

    class Failed(WorkspaceAggregate.Event):
        reason: str

        def apply(self, campaign: Campaign) -> None:
            campaign.status = "failed"
            campaign.failure = self.reason

    def _finish_generation(self) -> None:
        if not self.variants and not self.assets:
            self._record(self.Failed, reason="Every generation job failed.")
            return
        self._record(self.ReadyForApproval)
        if self.auto_approve:
            self.approve()

    def fail(self, reason: str) -> None:
        """Gives up on a campaign still in its pipeline (its generation could not be paid, say)."""
        if self.status in ("pending", "analyzing", "generating"):
            self._record(self.Failed, reason=reason)

    # Approval

    class Approved(WorkspaceAggregate.Event):
        content_hash: str
        variant_ids: list[str]
        asset_ids: list[str]

        def apply(self, campaign: Campaign) -> None:
            campaign.status = "approved"
            campaign.approved_hash = self.content_hash

    def approve(self) -> None:
        self._check_status({"awaiting_approval"}, "be approved")
        self._record(
            self.Approved,
            content_hash=self.content_hash,
            variant_ids=[v["id"] for v in self.variants],
            asset_ids=[a["id"] for a in self.assets],
        )

    class ApprovalInvalidated(WorkspaceAggregate.Event):
        reason: str
        approved_hash: str

        def apply(self, campaign: Campaign) -> None:
            campaign.status = "awaiting_approval"
            campaign.approved_hash = None

    def _invalidate_approval(self, reason: str) -> None:
        if self.status == "approved" and self.approved_hash is not None:
            self._record(self.ApprovalInvalidated, reason=reason, approved_hash=self.approved_hash)

    class VariantEdited(WorkspaceAggregate.Event):
        variant_id: str
        hook: str
        body: str
        cta: str
        hashtags: list[str]

        def apply(self, campaign: Campaign) -> None:
            edit = {"hook": self.hook, "body": self.body, "cta": self.cta, "hashtags": list(self.hashtags), "edited": True}
            campaign.variants = [{**v, **edit} if v["id"] == self.variant_id else v for v in campaign.variants]

    def edit_variant(
        self,
        variant: UUID | str,
        *,
        hook: str | None = None,
        body: str | None = None,
        cta: str | None = None,
        hashtags: list[str] | None = None,
    ) -> bool:
        """Changes a variant's words; an edit after approval takes the approval back. False if nothing changed."""
        self._check_status(EDITABLE, "be edited")
        found = next((v for v in self.variants if v["id"] == str(variant)), None)
        if found is None:
            raise VariantNotFound(f"Campaign {self.id} has no variant {variant}.")
        new = {
            "hook": found["hook"] if hook is None else hook,
            "body": found["body"] if body is None else body,
            "cta": found["cta"] if cta is None else cta,
            "hashtags": list(found["hashtags"]) if hashtags is None else list(hashtags),
        }
        if all(found[k] == new[k] for k in new):
            return False
        self._invalidate_approval("edited")
        self._record(self.VariantEdited, variant_id=str(variant), **new)
        return True

    # Publishing

    class PublishingScheduled(WorkspaceAggregate.Event):
        run_id: UUID
        content_hash: str

        def apply(self, campaign: Campaign) -> None:
            campaign.status = "publishing"
            campaign.run_id = self.run_id

    def check_schedulable(self) -> None:
        self._check_status({"approved"}, "be scheduled")

    def schedule(self, run_id: UUID) -> None:
        if self.status == "publishing" and self.run_id == run_id:
            return
        self.check_schedulable()
        if self.approved_hash != self.content_hash:  # pragma: no cover - every change after approval invalidates it
            raise InvalidState("The campaign's content changed since it was approved.")
        self._record(self.PublishingScheduled, run_id=run_id, content_hash=self.content_hash)

    class Completed(WorkspaceAggregate.Event):
        run_status: str

        def apply(self, campaign: Campaign) -> None:
            campaign.status = "completed"

    def complete(self, run_id: UUID, run_status: str) -> bool:
        """The campaign's run finished; False when this is not its run or it is not publishing."""
        if self.status != "publishing" or self.run_id != run_id:
            return False
        self._record(self.Completed, run_status=run_status)
        return True

    # Deletion

    class Deleted(WorkspaceAggregate.Event):
        def apply(self, campaign: Campaign) -> None:
            campaign.status = "deleted"

    def delete(self) -> bool:
        if self.status == "deleted":
            return False
        self._record(self.Deleted)
        return True


def job_slots(campaign: Campaign) -> list[tuple[str, str]]:
    """(job type, slot) of a campaign's first generation: a copy job per platform, then its images."""
    slots = [("copy", f"copy:{platform}") for platform in campaign.platforms]
    if campaign.image_count:
        slots.append(("image", "image"))
    return slots


class CampaignInvalid(DomainError):
    code = "validation_error"


class CampaignDeleted(InvalidState):
    pass


class VariantNotFound(NotFound):
    pass
