"""The published catalogue of integration events: every event type with its JSON Schema and an
example, as an AsyncAPI 3 document generated from the event classes themselves."""

from __future__ import annotations

import dataclasses
from typing import Any, get_type_hints
from uuid import UUID

import msgspec

from application.integration_events import ENVELOPE_FIELDS, PRIVATE_FIELDS, SCHEMA_VERSION, Envelope, snake
from domain.api_key import ApiKey
from domain.asset import Asset
from domain.base import WorkspaceAggregate
from domain.campaign import Campaign
from domain.connection import Connection
from domain.credit_account import CreditAccount
from domain.generation_job import GenerationJob
from domain.idempotency_key import IdempotencyKey
from domain.post import Post
from domain.run import Run
from domain.webhook import Webhook
from domain.workspace import Workspace

AGGREGATES: tuple[type[WorkspaceAggregate], ...] = (
    Workspace,
    ApiKey,
    CreditAccount,
    GenerationJob,
    IdempotencyKey,
    Asset,
    Webhook,
    Connection,
    Post,
    Run,
    Campaign,
)
# Bases that are never recorded themselves.
_ABSTRACT = {WorkspaceAggregate.Event, WorkspaceAggregate.Created, CreditAccount.BalanceChanged, GenerationJob.Ended}
_EXAMPLE_ID = UUID("00000000-0000-4000-8000-000000000001")


def event_classes() -> list[tuple[type[WorkspaceAggregate], type[Any]]]:
    """Each aggregate's recorded event classes (not the `Event` and `Created` bases the library adds)."""
    found = []
    for aggregate in AGGREGATES:
        own = {
            name: value
            for name, value in vars(aggregate).items()
            if isinstance(value, type) and issubclass(value, WorkspaceAggregate.Event)
        }
        creations = [value for value in own.values() if issubclass(value, WorkspaceAggregate.Created)]
        for name, value in own.items():
            library_base = name == "Event" or (name == "Created" and len(creations) > 1)
            if value not in _ABSTRACT and not library_base:
                found.append((aggregate, value))
    return found


def type_name(aggregate: type[WorkspaceAggregate], event_class: type[Any]) -> str:
    return f"{aggregate.EVENT_PREFIX}.{snake(event_class.__name__)}"


def event_types() -> set[str]:
    """Every integration event type, and each prefix's `prefix.*`."""
    types = {type_name(aggregate, event_class) for aggregate, event_class in event_classes()}
    return types | {f"{aggregate.EVENT_PREFIX}.*" for aggregate in AGGREGATES}


def _data_fields(event_class: type[Any]) -> list[dataclasses.Field[Any]]:
    return [f for f in dataclasses.fields(event_class) if f.name not in ENVELOPE_FIELDS | PRIVATE_FIELDS | {"originator_topic"}]


def data_schema(event_class: type[Any]) -> dict[str, Any]:
    """The JSON Schema of an event's `data`: its own fields, camelCase."""
    hints = get_type_hints(event_class)
    data = msgspec.defstruct("Data", [(f.name, hints[f.name]) for f in _data_fields(event_class)], rename="camel", kw_only=True)
    _, components = msgspec.json.schema_components([data], ref_template="#/components/schemas/{name}")
    return {**components["Data"], "title": event_class.__name__}


def _example_value(schema: dict[str, Any]) -> Any:
    options = schema.get("anyOf") or [schema]
    first = next((o for o in options if o.get("type") != "null"), options[0])
    kind, fmt = first.get("type"), first.get("format")
    return {
        ("string", "uuid"): str(_EXAMPLE_ID),
        ("string", "date-time"): "2026-01-01T00:00:00Z",
        ("string", None): "text",
        ("integer", None): 1,
        ("number", None): 1.5,
        ("boolean", None): True,
        ("array", None): [],
        ("object", None): {},
    }.get((kind, fmt))


def message(aggregate: type[WorkspaceAggregate], event_class: type[Any]) -> dict[str, Any]:
    schema = data_schema(event_class)
    name = type_name(aggregate, event_class)
    example = {
        "id": str(_EXAMPLE_ID),
        "type": name,
        "aggregateType": aggregate.__name__,
        "aggregateId": str(_EXAMPLE_ID),
        "version": 1,
        "workspaceId": str(_EXAMPLE_ID),
        "occurredAt": "2026-01-01T00:00:00Z",
        "schemaVersion": SCHEMA_VERSION,
        "data": {key: _example_value(value) for key, value in schema.get("properties", {}).items()},
    }
    envelope_schema = msgspec.json.schema(Envelope)["$defs"]["Envelope"]
    return {
        "name": name,
        "title": f"{aggregate.__name__}.{event_class.__name__}",
        "contentType": "application/json",
        "payload": {**envelope_schema, "properties": {**envelope_schema["properties"], "type": {"const": name}, "data": schema}},
        "examples": [{"name": name, "payload": example}],
    }


def asyncapi(namespace: str = "pressroom") -> dict[str, Any]:
    """The AsyncAPI 3 document of every integration event, per Kafka topic (webhooks carry the same envelope)."""
    channels: dict[str, Any] = {}
    operations: dict[str, Any] = {}
    messages: dict[str, Any] = {}
    for aggregate, event_class in event_classes():
        name = type_name(aggregate, event_class)
        messages[name] = message(aggregate, event_class)
        channel = channels.setdefault(
            aggregate.FAMILY,
            {
                "address": f"{namespace}.{aggregate.FAMILY}.v1",
                "description": "Keyed by aggregate id: one aggregate's events stay in order.",
                "messages": {},
            },
        )
        channel["messages"][name] = {"$ref": f"#/components/messages/{name}"}
    for family, channel in channels.items():
        operations[f"receive-{family}"] = {
            "action": "receive",
            "channel": {"$ref": f"#/channels/{family}"},
            "messages": [{"$ref": f"#/channels/{family}/messages/{name}"} for name in channel["messages"]],
        }
    return {
        "asyncapi": "3.0.0",
        "info": {
            "title": "Pressroom integration events",
            "version": f"{SCHEMA_VERSION}.0.0",
            "description": "Every change in Pressroom, as the envelope subscribers receive on Kafka and in webhooks. "
            "Delivery is at least once: dedupe by the envelope `id`.",
        },
        "channels": channels,
        "operations": operations,
        "components": {"messages": messages},
    }
