"""Operator routes: create workspaces and top up their credits."""

from __future__ import annotations

from uuid import UUID

from litestar import Controller, post
from litestar.params import FromPath, JSONBody
from litestar.status_codes import HTTP_200_OK, HTTP_201_CREATED

from adapters.bootstrap import Container
from api.auth import require_admin
from api.schemas import (
    Adjustment,
    CreateWorkspace,
    NewKeyOut,
    PlanChange,
    PlanOutcome,
    TopUp,
    TopUpResult,
    WorkspaceCreated,
    WorkspaceOut,
)
from application.pressroom import NewKey, WorkspaceSummary


def workspace_out(workspace: WorkspaceSummary) -> WorkspaceOut:
    return WorkspaceOut(id=workspace.id, name=workspace.name, plan=workspace.plan, created_at=workspace.created_at)


def new_key_out(new_key: NewKey) -> NewKeyOut:
    key = new_key.key
    return NewKeyOut(id=key.id, prefix=key.prefix, label=key.label, secret=new_key.secret, created_at=key.created_on)


class AdminController(Controller):
    path = "/v1/admin"
    guards = [require_admin]  # noqa: RUF012 - Litestar's declaration style
    tags = ["operators"]  # noqa: RUF012
    security = [{"AdminToken": []}]  # noqa: RUF012

    @post("/workspaces", status_code=HTTP_201_CREATED, sync_to_thread=True, summary="Create a workspace and its first API key")
    def create_workspace(self, data: JSONBody[CreateWorkspace], container: Container) -> WorkspaceCreated:
        workspace, new_key = container.app.create_workspace(data.name, data.plan)
        return WorkspaceCreated(workspace=workspace_out(workspace), api_key=new_key_out(new_key))

    @post(
        "/workspaces/{workspace_id:uuid}/credits",
        status_code=HTTP_200_OK,
        sync_to_thread=True,
        summary="Top up a workspace's credits, idempotent by reference",
    )
    def top_up(self, workspace_id: FromPath[UUID], data: JSONBody[TopUp], container: Container) -> TopUpResult:
        account, duplicate = container.app.top_up(workspace_id, data.amount, data.reference, data.reason)
        return TopUpResult(balance=account.balance, duplicate=duplicate)

    @post(
        "/workspaces/{workspace_id:uuid}/credits/adjustments",
        status_code=HTTP_200_OK,
        sync_to_thread=True,
        summary="Add (positive) or remove (negative) credits with a reason, idempotent by reference; never below zero (402)",
    )
    def adjust(self, workspace_id: FromPath[UUID], data: JSONBody[Adjustment], container: Container) -> TopUpResult:
        account, duplicate = container.app.adjust_credits(workspace_id, data.amount, data.reference, data.reason)
        return TopUpResult(balance=account.balance, duplicate=duplicate)

    @post(
        "/workspaces/{workspace_id:uuid}/plan",
        status_code=HTTP_200_OK,
        sync_to_thread=True,
        summary="Change the plan: an upgrade applies now with a pro-rated grant, a downgrade at the next period",
    )
    def change_plan(self, workspace_id: FromPath[UUID], data: JSONBody[PlanChange], container: Container) -> PlanOutcome:
        account = container.app.change_plan(workspace_id, data.plan)
        return PlanOutcome(plan=account.plan, next_plan=account.next_plan, balance=account.balance)
