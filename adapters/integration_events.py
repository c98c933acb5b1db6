"""Integration events on Kafka: topic names per family, around the envelope of application.integration_events."""

from __future__ import annotations

from typing import Any

from application.integration_events import SCHEMA_VERSION, Envelope, envelope, family_of
from application.metadata import event_metadata

FAMILIES = ("workspaces", "credits", "jobs", "campaigns", "connections", "posts")
__all__ = ["SCHEMA_VERSION", "Envelope", "all_topics", "dead_letter_topic", "envelope_of", "headers_of", "topic_for"]


def topic_for(family: str, namespace: str = "pressroom") -> str:
    """`pressroom.jobs.v1`; another namespace lets several Pressrooms share one Kafka cluster."""
    return f"{namespace}.{family}.v1"


def dead_letter_topic(namespace: str = "pressroom") -> str:
    return topic_for("deadletter", namespace)


def all_topics(namespace: str = "pressroom") -> list[str]:
    return [*(topic_for(family, namespace) for family in FAMILIES), dead_letter_topic(namespace)]


def envelope_of(event: Any, namespace: str = "pressroom") -> tuple[str, Envelope]:
    """The Kafka topic and envelope for a domain event; the id is stable across redeliveries."""
    return topic_for(family_of(event), namespace), envelope(event)


def headers_of(event: Any) -> list[tuple[str, bytes]]:
    return [(f"pressroom-{k.replace('_', '-')}", v.encode()) for k, v in event_metadata(event).items()]
