"""Integration events: the topic and JSON envelope each domain event becomes."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import uuid4

import msgspec
import pytest
from eventsourcing.domain import Aggregate
from eventsourcing.persistence import DatetimeAsISO, JSONTranscoder, UUIDAsHex

from adapters.integration_events import SCHEMA_VERSION, envelope_of, headers_of, topic_for
from application.metadata import MetadataMapper, metadata
from domain.api_key import ApiKey
from domain.credit_account import Charge, CreditAccount
from domain.generation_job import GenerationJob
from domain.idempotency_key import IdempotencyKey
from domain.pricing import Pricing
from domain.workspace import Workspace

NOW = datetime(2025, 3, 15, 9, 30, tzinfo=UTC)
CAMEL = re.compile(r"^[a-z][a-zA-Z0-9]*$")


class Foreign(Aggregate):
    """An aggregate that is not a Pressroom one: it has no topic family."""


def mapper() -> MetadataMapper:
    transcoder = JSONTranscoder()
    transcoder.register(UUIDAsHex())
    transcoder.register(DatetimeAsISO())
    return MetadataMapper(transcoder=transcoder)


def job_requested() -> Any:
    job = GenerationJob.request(uuid4(), uuid4(), "copy", {"product": {"name": "Stride Runner"}}, Charge(1, 1, 0), "fp-1", uuid4(), 3)
    (requested,) = job.collect_events()
    return requested


def credits_debited() -> Any:
    account = CreditAccount.open(uuid4(), "pro", NOW, Pricing(pro=10))
    account.debit(uuid4(), 3, "image")
    *_, debited = account.collect_events()
    return debited


def credits_life() -> list[Any]:
    account = CreditAccount.open(uuid4(), "pro", NOW, Pricing())
    job_id = uuid4()
    charge = account.debit(job_id, 3, "image")
    account.refund(job_id, "image", charge.refund(3), "failed")
    account.adjust(-5, reference="support:1", reason="correction")
    account.change_plan("free", NOW + timedelta(days=1), Pricing())
    account.renew(NOW + timedelta(days=40), Pricing())
    return list(account.collect_events())


def api_key_revoked() -> Any:
    key = ApiKey.issue(uuid4(), "pr_live_secret-secret-secret", "ci")
    key.revoke(revoked_by=uuid4())
    _issued, revoked = key.collect_events()
    return revoked


def workspace_created() -> Any:
    (created,) = Workspace.open(uuid4(), "Acme").collect_events()
    return created


def job_life() -> list[Any]:
    job = GenerationJob.request(uuid4(), uuid4(), "image", {"prompt": "shoe"}, Charge(3, 3, 0), "fp-1", None, 1)
    job.start("worker-1", NOW, NOW + timedelta(minutes=2))
    job.requeue("worker lost")
    second = job.start("worker-2", NOW, NOW + timedelta(minutes=2))
    job.fail(second, "provider_error", "The provider is down.")
    return list(job.collect_events())


def idempotency_claimed() -> Any:
    (claimed,) = IdempotencyKey.claim(uuid4(), "order-42", "fp-1", uuid4(), NOW).collect_events()
    return claimed


@pytest.mark.parametrize(
    ("make", "expected_type", "expected_topic"),
    [
        (job_requested, "job.requested", "pressroom.jobs.v1"),
        (credits_debited, "credits.debited", "pressroom.credits.v1"),
        (api_key_revoked, "api_key.revoked", "pressroom.workspaces.v1"),
        (workspace_created, "workspace.created", "pressroom.workspaces.v1"),
        (idempotency_claimed, "idempotency_key.claimed", "pressroom.jobs.v1"),
    ],
)
def test_domain_event_when_enveloped_then_type_and_topic_are_named_by_its_aggregate(
    make: Any, expected_type: str, expected_topic: str
) -> None:
    topic, envelope = envelope_of(make())

    assert (envelope.type, topic) == (expected_type, expected_topic)


def test_job_events_when_enveloped_then_each_type_is_the_snake_case_event_name() -> None:
    types = [envelope_of(event)[1].type for event in job_life()]

    assert types == ["job.requested", "job.started", "job.requeued", "job.started", "job.failed"]


def test_credit_events_when_enveloped_then_each_type_is_the_snake_case_event_name() -> None:
    types = [envelope_of(event)[1].type for event in credits_life()]

    assert types == [
        "credits.opened",
        "credits.granted",
        "credits.debited",
        "credits.refunded",
        "credits.adjusted",
        "credits.plan_changed",
        "credits.period_reset",
        "credits.granted",
    ]


def test_credit_events_when_enveloped_then_they_go_to_the_credits_topic_with_camel_case_keys() -> None:
    enveloped = [envelope_of(event) for event in credits_life()]

    assert {topic for topic, _ in enveloped} == {"pressroom.credits.v1"}
    assert [key for _, envelope in enveloped for key in envelope.data if not CAMEL.match(key)] == []


def test_job_event_when_enveloped_then_it_goes_to_the_jobs_topic() -> None:
    assert {envelope_of(event)[0] for event in job_life()} == {"pressroom.jobs.v1"}


def test_another_namespace_when_enveloped_then_topic_uses_it() -> None:
    topic, _ = envelope_of(job_requested(), namespace="staging")

    assert topic == "staging.jobs.v1" == topic_for("jobs", "staging")


def test_domain_event_when_enveloped_then_envelope_names_aggregate_version_and_time() -> None:
    event = credits_debited()

    _, envelope = envelope_of(event)

    assert (envelope.aggregate_type, envelope.aggregate_id, envelope.version) == (
        "CreditAccount",
        event.originator_id,
        event.originator_version,
    )
    assert (envelope.occurred_at, envelope.schema_version) == (event.timestamp, SCHEMA_VERSION)


def test_debited_event_when_enveloped_then_data_keys_are_camel_case() -> None:
    event = credits_debited()

    _, envelope = envelope_of(event)

    assert envelope.data == {
        "jobId": str(event.job_id),
        "jobType": "image",
        "amount": 3,
        "fromAllowance": 3,
        "fromTopup": 0,
        "allowanceAfter": 7,
        "topupAfter": 0,
    }


@pytest.mark.parametrize("make", [job_requested, credits_debited, api_key_revoked, workspace_created, idempotency_claimed])
def test_any_event_when_enveloped_then_every_data_key_is_camel_case(make: Any) -> None:
    _, envelope = envelope_of(make())

    assert [key for key in envelope.data if not CAMEL.match(key)] == []


def test_domain_event_when_enveloped_then_data_is_plain_json() -> None:
    event = job_requested()

    _, envelope = envelope_of(event)

    assert msgspec.json.decode(msgspec.json.encode(envelope.data)) == envelope.data
    assert envelope.data["campaignId"] == str(event.campaign_id)


def test_domain_event_when_enveloped_then_envelope_fields_are_not_repeated_in_data() -> None:
    _, envelope = envelope_of(credits_debited())

    assert {"originatorId", "originatorVersion", "timestamp", "workspaceId"}.isdisjoint(envelope.data)


def test_domain_event_when_enveloped_then_workspace_id_is_on_the_envelope() -> None:
    event = job_requested()

    _, envelope = envelope_of(event)

    assert envelope.workspace_id == event.workspace_id


def test_envelope_when_encoded_then_its_keys_are_camel_case_with_workspace_id() -> None:
    event = job_requested()

    _, envelope = envelope_of(event)
    encoded = msgspec.json.decode(msgspec.json.encode(envelope))

    assert set(encoded) == {
        "id",
        "type",
        "aggregateType",
        "aggregateId",
        "version",
        "workspaceId",
        "occurredAt",
        "schemaVersion",
        "data",
    }
    assert encoded["workspaceId"] == str(event.workspace_id)


def test_same_event_when_enveloped_twice_then_envelope_id_is_the_same() -> None:
    event = credits_debited()

    assert envelope_of(event)[1].id == envelope_of(event)[1].id


def test_stored_event_when_read_back_and_enveloped_then_envelope_id_is_the_same() -> None:
    event = credits_debited()
    events = mapper()

    redelivered = events.to_domain_event(events.to_stored_event(event))

    assert envelope_of(redelivered)[1].id == envelope_of(event)[1].id


def test_successive_events_when_enveloped_then_envelope_ids_differ() -> None:
    ids = {envelope_of(event)[1].id for event in job_life()}

    assert len(ids) == 5


def test_event_with_metadata_when_enveloped_then_metadata_is_not_in_data() -> None:
    event = credits_debited()
    with metadata(request_id="req-1", actor="key:abc"):
        mapper().to_stored_event(event)

    _, envelope = envelope_of(event)

    assert "meta" not in envelope.data
    assert "req-1" not in msgspec.json.encode(envelope).decode()


def test_event_with_metadata_when_read_back_and_enveloped_then_metadata_is_not_in_data() -> None:
    event = credits_debited()
    events = mapper()
    with metadata(request_id="req-1"):
        stored = events.to_stored_event(event)

    _, envelope = envelope_of(events.to_domain_event(stored))

    assert "meta" not in envelope.data


def test_event_with_metadata_when_headers_are_made_then_they_carry_it() -> None:
    event = credits_debited()
    with metadata(request_id="req-1", actor="key:abc"):
        mapper().to_stored_event(event)

    assert sorted(headers_of(event)) == [("pressroom-actor", b"key:abc"), ("pressroom-request-id", b"req-1")]


def test_event_without_metadata_when_headers_are_made_then_there_are_none() -> None:
    assert headers_of(credits_debited()) == []


def test_event_of_a_foreign_aggregate_when_enveloped_then_raises_type_error() -> None:
    (created,) = Foreign().collect_events()

    with pytest.raises(TypeError):
        envelope_of(created)


def test_issued_api_key_when_published_carries_neither_its_hash_nor_the_secret() -> None:
    secret = "pr_live_secret-secret-secret"
    (issued,) = ApiKey.issue(uuid4(), secret, "ci").collect_events()

    _, envelope = envelope_of(issued)

    assert set(envelope.data) == {"prefix", "label"}
    assert secret not in msgspec.json.encode(envelope).decode()


def test_created_event_when_published_does_not_leak_the_python_class_path() -> None:
    _, envelope = envelope_of(job_requested())

    assert "originatorTopic" not in envelope.data
    assert b"domain." not in msgspec.json.encode(envelope)
