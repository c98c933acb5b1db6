"""Every read model Pressroom keeps."""

from __future__ import annotations

from projections.api_keys import ApiKeysReadModel
from projections.audit_log import AuditLogReadModel
from projections.campaigns import CampaignsReadModel
from projections.connections import ConnectionsReadModel
from projections.credit_accounts import CreditAccountsReadModel
from projections.credit_ledger import CreditLedgerReadModel
from projections.credit_usage import CreditUsageReadModel
from projections.engine import ReadModel
from projections.jobs import JobsReadModel
from projections.posts import PostsReadModel
from projections.runs import RunsReadModel
from projections.webhooks import WebhooksReadModel

READ_MODELS: tuple[ReadModel, ...] = (
    JobsReadModel(),
    CreditLedgerReadModel(),
    CreditAccountsReadModel(),
    CreditUsageReadModel(),
    ApiKeysReadModel(),
    AuditLogReadModel(),
    WebhooksReadModel(),
    ConnectionsReadModel(),
    PostsReadModel(),
    RunsReadModel(),
    CampaignsReadModel(),
)
