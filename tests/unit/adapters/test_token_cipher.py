"""TokenCipher: AES-256-GCM sealing of provider tokens, key ids for rotation, tampering refused."""

from __future__ import annotations

import base64
import os

import pytest
from hypothesis import given
from hypothesis import strategies as st

from adapters.token_cipher import SealedTokenError, TamperedToken, TokenCipher, UnknownTokenKey, derive_key

KEY = base64.b64encode(bytes(range(32))).decode()
OTHER_KEY = base64.b64encode(bytes(range(32, 64))).decode()
TOKEN = "ya29.a0AfH6SMBx-clear-access-token-0123456789abcdef"


def test_a_dict_of_secrets_when_sealed_and_opened_then_it_comes_back_equal() -> None:
    cipher = TokenCipher(KEY)

    assert cipher.open(cipher.seal({"access_token": TOKEN, "refresh_token": "r-1"})) == {"access_token": TOKEN, "refresh_token": "r-1"}


@given(st.dictionaries(st.text(max_size=20), st.text(max_size=200), max_size=6))
def test_any_dict_of_strings_when_sealed_and_opened_then_it_round_trips(secrets: dict[str, str]) -> None:
    cipher = TokenCipher(KEY)

    assert cipher.open(cipher.seal(secrets)) == secrets


def test_a_token_when_sealed_then_the_output_holds_neither_it_nor_its_base64() -> None:
    sealed = TokenCipher(KEY).seal({"access_token": TOKEN})

    assert TOKEN not in sealed
    assert "clear-access-token" not in sealed
    assert base64.urlsafe_b64encode(TOKEN.encode()).decode()[:16] not in sealed
    assert base64.b64encode(TOKEN.encode()).decode()[:16] not in sealed


def test_the_same_secrets_when_sealed_twice_then_the_outputs_differ() -> None:
    cipher = TokenCipher(KEY)

    assert cipher.seal({"access_token": TOKEN}) != cipher.seal({"access_token": TOKEN})


def test_a_sealed_value_when_one_character_of_its_body_changes_then_opening_raises_tampered() -> None:
    cipher = TokenCipher(KEY)
    sealed = cipher.seal({"access_token": TOKEN})
    position = len(sealed) - 10
    flipped = sealed[:position] + ("A" if sealed[position] != "A" else "B") + sealed[position + 1 :]

    with pytest.raises(TamperedToken):
        cipher.open(flipped)


@pytest.mark.parametrize("garbage", ["", "v1", "v1..", "v2.abcd1234.AAAA", "plain-token", "v1.{kid}.!!!!", "v1.{kid}.AAAA"])
def test_text_that_is_no_sealed_value_when_opened_then_it_raises_a_sealed_token_error(garbage: str) -> None:
    cipher = TokenCipher(KEY)

    with pytest.raises(SealedTokenError):
        cipher.open(garbage.format(kid=cipher.key_id))


def test_a_value_sealed_for_one_context_when_opened_for_another_then_it_raises_tampered() -> None:
    cipher = TokenCipher(KEY)
    sealed = cipher.seal({"access_token": TOKEN}, context="connection-1")

    assert cipher.open(sealed, context="connection-1") == {"access_token": TOKEN}
    with pytest.raises(TamperedToken):
        cipher.open(sealed, context="connection-2")


def test_a_value_sealed_with_one_key_when_opened_with_another_then_it_is_refused() -> None:
    sealed = TokenCipher(KEY).seal({"access_token": TOKEN})

    with pytest.raises(UnknownTokenKey):
        TokenCipher(OTHER_KEY).open(sealed)


def test_a_key_id_swapped_into_a_sealed_value_when_opened_then_it_raises_tampered() -> None:
    old, new = TokenCipher(OTHER_KEY), TokenCipher(KEY, old_keys=[OTHER_KEY])
    sealed = old.seal({"access_token": TOKEN})
    relabelled = sealed.replace(old.key_id, new.key_id, 1)

    with pytest.raises(TamperedToken):
        new.open(relabelled)


def test_a_value_sealed_with_the_old_key_when_the_key_rotates_then_it_opens_and_new_seals_use_the_new_key() -> None:
    before = TokenCipher(OTHER_KEY)
    sealed_before = before.seal({"refresh_token": "r-old"})
    after = TokenCipher(KEY, old_keys=[OTHER_KEY])

    assert after.open(sealed_before) == {"refresh_token": "r-old"}
    sealed_after = after.seal({"refresh_token": "r-new"})
    assert sealed_after.split(".")[1] == after.key_id != before.key_id
    assert TokenCipher(KEY).open(sealed_after) == {"refresh_token": "r-new"}
    with pytest.raises(UnknownTokenKey):
        before.open(sealed_after)


def test_key_material_when_raw_base64_or_text_then_raw_keys_are_used_as_is_and_text_goes_through_hkdf() -> None:
    raw = os.urandom(32)

    assert derive_key(raw) == raw
    assert derive_key(base64.b64encode(raw).decode()) == raw
    assert derive_key(base64.urlsafe_b64encode(raw).decode().rstrip("=")) == raw
    derived = derive_key("test-secret-key")
    assert len(derived) == 32
    assert derived == derive_key(b"test-secret-key") != derive_key("another-secret")


def test_configuration_when_no_token_key_then_the_secret_key_derives_it_and_a_token_key_wins_when_set() -> None:
    from_secret = TokenCipher.from_config(None, "test-secret-key")
    sealed = from_secret.seal({"access_token": TOKEN})

    assert TokenCipher("test-secret-key").open(sealed) == {"access_token": TOKEN}
    assert TokenCipher.from_config(KEY, "test-secret-key").key_id == TokenCipher(KEY).key_id
    migrated = TokenCipher.from_config(KEY, "test-secret-key", old_keys=["test-secret-key"])
    assert migrated.open(sealed) == {"access_token": TOKEN}
    with pytest.raises(ValueError, match="PRESSROOM_TOKEN_KEY"):
        TokenCipher.from_config(None, None)
