"""The Litestar application factory: routes, auth, errors, OpenAPI; nothing connects at import time."""

from __future__ import annotations

import time
from typing import Any

import structlog
from litestar import Litestar, Request, get
from litestar.datastructures import State
from litestar.di import Provide
from litestar.enums import ScopeType
from litestar.middleware import DefineMiddleware
from litestar.openapi import OpenAPIConfig
from litestar.openapi.plugins import SwaggerRenderPlugin
from litestar.openapi.spec import Components, SecurityScheme
from litestar.response import Redirect
from litestar.types import ASGIApp, Message, Receive, Scope, Send

from adapters.bootstrap import Container
from adapters.settings import Settings
from api.auth import ApiKeyAuthentication, key_of, principal_of
from api.controllers.admin import AdminController
from api.controllers.assets import AssetsController, MediaController
from api.controllers.audit import AuditController
from api.controllers.billing import BillingController
from api.controllers.campaigns import CampaignsController
from api.controllers.connections import ConnectionsController, ProvidersController
from api.controllers.credits import CreditsController
from api.controllers.health import HealthController
from api.controllers.jobs import JobsController
from api.controllers.metrics import MetricsController, observe_answer
from api.controllers.oauth import OAuthController
from api.controllers.posts import PostsController
from api.controllers.webhooks import WebhooksController
from api.controllers.workspace import WorkspaceController
from api.errors import EXCEPTION_HANDLERS
from application.event_catalogue import asyncapi
from application.ids import new_id
from application.metadata import set_metadata
from application.pressroom import Principal
from domain.api_key import ApiKey


def request_middleware(app: ASGIApp) -> ASGIApp:
    """Gives every request an id (the client's X-Request-Id, or a new one): in logs, events and the answer; and
    counts and times each answer for /metrics. One layer for both: every layer costs every request."""

    async def middleware(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != ScopeType.HTTP:
            await app(scope, receive, send)
            return
        started, method = time.perf_counter(), scope["method"]
        given = next((value for name, value in scope["headers"] if name == b"x-request-id"), b"").decode("latin-1")[:100]
        request_id = given or new_id().hex

        async def answer(message: Message) -> None:
            if message["type"] == "http.response.start":
                message["headers"] = [*message.get("headers", []), (b"x-request-id", request_id.encode())]
                observe_answer(method, message["status"], time.perf_counter() - started)
            await send(message)

        structlog.contextvars.bind_contextvars(request_id=request_id)
        set_metadata(request_id=request_id)
        await app(scope, receive, answer)

    return middleware


@get("/schema/asyncapi.json", include_in_schema=False, sync_to_thread=False)
def asyncapi_document() -> dict[str, Any]:
    """The AsyncAPI 3 catalogue of every integration event (Kafka and webhooks)."""
    return asyncapi()


@get("/docs", include_in_schema=False)
async def docs() -> Redirect:
    return Redirect(path="/schema/swagger")


def create_app(settings: Settings, container: Container | None = None) -> Litestar:
    container = container or Container(settings)

    async def provide_container() -> Container:
        return container

    # These take the container though they do not use it: dependencies of the same depth are resolved
    # concurrently, in a task group per request that cost more than resolving them; one after the other, not.
    def provide_principal(request: Request[Any, Any, Any], container: Container) -> Principal:
        return principal_of(request)

    def provide_key(request: Request[Any, Any, Any], container: Container) -> ApiKey:
        return key_of(request)

    return Litestar(
        route_handlers=[
            AdminController,
            MetricsController,
            AuditController,
            BillingController,
            AssetsController,
            MediaController,
            WorkspaceController,
            CreditsController,
            JobsController,
            CampaignsController,
            WebhooksController,
            ProvidersController,
            ConnectionsController,
            OAuthController,
            PostsController,
            HealthController,
            docs,
            asyncapi_document,
        ],
        dependencies={
            "container": Provide(provide_container),
            "principal": Provide(provide_principal, sync_to_thread=False),
            "key": Provide(provide_key, sync_to_thread=False),
        },
        middleware=[request_middleware, DefineMiddleware(ApiKeyAuthentication, container=container)],
        exception_handlers=EXCEPTION_HANDLERS,
        # Uploads are up to 10 MB, so their base64 JSON bodies up to about 14 MB.
        request_max_body_size=16 * 1024 * 1024,
        state=State({"container": container}),
        on_shutdown=[container.aclose],
        openapi_config=OpenAPIConfig(
            title="Pressroom API",
            version="1.0.0",
            description="AI ad-creative generation and social publishing, event-sourced. "
            "Errors are application/problem+json with a stable `code`.",
            path="/schema",
            render_plugins=[SwaggerRenderPlugin(path="/swagger")],
            security=[{"ApiKey": []}],
            components=Components(
                security_schemes={
                    "ApiKey": SecurityScheme(type="http", scheme="bearer", description="A workspace API key, pr_live_…"),
                    "AdminToken": SecurityScheme(type="http", scheme="bearer", description="PRESSROOM_ADMIN_TOKEN"),
                }
            ),
        ),
    )
