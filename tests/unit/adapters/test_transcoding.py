"""The msgspec transcoder reads every stored event exactly as eventsourcing's JSONTranscoder does, and writes the same bytes."""

from __future__ import annotations

import dataclasses
import math
from datetime import UTC, datetime, timedelta, timezone
from typing import Any, get_args, get_origin, get_type_hints
from uuid import UUID, uuid4

import pytest
from eventsourcing.domain import Snapshot
from eventsourcing.persistence import JSONTranscoder, Mapper, StoredEvent, Transcoder, TranscodingNotRegisteredError
from hypothesis import given
from hypothesis import strategies as st

from application.event_catalogue import event_classes
from application.pressroom import Pressroom
from application.transcoding import MsgspecJSONTranscoder
from domain.credit_account import CreditAccount
from domain.pricing import Pricing
from tests.conftest import ManualClock

NOW = datetime(2026, 3, 15, 9, 30, 12, 345678, tzinfo=UTC)
TEXT = 'Zoë says "hi" \\ ✓\n\t😀'


def transcoders() -> tuple[JSONTranscoder, Transcoder]:
    """The library's transcoder with the application's transcodings, and the one the application uses."""
    app = Pressroom({}, clock=ManualClock(NOW))
    standard = JSONTranscoder()
    app.register_transcodings(standard)
    return standard, app.construct_transcoder()


STANDARD, FAST = transcoders()


def same(a: Any, b: Any) -> bool:
    """Equal, and of the same types all the way down (1 == 1.0 == True, but not for a stored event)."""
    if type(a) is not type(b):
        return False
    if isinstance(a, dict):
        return list(a) == list(b) and all(same(a[k], b[k]) for k in a)
    if isinstance(a, list | tuple):
        return len(a) == len(b) and all(same(x, y) for x, y in zip(a, b, strict=True))
    if isinstance(a, float) and math.isnan(a):
        return math.isnan(b)
    if isinstance(a, datetime):
        return a == b and a.tzinfo == b.tzinfo and a.utcoffset() == b.utcoffset()
    return bool(a == b)


def example(hint: Any) -> Any:
    """A value of a type that event fields have, with the awkward cases in it."""
    if get_origin(hint) is not None and type(None) in get_args(hint):
        return example(next(arg for arg in get_args(hint) if arg is not type(None)))
    if get_origin(hint) is dict:
        return {"count": 3} if get_args(hint)[1] is int else {"product": {"name": TEXT, "price": 12.5, "tags": ["a", None, True]}}
    if get_origin(hint) is list:
        return [TEXT, "b"] if get_args(hint)[0] is str else [{"hook": TEXT, "n": [1, 2.25, None]}]
    if get_origin(hint) is tuple:
        return (uuid4(), uuid4()) if get_args(hint)[0] is UUID else ("job.*", "credits.debited")
    return {bool: True, int: 7, float: 0.1, str: TEXT, UUID: uuid4(), datetime: NOW}.get(hint, uuid4())


def every_event() -> list[Any]:
    events = []
    for _, event_class in event_classes():
        hints = get_type_hints(event_class)
        values = {f.name: example(hints[f.name]) for f in dataclasses.fields(event_class)}
        events.append(event_class(**{**values, "originator_version": 3}))
    return events


def test_application_when_built_then_it_reads_with_msgspec() -> None:
    assert isinstance(FAST, MsgspecJSONTranscoder)


@pytest.mark.parametrize("event", every_event(), ids=lambda event: type(event).__qualname__)
def test_every_event_type_when_stored_then_both_transcoders_read_the_same_event(event: Any) -> None:
    standard, fast = Mapper(transcoder=STANDARD), Mapper(transcoder=FAST)

    stored = standard.to_stored_event(event)

    assert fast.to_stored_event(event) == stored
    assert same(FAST.decode(stored.state), STANDARD.decode(stored.state))
    read, expected = fast.to_domain_event(stored), standard.to_domain_event(stored)
    assert type(read) is type(expected) and same(vars(read), vars(expected))


@pytest.mark.parametrize("event", every_event(), ids=lambda event: type(event).__qualname__)
@pytest.mark.parametrize("meta", [None, {"request_id": "req_1", "actor": "key:7"}])
def test_every_event_type_when_read_by_the_applications_mapper_then_the_same_event_as_the_librarys(event: Any, meta: Any) -> None:
    if meta is not None:
        object.__setattr__(event, "meta", meta)
    stored = Mapper(transcoder=STANDARD).to_stored_event(event)
    application = Pressroom({}, clock=ManualClock(NOW)).mapper

    for _ in range(2):  # the first read of a topic sets up its reader; the second uses it
        read, expected = application.to_domain_event(stored), Mapper(transcoder=STANDARD).to_domain_event(stored)
        assert type(read) is type(expected) and same(vars(read), vars(expected))


