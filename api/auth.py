"""Who is calling: workspace API keys on /v1 routes, the admin token on /v1/admin routes."""

from __future__ import annotations

import hmac
from datetime import UTC, datetime
from typing import Any

import anyio.to_thread
import structlog
from litestar.connection import ASGIConnection
from litestar.exceptions import NotAuthorizedException
from litestar.middleware import AbstractAuthenticationMiddleware, AuthenticationResult
from litestar.types import ASGIApp

from adapters.bootstrap import Container
from application.metadata import set_metadata
from application.pressroom import Principal, Unauthenticated, admitted, key_id_of
from domain.api_key import ApiKey

PUBLIC = [
    "^/v1/admin/",
    "^/v1/providers$",
    "^/v1/billing/webhook$",
    "^/v1/pricing$",
    "^/health$",
    "^/metrics$",
    "^/schema",
    "^/docs$",
    "^/oauth/",
    "^/media/",
]


def bearer_token(connection: ASGIConnection[Any, Any, Any, Any]) -> str:
    scheme, _, token = connection.headers.get("authorization", "").partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise NotAuthorizedException("Send 'Authorization: Bearer <key>'.", headers={"WWW-Authenticate": "Bearer"})
    return token.strip()


class ApiKeyAuthentication(AbstractAuthenticationMiddleware):
    def __init__(self, app: ASGIApp, container: Container) -> None:
        super().__init__(app, exclude=PUBLIC)
        self.container = container

    async def authenticate_request(self, connection: ASGIConnection[Any, Any, Any, Any]) -> AuthenticationResult:
        secret = bearer_token(connection)
        try:
            principal, key = admitted(secret, await self.container.key_lookup.find(key_id_of(secret)))
        except Unauthenticated as error:
            raise NotAuthorizedException(error.detail, headers={"WWW-Authenticate": "Bearer"}) from None
        now = datetime.now(UTC)
        if self.container.key_use.is_due(key.id, now):  # a thread only for the write, at most once a minute per key
            await anyio.to_thread.run_sync(self.container.key_use, key.id, now)
        # Set in this request's own task, so it reaches the handler and every event it records.
        set_metadata(actor=f"api_key:{key.id}")
        structlog.contextvars.bind_contextvars(workspace_id=str(principal.workspace_id), key_id=str(key.id))
        return AuthenticationResult(user=principal, auth=key)


def principal_of(connection: ASGIConnection[Any, Any, Any, Any]) -> Principal:
    user = connection.scope.get("user")
    if not isinstance(user, Principal):
        raise NotAuthorizedException("Send 'Authorization: Bearer <key>'.", headers={"WWW-Authenticate": "Bearer"})
    return user


def key_of(connection: ASGIConnection[Any, Any, Any, Any]) -> ApiKey:
    key = connection.scope.get("auth")
    if not isinstance(key, ApiKey):
        raise NotAuthorizedException("Send 'Authorization: Bearer <key>'.")
    return key


def require_admin(connection: ASGIConnection[Any, Any, Any, Any], _: Any) -> None:
    """Guard of the operator routes."""
    expected = connection.app.state.container.settings.admin_token
    token = bearer_token(connection)
    if not expected or not hmac.compare_digest(token.encode(), expected.encode()):
        raise NotAuthorizedException("This route takes the admin token.", headers={"WWW-Authenticate": "Bearer"})
    set_metadata(actor="admin")
