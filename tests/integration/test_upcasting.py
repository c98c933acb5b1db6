"""Schema evolution: events stored in their first shape still load, and publish in the current shape."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any
from uuid import uuid4

from eventsourcing.persistence import StoredEvent

from adapters.bootstrap import Container
from application.integration_events import envelope
from domain.credit_account import Charge
from domain.generation_job import GenerationJob
from domain.workspace import Workspace


def stored_in_first_shape(container: Container, event: Any, to_v1: Callable[[dict[str, Any]], None]) -> StoredEvent:
    """The event as the first release stored it: today's fields, reshaped, and no class version."""
    current = container.app.mapper.to_stored_event(event)
    state = container.app.mapper.transcoder.decode(current.state)
    state.pop("class_version", None)
    to_v1(state)
    return StoredEvent(current.originator_id, current.originator_version, current.topic, container.app.mapper.transcoder.encode(state))


def without(*fields: str) -> Callable[[dict[str, Any]], None]:
    def reshape(state: dict[str, Any]) -> None:
        for field in fields:
            del state[field]

    return reshape


def test_job_stored_in_its_first_shape_loads_and_publishes_in_the_current_one(container: Container) -> None:
    workspace_id = uuid4()
    job = GenerationJob.request(uuid4(), workspace_id, "copy", {"product": {"name": "Lamp"}}, Charge(1, 1, 0), "fp", None, 1)
    job.start("w", job.created_on, job.created_on)
    job.fail(1, "provider_error", "no")
    requested, started, failed = job.collect_events()
    container.app.recorder.insert_events(
        [
            stored_in_first_shape(container, requested, without("charged_from_allowance", "charged_from_topup", "charged_in_period")),
            stored_in_first_shape(container, started, lambda state: None),
            stored_in_first_shape(container, failed, without("status", "refund_to_allowance", "refund_to_topup")),
        ]
    )

    loaded = container.app.repository.get(job.id)
    history = list(container.app.events.get(job.id))

    assert (loaded.status, loaded.charge, loaded.credits_refunded) == ("failed", Charge(1, 1, 0, refunded_allowance=1), 1)
    assert envelope(history[0]).data | {"input": None} == {
        "jobType": "copy",
        "input": None,
        "cost": 1,
        "fingerprint": "fp",
        "campaignId": None,
        "outputs": 1,
        "chargedFromAllowance": 1,
        "chargedFromTopup": 0,
        "chargedInPeriod": 0,
    }
    assert envelope(history[2]).data["refundToAllowance"] == 1 and envelope(history[2]).data["status"] == "failed"


def test_workspace_stored_with_its_plan_loads_without_it(container: Container) -> None:
    (created,) = Workspace.open(uuid4(), "Old").collect_events()

    def with_plan(state: dict[str, Any]) -> None:
        state["plan"] = "pro"

    container.app.recorder.insert_events([stored_in_first_shape(container, created, with_plan)])

    loaded = container.app.repository.get(created.originator_id)
    (event,) = container.app.events.get(created.originator_id)
    assert loaded.name == "Old" and not hasattr(loaded, "plan")
    assert envelope(event).data == {"name": "Old"}
