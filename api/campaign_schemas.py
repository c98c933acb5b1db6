"""What goes over the wire for campaigns: request and response structs, camelCase JSON."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal
from uuid import UUID

from msgspec import Meta

from api.schemas import AssetRef, Input, Schema
from application.ports import Tone
from domain.campaign import Status

CampaignPlatform = Literal[
    "x",
    "linkedin",
    "facebook",
    "instagram",
    "threads",
    "tiktok",
    "pinterest",
    "youtube",
    "google",
    "meta",
    "bluesky",
    "mastodon",
    "telegram",
    "discord",
    "universal",
]
CampaignStatus = Status
Hashtag = Annotated[str, Meta(min_length=1, max_length=100)]


class CreateCampaign(Input):
    title: Annotated[str, Meta(min_length=1, max_length=200)]
    platforms: Annotated[list[CampaignPlatform], Meta(min_length=1, max_length=10)]
    product_url: Annotated[str, Meta(max_length=2048, pattern=r"^https?://")] | None = None
    description: Annotated[str, Meta(max_length=5000)] | None = None
    tone: Tone = "professional"
    image_count: Annotated[int, Meta(ge=0, le=4)] = 1
    auto_approve: bool = False


class EditVariant(Input):
    """The words to change; what is left out stays as it is."""

    hook: Annotated[str, Meta(min_length=1, max_length=500)] | None = None
    body: Annotated[str, Meta(max_length=5000)] | None = None
    cta: Annotated[str, Meta(max_length=200)] | None = None
    hashtags: Annotated[list[Hashtag], Meta(max_length=30)] | None = None


class Regenerate(Input):
    """`copy` for one of the campaign's platforms (a new copy job), or `image` (a new image job)."""

    type: Literal["copy", "image"]
    platform: CampaignPlatform | None = None


class ScheduleCampaign(Input):
    accounts: Annotated[list[Annotated[str, Meta(min_length=1, max_length=300)]], Meta(min_length=1, max_length=50)]
    start_at: datetime
    timezone: Annotated[str, Meta(min_length=1, max_length=64)] = "UTC"
    spacing_minutes: Annotated[int, Meta(ge=0, le=7 * 24 * 60)] = 60


class ProductOut(Schema):
    title: str
    description: str
    images: list[str]
    source: list[str]
    price: str | None = None
    currency: str | None = None
    brand: str | None = None
    fallback_reason: str | None = None


class CampaignJobOut(Schema):
    id: UUID
    type: str
    status: str
    slot: str


class CampaignAssetOut(AssetRef):
    job_id: UUID
    filename: str


class VariantOut(Schema):
    id: UUID
    job_id: UUID
    platform: str | None
    hook: str
    body: str
    cta: str
    hashtags: list[str]
    edited: bool


class CampaignOut(Schema):
    id: UUID
    title: str
    product_url: str | None
    description: str | None
    product: ProductOut | None
    platforms: list[str]
    tone: str
    image_count: int
    auto_approve: bool
    status: CampaignStatus
    jobs: list[CampaignJobOut]
    assets: list[CampaignAssetOut]
    variants: list[VariantOut]
    content_hash: str
    approved_hash: str | None
    run_id: UUID | None
    failure: str | None
    created_at: datetime
    updated_at: datetime


class CampaignSummary(Schema):
    id: UUID
    title: str
    product_url: str | None
    platforms: list[str]
    status: str
    jobs: int
    run_id: UUID | None
    created_at: datetime
    updated_at: datetime


class CampaignList(Schema):
    campaigns: list[CampaignSummary]
    next_cursor: str | None


class CampaignStatsOut(Schema):
    total: int
    completed: int
    in_progress: int
    awaiting_approval: int
    failed: int


def product_out(product: dict[str, Any] | None) -> ProductOut | None:
    if product is None:
        return None
    return ProductOut(
        title=product["title"],
        description=product["description"],
        images=list(product["images"]),
        price=product.get("price"),
        currency=product.get("currency"),
        brand=product.get("brand"),
        source=list(product["source"]),
        fallback_reason=product.get("fallbackReason"),
    )
