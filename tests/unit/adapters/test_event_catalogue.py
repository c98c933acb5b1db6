"""The published event catalogue matches the events the system really records."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from uuid import uuid4

import msgspec

from application.event_catalogue import asyncapi, event_classes
from application.integration_events import envelope
from domain.credit_account import CreditAccount
from domain.generation_job import GenerationJob
from domain.pricing import Pricing
from domain.workspace import Workspace

DOCUMENT = Path(__file__).resolve().parents[3] / "docs" / "asyncapi.json"


def recorded_events() -> list[object]:
    account = CreditAccount.open(uuid4(), "pro", datetime(2026, 1, 1, tzinfo=UTC), Pricing())
    charge = account.debit(uuid4(), 3, "image")
    job = GenerationJob.request(uuid4(), account.workspace_id, "image", {"prompt": "lamp"}, charge, "fp", None, 1)
    job.cancel()
    return [*Workspace.open(uuid4(), "Acme").collect_events(), *account.collect_events(), *job.collect_events()]


def test_committed_catalogue_when_regenerated_then_nothing_changed() -> None:
    assert msgspec.json.decode(DOCUMENT.read_bytes()) == msgspec.json.decode(msgspec.json.encode(asyncapi()))


def test_every_recorded_event_when_published_then_its_data_has_exactly_the_catalogued_fields() -> None:
    messages = asyncapi()["components"]["messages"]

    for event in recorded_events():
        published = envelope(event)
        schema = messages[published.type]["payload"]["properties"]["data"]
        assert set(published.data) == set(schema["properties"]), published.type
        assert set(schema.get("required", [])) <= set(published.data)


def test_catalogue_when_generated_then_every_event_class_has_a_message_on_its_familys_channel() -> None:
    document = asyncapi()

    assert len(document["components"]["messages"]) == len(event_classes()) >= 20
    assert document["channels"]["jobs"]["address"] == "pressroom.jobs.v1"
    assert {"job.requested", "asset.stored", "idempotency_key.claimed"} <= set(document["channels"]["jobs"]["messages"])
    assert document["asyncapi"] == "3.0.0"
