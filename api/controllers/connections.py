"""Providers, connections and the accounts they make."""

from __future__ import annotations

from typing import Annotated
from uuid import UUID

import anyio.to_thread
import msgspec
from litestar import Controller, Request, delete, get, post
from litestar.params import FromPath, Parameter
from litestar.status_codes import HTTP_201_CREATED, HTTP_204_NO_CONTENT

from adapters.bootstrap import Container
from api.errors import RequestInvalid
from api.schemas import (
    AccountList,
    AccountOut,
    ConnectionAnswer,
    ConnectionOut,
    CreateConnection,
    ProviderList,
    ProviderOut,
)
from application.pressroom import Principal
from domain.connection import Connection
from domain.providers import PROVIDERS
from projections.connections import list_accounts

CONNECT_BODY_LIMIT = 64 * 1024


def provider_out(name: str) -> ProviderOut:
    spec = PROVIDERS[name]
    return ProviderOut(**{field: getattr(spec, field) for field in ProviderOut.__struct_fields__})


def connection_out(connection: Connection, authorize_url: str | None = None) -> ConnectionOut:
    return ConnectionOut(
        id=connection.id,
        provider=connection.provider,
        status=connection.status,
        handle=connection.handle,
        display_name=connection.display_name,
        authorize_url=authorize_url,
        error=connection.error,
    )


class ProvidersController(Controller):
    path = "/v1/providers"
    tags = ["connections"]  # noqa: RUF012

    @get("/", summary="Every provider with its limits and capabilities (no key needed)")
    async def providers(self) -> ProviderList:
        return ProviderList(providers=[provider_out(name) for name in PROVIDERS])


class ConnectionsController(Controller):
    path = "/v1"
    tags = ["connections"]  # noqa: RUF012

    @post(
        "/connections",
        status_code=HTTP_201_CREATED,
        summary="Connect an account",
        description="Manual providers connect at once after their credentials are checked with the platform: "
        "`webhook {url, secret?}`, `discord {webhookUrl}`, `telegram {botToken, chatId}`, `mastodon {instanceUrl, accessToken}`, "
        "`bluesky {identifier, appPassword}`. Credentials are stored encrypted and never shown again. "
        "OAuth providers (`{provider}` alone) answer a pending connection with its `authorizeUrl`.",
    )
    async def connect(self, principal: Principal, request: Request, container: Container) -> ConnectionAnswer:  # type: ignore[type-arg]
        raw = await request.body()
        if len(raw) > CONNECT_BODY_LIMIT:
            raise RequestInvalid.at("", "The body is too large.")
        try:
            data = msgspec.json.decode(raw, type=CreateConnection)
        except msgspec.ValidationError as error:
            spec = PROVIDERS.get(_provider_named(raw) or "")
            if spec is not None and spec.auth == "oauth":
                oauth_provider = spec.name  # its client, if configured, makes the authorizeUrl; else 422 not configured
                connection, url = await anyio.to_thread.run_sync(lambda: container.oauth.start(principal.workspace_id, oauth_provider))
                return ConnectionAnswer(connection=connection_out(connection, authorize_url=url))
            raise RequestInvalid.from_msgspec(error, "") from None
        except msgspec.DecodeError:
            raise RequestInvalid.at("", "The body is not JSON.") from None
        fields: dict[str, object] = msgspec.to_builtins(data)  # camelCase keys, as the publishers take them
        provider = str(fields.pop("provider"))
        credentials = {key: str(value) for key, value in fields.items() if value is not None}
        connection = await anyio.to_thread.run_sync(
            lambda: container.publishing.connect_manual(principal.workspace_id, provider, credentials)
        )
        return ConnectionAnswer(connection=connection_out(connection))

    @get("/connections/{connection_id:uuid}", sync_to_thread=True, summary="A connection and its status")
    def connection(self, principal: Principal, connection_id: FromPath[UUID], container: Container) -> ConnectionAnswer:
        connection = container.publishing.get_connection(principal.workspace_id, connection_id)
        return ConnectionAnswer(connection=connection_out(connection, authorize_url=container.oauth.authorize_url_of(connection)))

    @get("/accounts", sync_to_thread=True, summary="Connected accounts; `handle` (`provider:name`) names them in schedules")
    def accounts(
        self, principal: Principal, container: Container, provider: Annotated[str | None, Parameter(max_length=50)] = None
    ) -> AccountList:
        return AccountList(
            accounts=[
                AccountOut(
                    id=row.id,
                    provider=row.provider,
                    handle=row.handle or "",
                    display_name=row.display_name or "",
                    status=row.status,
                    created_at=row.created_at,
                )
                for row in list_accounts(container.pool, principal.workspace_id, provider=provider)
            ]
        )

    @delete(
        "/accounts/{account_id:uuid}",
        status_code=HTTP_204_NO_CONTENT,
        sync_to_thread=True,
        summary="Disconnect an account; its scheduled posts fail with account_disconnected",
    )
    def disconnect(self, principal: Principal, account_id: FromPath[UUID], container: Container) -> None:
        container.publishing.disconnect(principal.workspace_id, account_id)


def _provider_named(raw: bytes) -> str | None:
    try:
        body = msgspec.json.decode(raw)
    except msgspec.DecodeError:
        return None
    provider = body.get("provider") if isinstance(body, dict) else None
    return provider if isinstance(provider, str) else None
