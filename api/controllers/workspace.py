"""The caller's workspace and its API keys."""

from __future__ import annotations

from uuid import UUID

from litestar import Controller, delete, get, post
from litestar.params import FromPath, JSONBody
from litestar.status_codes import HTTP_200_OK, HTTP_201_CREATED

from adapters.bootstrap import Container
from api.controllers.admin import new_key_out, workspace_out
from api.schemas import CreateKey, KeyCreated, KeyList, KeyOut, KeyUse, KeyValidation, WorkspaceOut
from application.pressroom import Principal
from domain.api_key import ApiKey
from projections.api_keys import last_used_at, list_keys


class WorkspaceController(Controller):
    path = "/v1"
    tags = ["workspace"]  # noqa: RUF012

    @get("/workspace", sync_to_thread=True, summary="The workspace of the calling key")
    def workspace(self, principal: Principal, container: Container) -> WorkspaceOut:
        return workspace_out(container.app.get_workspace(principal.workspace_id))

    @post("/keys/validate", status_code=HTTP_200_OK, sync_to_thread=True, summary="Check the calling key")
    def validate(self, principal: Principal, key: ApiKey, container: Container) -> KeyValidation:
        workspace = container.app.get_workspace(principal.workspace_id)
        used = last_used_at(container.pool, key.id)
        return KeyValidation(
            workspace=workspace_out(workspace),
            api_key=KeyUse(id=key.id, prefix=key.prefix, label=key.label, last_used_at=used),
        )

    @get("/keys", sync_to_thread=True, summary="The workspace's keys, never their secrets")
    def keys(self, principal: Principal, container: Container) -> KeyList:
        return KeyList(
            keys=[
                KeyOut(
                    id=k.id,
                    prefix=k.prefix,
                    label=k.label,
                    created_at=k.created_at,
                    last_used_at=k.last_used_at,
                    revoked_at=k.revoked_at,
                )
                for k in list_keys(container.pool, principal.workspace_id)
            ]
        )

    @post("/keys", status_code=HTTP_201_CREATED, sync_to_thread=True, summary="Issue a key; its secret is shown only here")
    def create_key(self, principal: Principal, data: JSONBody[CreateKey], container: Container) -> KeyCreated:
        return KeyCreated(key=new_key_out(container.app.issue_key(principal.workspace_id, data.label)))

    @delete(
        "/keys/{key_id:uuid}",
        status_code=HTTP_200_OK,
        sync_to_thread=True,
        summary="Revoke a key; it gets 401 at once. A key cannot revoke itself (409).",
    )
    def revoke_key(self, principal: Principal, key_id: FromPath[UUID], container: Container) -> KeyOut:
        key = container.app.revoke_key(principal, key_id)
        return KeyOut(
            id=key.id,
            prefix=key.prefix,
            label=key.label,
            created_at=key.created_on,
            last_used_at=last_used_at(container.pool, key.id),
            revoked_at=key.revoked_at,
        )
