"""What goes over the wire: request and response structs, camelCase JSON."""

from __future__ import annotations

from datetime import date, datetime
from typing import Annotated, Any, Literal
from uuid import UUID

import msgspec
from msgspec import Meta

from application.integration_events import Envelope
from domain.generation_job import Status
from domain.pricing import JobType
from projections.credit_ledger import EntryType

PlanName = Literal["free", "pro", "business"]
JobTypeName = JobType
JobStatus = Status


class Schema(msgspec.Struct, kw_only=True, rename="camel"):
    pass


class Input(msgspec.Struct, kw_only=True, rename="camel", forbid_unknown_fields=True):
    pass


# Operators


class CreateWorkspace(Input):
    name: Annotated[str, Meta(min_length=1, max_length=200)]
    plan: PlanName = "free"


class WorkspaceOut(Schema):
    id: UUID
    name: str
    plan: str
    created_at: datetime


class NewKeyOut(Schema):
    id: UUID
    prefix: str
    label: str
    secret: str
    created_at: datetime


class WorkspaceCreated(Schema):
    workspace: WorkspaceOut
    api_key: NewKeyOut


class TopUp(Input):
    amount: Annotated[int, Meta(gt=0, le=10_000_000)]
    reference: Annotated[str, Meta(min_length=1, max_length=200)]
    reason: Annotated[str, Meta(max_length=500)] | None = None


class TopUpResult(Schema):
    balance: int
    duplicate: bool


class Adjustment(Input):
    amount: Annotated[int, Meta(ge=-10_000_000, le=10_000_000)]
    reference: Annotated[str, Meta(min_length=1, max_length=200)]
    reason: Annotated[str, Meta(min_length=1, max_length=500)]


class PlanChange(Input):
    plan: PlanName


class PlanOutcome(Schema):
    plan: str
    next_plan: str | None
    balance: int


# Keys


class KeyUse(Schema):
    id: UUID
    prefix: str
    label: str
    last_used_at: datetime | None


class KeyValidation(Schema):
    workspace: WorkspaceOut
    api_key: KeyUse


class KeyOut(Schema):
    id: UUID
    prefix: str
    label: str
    created_at: datetime
    last_used_at: datetime | None
    revoked_at: datetime | None


class KeyList(Schema):
    keys: list[KeyOut]


class CreateKey(Input):
    label: Annotated[str, Meta(min_length=1, max_length=100)] = "default"


class KeyCreated(Schema):
    key: NewKeyOut


# Credits


class CreditsOut(Schema):
    balance: int
    allowance_balance: int
    topup_balance: int
    plan: str
    next_plan: str | None
    period_start: datetime
    period_end: datetime
    used_this_period: int


class DailyCredits(Schema):
    date: date
    credits: int


class UsageOut(Schema):
    period_days: int
    total_credits: int
    by_type: dict[str, int]
    daily: list[DailyCredits]
    lifetime: int


class PaymentReceipt(Schema):
    received: bool
    applied: bool


class TransactionOut(Schema):
    id: UUID
    type: EntryType
    amount: int
    balance_after: int
    job_id: UUID | None
    reference: str | None
    reason: str | None
    created_at: datetime


class TransactionList(Schema):
    transactions: list[TransactionOut]
    next_cursor: str | None


class Costs(Schema):
    copy: int
    image: int
    video: int


class PlanOut(Schema):
    monthly_credits: int


class PricingOut(Schema):
    costs: Costs
    plans: dict[str, PlanOut]


# Jobs


class CreateJob(Input):
    type: JobTypeName
    input: dict[str, Any]
    campaign_id: UUID | None = None
    idempotency_key: Annotated[str, Meta(min_length=1, max_length=128)] | None = None


class JobAccepted(Schema):
    job_id: UUID
    status: JobStatus
    credits_reserved: int
    credits_remaining: int
    poll_url: str
    duplicate: bool


class Progress(Schema):
    done: int
    total: int


class JobError(Schema):
    code: str
    message: str


class AssetRef(Schema):
    id: UUID
    type: Literal["image", "video"]
    mime: str
    url: str
    width: int
    height: int


class JobResult(Schema, omit_defaults=True):
    """`variants` for copy jobs, `assets` for image and video jobs."""

    variants: list[dict[str, Any]] | msgspec.UnsetType = msgspec.UNSET
    assets: list[AssetRef] | msgspec.UnsetType = msgspec.UNSET


class AssetOut(Schema):
    id: UUID
    job_id: UUID | None
    campaign_id: UUID | None
    type: Literal["image", "video"]
    mime: str
    url: str
    width: int
    height: int
    bytes: int
    created_at: datetime


class UploadAsset(Input):
    filename: Annotated[str, Meta(min_length=1, max_length=200)]
    mime: Literal["image/png", "image/jpeg", "image/webp", "video/mp4"]
    content_base64: Annotated[str, Meta(min_length=1, max_length=14_000_000)]


class JobProgress(Schema):
    status: JobStatus
    progress: Progress


class JobOut(Schema):
    id: UUID
    type: JobTypeName
    status: JobStatus
    campaign_id: UUID | None
    input: dict[str, Any]
    progress: Progress
    credits_reserved: int
    credits_consumed: int
    credits_refunded: int
    result: JobResult | None
    error: JobError | None
    attempts: int
    created_at: datetime
    started_at: datetime | None
    completed_at: datetime | None


class JobList(Schema):
    jobs: list[JobOut]
    next_cursor: str | None


