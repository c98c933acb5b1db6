"""IdempotencyKey: one request per (workspace, key), for 24 hours."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from uuid import uuid4

import pytest

from domain.errors import IdempotencyKeyReused, InvalidState
from domain.idempotency_key import KEY_LIFETIME, IdempotencyKey

NOW = datetime(2025, 3, 15, 9, 30, tzinfo=UTC)


def claimed(fingerprint: str = "fp-1") -> IdempotencyKey:
    key = IdempotencyKey.claim(uuid4(), "order-42", fingerprint, uuid4(), NOW)
    key.collect_events()
    return key


def test_same_workspace_and_key_when_id_is_derived_then_it_is_the_same() -> None:
    workspace_id = uuid4()

    assert IdempotencyKey.id_for(workspace_id, "order-42") == IdempotencyKey.id_for(workspace_id, "order-42")


def test_different_workspaces_when_id_is_derived_for_one_key_then_ids_differ() -> None:
    assert IdempotencyKey.id_for(uuid4(), "order-42") != IdempotencyKey.id_for(uuid4(), "order-42")


def test_different_keys_when_id_is_derived_in_one_workspace_then_ids_differ() -> None:
    workspace_id = uuid4()

    assert IdempotencyKey.id_for(workspace_id, "order-42") != IdempotencyKey.id_for(workspace_id, "order-43")


def test_two_claims_of_one_key_when_made_then_they_name_the_same_aggregate() -> None:
    workspace_id = uuid4()

    first = IdempotencyKey.claim(workspace_id, "order-42", "fp-1", uuid4(), NOW)
    second = IdempotencyKey.claim(workspace_id, "order-42", "fp-2", uuid4(), NOW)

    assert first.id == second.id == IdempotencyKey.id_for(workspace_id, "order-42")


def test_claimed_key_when_replayed_with_same_fingerprint_then_gives_its_job() -> None:
    key = claimed("fp-1")

    assert key.replay("fp-1") == key.job_id


def test_claimed_key_when_replayed_with_different_fingerprint_then_raises_reused() -> None:
    key = claimed("fp-1")

    with pytest.raises(IdempotencyKeyReused):
        key.replay("fp-2")


def test_claimed_key_when_just_claimed_then_it_is_live() -> None:
    assert claimed().is_live(NOW) is True


def test_claimed_key_when_nearly_24_hours_old_then_it_is_live() -> None:
    assert claimed().is_live(NOW + KEY_LIFETIME - timedelta(microseconds=1)) is True


def test_claimed_key_when_24_hours_old_then_it_is_not_live() -> None:
    assert claimed().is_live(NOW + timedelta(hours=24)) is False


def test_claimed_key_when_days_old_then_it_is_not_live() -> None:
    assert claimed().is_live(NOW + timedelta(days=3)) is False


def test_live_key_when_reclaimed_then_raises_invalid_state_and_records_nothing() -> None:
    key = claimed("fp-1")
    job_id = key.job_id

    with pytest.raises(InvalidState):
        key.reclaim("fp-2", uuid4(), NOW + timedelta(hours=23))
    assert key.collect_events() == []
    assert (key.fingerprint, key.job_id) == ("fp-1", job_id)


def test_expired_key_when_reclaimed_then_it_names_the_new_request() -> None:
    key = claimed("fp-1")
    new_job = uuid4()
    later = NOW + timedelta(hours=25)

    key.reclaim("fp-2", new_job, later)

    assert (key.fingerprint, key.job_id, key.claimed_at) == ("fp-2", new_job, later)


def test_reclaimed_key_when_asked_then_it_is_live_again() -> None:
    key = claimed()
    later = NOW + timedelta(hours=25)

    key.reclaim("fp-2", uuid4(), later)

    assert key.is_live(later + timedelta(hours=23)) is True


def test_reclaimed_key_when_replayed_with_old_fingerprint_then_raises_reused() -> None:
    key = claimed("fp-1")
    key.reclaim("fp-2", uuid4(), NOW + timedelta(hours=25))

    with pytest.raises(IdempotencyKeyReused):
        key.replay("fp-1")