@pytest.mark.parametrize(
    "state",
    [
        b'{"timestamp":{"_type_":"datetime_iso","_data_":"2026-01-01T00:00:00+00:00"},"workspace_id":null,"allowance_after":1}',
        b'{"timestamp":"2026-01-01","workspace_id":{"_type_":"uuid_hex","_data_":"3900ff29db9940b59e206962698f112d"}}',
        b'{"timestamp":{"_type_":"decimal_str","_data_":"1.5"},"workspace_id":{"_type_":"uuid_hex","_data_":"3900ff29db9940b59e206962698f112d"}}',
        b'{"timestamp":{"_type_":"datetime_iso","_data_":"2026-01-01T00:00:00"},"workspace_id":{"_type_":"uuid_hex","_data_":"3900FF29-DB99-40B5-9E20-6962698F112D"},'
        b'"allowance_after":1,"topup_after":2,"job_id":{"_type_":"uuid_hex","_data_":"3900ff29db9940b59e206962698f112d"},"job_type":"copy",'
        b'"amount":{"_type_":"uuid_hex","_data_":"3900ff29db9940b59e206962698f112d"},"from_allowance":[{"_type_":"datetime_iso","_data_":"2026-01-01T00:00:00"}],'
        b'"from_topup":0,"extra":1}',
    ],
)
def test_debit_state_of_an_unusual_shape_when_read_by_the_applications_mapper_then_as_the_library_reads_it(state: bytes) -> None:
    stored = StoredEvent(uuid4(), 2, "domain.credit_account:CreditAccount.Debited", state)
    read = Pressroom({}, clock=ManualClock(NOW)).mapper.to_domain_event(stored)
    assert same(vars(read), vars(Mapper(transcoder=STANDARD).to_domain_event(stored)))


def test_account_snapshot_with_a_set_when_stored_then_both_transcoders_read_it_alike() -> None:
    account = CreditAccount.open(uuid4(), "pro", NOW, Pricing())
    account.grant("topup", 40, "order-1")
    account.grant("topup", 10, "order-2")
    charge = account.debit(uuid4(), 3, "image")
    snapshot = Snapshot.take(account)
    standard, fast = Mapper(transcoder=STANDARD), Mapper(transcoder=FAST)

    stored = standard.to_stored_event(snapshot)

    assert fast.to_stored_event(snapshot) == stored
    assert same(FAST.decode(stored.state), STANDARD.decode(stored.state))
    assert same(fast.to_domain_event(stored).state, standard.to_domain_event(stored).state)  # type: ignore[attr-defined]
    assert same(FAST.decode(STANDARD.encode({"charge": charge})), STANDARD.decode(STANDARD.encode({"charge": charge})))


@pytest.mark.parametrize(
    "state",
    [
        b'{"a":{"_type_":"set","_data_":[{"_type_":"uuid_hex","_data_":"3900ff29db9940b59e206962698f112d"}]}}',
        b'{"_type_":"decimal_str","_data_":"1.10"}',
        b'{"a":{"_type_":"uuid_hex","_data_":"3900ff29db9940b59e206962698f112d","extra":1}}',
        b'{"a":{"_type_":"uuid_hex"},"b":{"_data_":"x","y":2},"c":{"_type_":7,"_data_":[1],"d":0}}',
        b'{"a":[[{"_type_":"datetime_iso","_data_":"2026-01-01T00:00:00+05:30"}]],"b":[]}',
        b'{"a":{"_type_":"datetime_iso","_data_":"2026-01-01T00:00:00"},"b":{"_type_":"uuid_hex","_data_":"3900FF29-DB99-40B5-9E20-6962698F112D"}}',
        b'{"big":123456789012345678901234567890,"neg":-0.0,"tiny":5e-324,"e":1e16}',
        b'{"nan":NaN,"inf":Infinity,"huge":1e400}',
        b'{"dup":1,"dup":2}',
        b'[1,{"_type_":"uuid_hex","_data_":"3900ff29db9940b59e206962698f112d"}]',
        b'"just a string"',
        b"  42 ",
        b"null",
        '{"s":"\\ud83d\\ude00 \\u00e9 \\"q\\"","raw":"ü✓"}'.encode(),
    ],
)
def test_awkward_json_when_read_then_both_transcoders_agree(state: bytes) -> None:
    assert same(FAST.decode(state), STANDARD.decode(state))


@pytest.mark.parametrize(
    "state", [b'{"a":1', b'{"a":{"_type_":"unknown","_data_":1}}', b'{"_type_":7,"_data_":"x"}', b"\xff", b'{"s":"\\ud800"}x']
)
def test_bad_state_when_read_then_both_transcoders_raise_alike(state: bytes) -> None:
    with pytest.raises(Exception) as standard:
        STANDARD.decode(state)
    with pytest.raises(Exception) as fast:
        FAST.decode(state)

    assert type(fast.value) is type(standard.value)


def test_unregistered_type_when_read_then_transcoding_not_registered_is_raised() -> None:
    with pytest.raises(TranscodingNotRegisteredError):
        FAST.decode(b'{"a":{"_type_":"unknown","_data_":"x"}}')


json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False)
    | st.text()
    | st.uuids()
    | st.decimals(allow_nan=False, allow_infinity=False)
    | st.datetimes(timezones=st.sampled_from([None, UTC, timezone(timedelta(hours=-3, minutes=-30))]))
    | st.sets(st.integers(), max_size=3),
    lambda inner: st.lists(inner, max_size=4) | st.tuples(inner, inner) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
    max_leaves=12,
)


@given(st.dictionaries(st.text(max_size=8), json_values, max_size=6))
def test_any_state_when_stored_then_both_transcoders_write_the_same_bytes_and_read_the_same_values(state: dict[str, Any]) -> None:
    stored = STANDARD.encode(state)

    assert FAST.encode(state) == stored
    assert same(FAST.decode(stored), STANDARD.decode(stored))


@given(st.uuids())
def test_any_uuid_when_read_then_it_is_the_uuid_the_library_reads(value: UUID) -> None:
    stored = STANDARD.encode({"id": value, "ids": [value, value]})

    assert same(FAST.decode(stored), STANDARD.decode(stored))