# Operations


class ProjectionHealth(Schema):
    position: int
    lag: int


class ProcessHealth(Schema):
    kind: str
    seen_at: datetime
    started_at: datetime


class Health(Schema):
    ok: bool
    database: bool
    broker: bool
    projections: dict[str, ProjectionHealth]
    workers: dict[str, ProcessHealth]


# Audit


class AuditEvents(Schema):
    events: list[Envelope]
    next_after: int | None


class AggregateState(Schema):
    aggregate_type: str
    id: UUID
    version: int
    state: dict[str, Any]


# Webhooks


class CreateWebhook(Input):
    url: Annotated[str, Meta(min_length=1, max_length=2048, pattern=r"^https?://")]
    events: Annotated[list[Annotated[str, Meta(min_length=1, max_length=100)]], Meta(min_length=1, max_length=100)]


class WebhookOut(Schema):
    id: UUID
    url: str
    events: list[str]
    created_at: datetime


class NewWebhookOut(WebhookOut):
    secret: str


class WebhookCreated(Schema):
    webhook: NewWebhookOut


class WebhookList(Schema):
    webhooks: list[WebhookOut]


class DeliveryOut(Schema):
    event_id: UUID
    type: str
    attempt: int
    status: Literal["delivered", "retrying", "failed"]
    http_status: int | None
    error: str | None
    replay: int
    at: datetime


class DeliveryList(Schema):
    deliveries: list[DeliveryOut]
    next_cursor: str | None


class ReplayWebhook(Input):
    after: Annotated[int, Meta(ge=0, description="Log position (a stream event id or `nextAfter` of /v1/audit/events) to redeliver after")]


class ReplayAccepted(Schema):
    webhook_id: UUID
    after: int
    replay: int


# Connections and accounts


class ProviderOut(Schema):
    name: str
    display_name: str
    auth: str
    text_limit: int
    counting: str
    caption_limit: int | None
    media_types: list[str]
    max_media: int
    media_required: bool
    supports_delete: bool
    supports_reconcile: bool
    posts_per_minute: int
    daily_cap: int | None


class ProviderList(Schema):
    providers: list[ProviderOut]


Secret = Annotated[str, Meta(min_length=1, max_length=4096)]
Url = Annotated[str, Meta(min_length=1, max_length=2048, pattern=r"^https?://")]


class ConnectInput(Input, tag_field="provider"):
    pass


class ConnectWebhook(ConnectInput, tag="webhook"):
    url: Url
    secret: Secret | None = None


class ConnectDiscord(ConnectInput, tag="discord"):
    webhook_url: Url


class ConnectTelegram(ConnectInput, tag="telegram"):
    bot_token: Secret
    chat_id: Annotated[str, Meta(min_length=1, max_length=200)]


class ConnectMastodon(ConnectInput, tag="mastodon"):
    instance_url: Url
    access_token: Secret


class ConnectBluesky(ConnectInput, tag="bluesky"):
    identifier: Annotated[str, Meta(min_length=1, max_length=253)]
    app_password: Secret


CreateConnection = ConnectWebhook | ConnectDiscord | ConnectTelegram | ConnectMastodon | ConnectBluesky


class ConnectionOut(Schema):
    id: UUID
    provider: str
    status: str
    handle: str | None = None
    display_name: str | None = None
    authorize_url: str | None = None
    error: str | None = None


class ConnectionAnswer(Schema):
    connection: ConnectionOut


class AccountOut(Schema):
    id: UUID
    provider: str
    handle: str
    display_name: str
    status: str
    created_at: datetime


class AccountList(Schema):
    accounts: list[AccountOut]


# Posts and runs


class PlannedOut(Schema):
    account: str
    provider: str
    publish_at_utc: datetime
    text: str
    local_time: str
    timezone: str


class Validated(Schema):
    ok: bool
    timezone: str
    mode: str
    source_model: str
    total_posts: int
    posts: list[PlannedOut]


class RunBrief(Schema):
    id: UUID
    status: str
    total_posts: int


class PostBrief(Schema):
    id: UUID
    status: str


class AppliedOut(Schema):
    duplicate: bool
    run: RunBrief
    posts: list[PostBrief]


class AttemptOut(Schema):
    n: int
    started_at: datetime
    finished_at: datetime | None
    outcome: str | None
    error: str | None
    http_status: int | None


class AttemptList(Schema):
    attempts: list[AttemptOut]


class PostOut(Schema):
    id: UUID
    run_id: UUID
    provider: str
    account: str
    account_id: UUID
    status: str
    text: str
    assets: list[str]
    publish_at_utc: datetime
    local_time: str | None
    timezone: str
    due_at: datetime
    delayed_reason: str | None
    provider_post_id: str | None
    provider_url: str | None
    published_at: datetime | None
    error: dict[str, str] | None
    attempts: int
    campaign_id: UUID | None
    created_at: datetime
    updated_at: datetime


class PostPage(Schema):
    total: int
    limit: int
    offset: int
    posts: list[PostOut]


class RunOut(Schema):
    id: UUID
    status: str
    mode: str
    total_posts: int
    source_model: str
    timezone: str
    created_at: datetime


class RunDetail(Schema):
    run: RunOut
    posts: list[PostOut]
    summary: dict[str, int]


class RunTableRow(Schema):
    time: datetime
    account: str
    status: str
    post_id: UUID


class RunTable(Schema):
    rows: list[RunTableRow]


class PublishRun(Input):
    start_at: datetime | None = None
