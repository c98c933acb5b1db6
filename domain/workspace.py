"""Workspace: the tenant that owns keys, credits and jobs."""

from __future__ import annotations

from typing import Any, Literal, get_args
from uuid import UUID

from domain.base import WorkspaceAggregate
from domain.errors import DomainError

Plan = Literal["free", "pro", "business"]
PLANS: tuple[Plan, ...] = get_args(Plan)


class Workspace(WorkspaceAggregate):
    FAMILY = "workspaces"
    EVENT_PREFIX = "workspace"

    class Created(WorkspaceAggregate.Created):
        name: str

        # v1 carried the plan, which now belongs to the credit account alone.
        class_version = 2

        @staticmethod
        def upcast_v1_v2(state: dict[str, Any]) -> None:
            state.pop("plan", None)

    def __init__(self, workspace_id: UUID, name: str) -> None:
        self.workspace_id = workspace_id
        self.name = name

    @classmethod
    def open(cls, workspace_id: UUID, name: str) -> Workspace:
        """A new workspace; its plan is its credit account's."""
        check_name(name)
        return cls._create(cls.Created, id=workspace_id, workspace_id=workspace_id, name=name)

    class Renamed(WorkspaceAggregate.Event):
        name: str

        def apply(self, workspace: Workspace) -> None:
            workspace.name = self.name

    def rename(self, name: str) -> None:
        check_name(name)
        if name != self.name:
            self._record(self.Renamed, name=name)


def check_name(name: str) -> None:
    if not name.strip() or len(name) > 200:
        raise InvalidWorkspaceName("A workspace name has 1 to 200 characters.")


def check_plan(plan: str) -> None:
    if plan not in PLANS:
        raise UnknownPlan(f"Unknown plan {plan!r}; plans are {', '.join(PLANS)}.")


class InvalidWorkspaceName(DomainError):
    code = "invalid_name"


class UnknownPlan(DomainError):
    code = "unknown_plan"
