"""Webhooks: subscriptions to the workspace's events, their delivery log, and replays."""

from __future__ import annotations

import socket
import time
from typing import Annotated
from uuid import UUID

from litestar import Controller, delete, get, post
from litestar.params import FromPath, JSONBody, Parameter
from litestar.status_codes import HTTP_201_CREATED, HTTP_202_ACCEPTED, HTTP_204_NO_CONTENT

from adapters.bootstrap import Container
from adapters.outbound_http import check_url
from adapters.webhook_deliveries import attempts_of
from api.errors import RequestInvalid
from api.schemas import (
    CreateWebhook,
    DeliveryList,
    DeliveryOut,
    NewWebhookOut,
    ReplayAccepted,
    ReplayWebhook,
    WebhookCreated,
    WebhookList,
    WebhookOut,
)
from application.event_catalogue import event_types
from application.ports import ProviderError
from application.pressroom import Principal
from domain.webhook import ALL_EVENTS
from projections.paging import decode_cursor, encode_cursor
from projections.webhooks import live_webhooks

LISTED_WITHIN_SECONDS = 5.0


def _checked(data: CreateWebhook, allow_private: bool) -> tuple[str, ...]:
    known = event_types()
    errors = [
        {"path": f"events.{i}", "message": f"{name!r} is no event type; see /schema/asyncapi.json, or use '*' or 'job.*'."}
        for i, name in enumerate(data.events)
        if name != ALL_EVENTS and name not in known
    ]
    try:
        check_url(data.url, allow_private=allow_private)
    except ProviderError as refused:
        errors.append({"path": "url", "message": refused.message})
    except (socket.gaierror, UnicodeError):
        errors.append({"path": "url", "message": "This host does not resolve."})
    if errors:
        raise RequestInvalid(errors)
    return tuple(data.events)


class WebhooksController(Controller):
    path = "/v1/webhooks"
    tags = ["webhooks"]  # noqa: RUF012

    @post(
        "/",
        status_code=HTTP_201_CREATED,
        sync_to_thread=True,
        summary="Subscribe a URL to event types ('*', 'job.*' or exact types); the signing secret is shown only here",
        description="Every event committed after the answer is delivered, signed with `Pressroom-Signature: t=<unix seconds>,"
        'v1=<hex HMAC-SHA256(secret, "<t>.<body>")>`. Private and loopback addresses are refused.',
    )
    def create(self, principal: Principal, data: JSONBody[CreateWebhook], container: Container) -> WebhookCreated:
        events = _checked(data, container.settings.allow_private_urls)
        webhook = container.app.create_webhook(principal.workspace_id, data.url, events)
        _wait_until_listed(container, principal.workspace_id, webhook.id)
        return WebhookCreated(
            webhook=NewWebhookOut(
                id=webhook.id,
                url=webhook.url,
                events=list(webhook.events),
                created_at=webhook.created_on,
                secret=container.webhook_signer.secret_for(webhook.id),
            )
        )

    @get("/", sync_to_thread=True, summary="The workspace's webhooks, without their secrets")
    def list(self, principal: Principal, container: Container) -> WebhookList:
        return WebhookList(
            webhooks=[
                WebhookOut(id=w.id, url=w.url, events=w.events, created_at=w.created_at)
                for w in live_webhooks(container.pool, principal.workspace_id)
            ]
        )

    @delete("/{webhook_id:uuid}", status_code=HTTP_204_NO_CONTENT, sync_to_thread=True, summary="Remove a webhook; pending deliveries stop")
    def remove(self, principal: Principal, webhook_id: FromPath[UUID], container: Container) -> None:
        container.app.remove_webhook(principal.workspace_id, webhook_id)
        _wait_until_listed(container, principal.workspace_id, webhook_id, listed=False)

    @get("/{webhook_id:uuid}/deliveries", sync_to_thread=True, summary="The webhook's delivery attempts, newest first")
    def deliveries(
        self,
        principal: Principal,
        webhook_id: FromPath[UUID],
        container: Container,
        limit: Annotated[int, Parameter(ge=1, le=200)] = 50,
        cursor: str | None = None,
    ) -> DeliveryList:
        container.app.get_webhook(principal.workspace_id, webhook_id)
        before = int(decode_cursor(cursor, 1)[0]) if cursor else None
        rows = attempts_of(container.pool, webhook_id, before=before, limit=limit)
        return DeliveryList(
            deliveries=[
                DeliveryOut(
                    event_id=r.event_id,
                    type=r.event_type,
                    attempt=r.attempt,
                    status=r.status,  # type: ignore[arg-type]
                    http_status=r.http_status,
                    error=r.error,
                    replay=r.replay,
                    at=r.at,
                )
                for r in rows
            ],
            next_cursor=encode_cursor(str(rows[-1].id)) if len(rows) == limit else None,
        )

    @post(
        "/{webhook_id:uuid}/replay",
        status_code=HTTP_202_ACCEPTED,
        sync_to_thread=True,
        summary="Redeliver this webhook's events after a log position, including ones delivered before",
    )
    def replay(
        self, principal: Principal, webhook_id: FromPath[UUID], data: JSONBody[ReplayWebhook], container: Container
    ) -> ReplayAccepted:
        webhook = container.app.replay_webhook(principal.workspace_id, webhook_id, data.after)
        return ReplayAccepted(webhook_id=webhook.id, after=data.after, replay=webhook.replays)


def _wait_until_listed(container: Container, workspace_id: UUID, webhook_id: UUID, *, listed: bool = True) -> None:
    """Read-your-writes for subscribers: the dispatcher finds webhooks in the read model, so answering
    once it is there (or, for a removal, gone) means every event after the answer is delivered (or not)."""
    deadline = time.monotonic() + LISTED_WITHIN_SECONDS
    while time.monotonic() < deadline:
        if any(w.id == webhook_id for w in live_webhooks(container.pool, workspace_id)) == listed:
            return
        time.sleep(0.02)
