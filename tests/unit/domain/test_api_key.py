"""ApiKey: id and prefix follow from the secret; a key is revoked once, and never by itself."""

from __future__ import annotations

from uuid import uuid4

import pytest

from domain.api_key import SECRET_PREFIX, ApiKey, hash_secret
from domain.errors import InvalidState

SECRET = SECRET_PREFIX + "Zk3vQ9xLm2pR8tYw4bNc7dFg1hJs5aEu6iOo0qWe-Tr"


def issued(secret: str = SECRET) -> ApiKey:
    key = ApiKey.issue(uuid4(), secret, "ci")
    key.collect_events()
    return key


def test_secret_when_id_is_derived_then_it_is_always_the_same() -> None:
    assert ApiKey.id_for(SECRET) == ApiKey.id_for(SECRET)


def test_different_secrets_when_ids_are_derived_then_they_differ() -> None:
    assert ApiKey.id_for(SECRET) != ApiKey.id_for(SECRET + "x")


def test_secret_when_issued_then_key_id_follows_from_it() -> None:
    assert issued(SECRET).id == ApiKey.id_for(SECRET)


def test_secret_when_issued_then_prefix_is_pr_live_and_six_characters() -> None:
    key = issued(SECRET)

    assert key.prefix == "pr_live_Zk3vQ9"
    assert len(key.prefix) == len("pr_live_") + 6


def test_secret_when_issued_then_only_its_hash_is_kept() -> None:
    key = issued(SECRET)

    assert key.secret_hash == hash_secret(SECRET)
    assert SECRET not in vars(key).values()


def test_secret_when_issued_then_event_does_not_carry_it() -> None:
    key = ApiKey.issue(uuid4(), SECRET, "ci")

    (event,) = key.collect_events()
    assert SECRET not in vars(event).values()


def test_issued_key_when_matched_with_its_secret_then_matches() -> None:
    assert issued(SECRET).matches(SECRET) is True


def test_issued_key_when_matched_with_another_secret_then_does_not_match() -> None:
    assert issued(SECRET).matches(SECRET[:-1]) is False


def test_issued_key_when_looked_at_then_it_is_not_revoked() -> None:
    assert issued().is_revoked is False


def test_issued_key_when_revoked_by_another_key_then_it_is_revoked() -> None:
    key = issued()

    key.revoke(revoked_by=uuid4())

    assert key.is_revoked is True
    assert key.revoked_at is not None


def test_issued_key_when_revoked_by_itself_then_raises_invalid_state_and_records_nothing() -> None:
    key = issued()

    with pytest.raises(InvalidState):
        key.revoke(revoked_by=key.id)
    assert (key.collect_events(), key.is_revoked) == ([], False)


def test_issued_key_when_revoked_twice_then_one_event_is_recorded() -> None:
    key = issued()

    key.revoke(revoked_by=uuid4())
    key.revoke(revoked_by=uuid4())

    assert [type(event) for event in key.collect_events()] == [ApiKey.Revoked]


def test_revoked_key_when_revoked_again_then_revoked_at_is_unchanged() -> None:
    key = issued()
    key.revoke(revoked_by=uuid4())
    revoked_at = key.revoked_at

    key.revoke(revoked_by=uuid4())

    assert key.revoked_at == revoked_at
