"""Schedule envelopes: parsing, local times around DST changes, and plans that name every problem."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import UUID, uuid4
from zoneinfo import ZoneInfo

import msgspec
import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from domain.errors import InvalidTime, ScheduleInvalid
from domain.schedule import (
    MAX_POSTS,
    AccountRef,
    AssetRef,
    Envelope,
    Plan,
    index_accounts,
    parse_envelope,
    plan,
    resolve_local_time,
)

NOW = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
NY = "America/New_York"

ALICE = AccountRef(id=uuid4(), provider="bluesky", handle="bluesky:alice", status="connected")
BOB = AccountRef(id=uuid4(), provider="x", handle="x:@bob", status="connected")
CAROL = AccountRef(id=uuid4(), provider="mastodon", handle="mastodon:carol", status="reconnect_required")
DAN = AccountRef(id=uuid4(), provider="telegram", handle="telegram:dan", status="connected")
ERIN = AccountRef(id=uuid4(), provider="youtube", handle="youtube:erin", status="connected")
ACCOUNTS = index_accounts([ALICE, BOB, CAROL, DAN, ERIN])

PNG = AssetRef(id=uuid4(), mime="image/png")
MP4 = AssetRef(id=uuid4(), mime="video/mp4")
ASSETS = {str(asset.id): asset for asset in (PNG, MP4)}


def parse(body: Mapping[str, Any]) -> Envelope:
    return parse_envelope(msgspec.json.encode(body))


def planned(body: Mapping[str, Any], now: datetime = NOW) -> Plan:
    return plan(parse(body), now=now, accounts=ACCOUNTS, assets=ASSETS)


def problems(body: Mapping[str, Any], now: datetime = NOW) -> list[dict[str, str]]:
    with pytest.raises(ScheduleInvalid) as raised:
        planned(body, now)
    return raised.value.errors


def parse_problems(raw: bytes) -> list[dict[str, str]]:
    with pytest.raises(ScheduleInvalid) as raised:
        parse_envelope(raw)
    return raised.value.errors


def paths(found: list[dict[str, str]]) -> list[str]:
    return [problem["path"] for problem in found]


def post(account: str = "bluesky:alice", text: str = "Hello", **fields: Any) -> dict[str, Any]:
    return {"account": account, "text": text, **fields}


def utc(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


# Local times around New York's DST changes


@pytest.mark.parametrize(
    ("local", "expected"),
    [
        ("2026-03-08T01:30", "2026-03-08T06:30:00Z"),  # before spring forward: EST, -05:00
        ("2026-03-08T03:30", "2026-03-08T07:30:00Z"),  # after: EDT, -04:00
        ("2026-03-08T03:00", "2026-03-08T07:00:00Z"),  # the first minute after the gap
        ("2026-11-01T00:30", "2026-11-01T04:30:00Z"),  # before fall back: EDT
        ("2026-11-01T02:30", "2026-11-01T07:30:00Z"),  # after: EST
        ("2026-11-01T02:00", "2026-11-01T07:00:00Z"),  # the first minute after the repeated hour
    ],
)
def test_new_york_local_time_when_either_side_of_a_dst_change_then_resolves_to_its_instant(local: str, expected: str) -> None:
    assert resolve_local_time(local, NY).utc == utc(expected)


def test_new_york_local_time_when_in_the_skipped_hour_then_refused_naming_the_jump() -> None:
    with pytest.raises(InvalidTime) as raised:
        resolve_local_time("2026-03-08T02:30", NY)

    assert raised.value.detail == ("2026-03-08T02:30 does not exist in America/New_York: clocks jump from 02:00 to 03:00; give an offset")


def test_new_york_local_time_when_in_the_repeated_hour_then_refused_naming_both_instants() -> None:
    with pytest.raises(InvalidTime) as raised:
        resolve_local_time("2026-11-01T01:30", NY)

    assert raised.value.detail == (
        "2026-11-01T01:30 is ambiguous in America/New_York: it happens twice, at 2026-11-01T05:30:00Z (-04:00) "
        "and 2026-11-01T06:30:00Z (-05:00); give an offset -04:00 or -05:00"
    )


@pytest.mark.parametrize(("offset", "expected"), [("-04:00", "2026-11-01T05:30:00Z"), ("-05:00", "2026-11-01T06:30:00Z")])
def test_repeated_hour_when_given_with_an_offset_then_resolves_to_that_occurrence(offset: str, expected: str) -> None:
    resolved = resolve_local_time(f"2026-11-01T01:30:00{offset}", NY)

    assert resolved.utc == utc(expected)
    assert resolved.local == f"2026-11-01T01:30:00{offset}"
    assert resolved.zone == NY


def test_skipped_hour_when_given_with_an_offset_then_resolves_to_that_instant() -> None:
    assert resolve_local_time("2026-03-08T02:30:00-05:00", NY).utc == utc("2026-03-08T07:30:00Z")


def test_half_hour_dst_zone_when_in_its_gap_then_refused_naming_the_half_hour_jump() -> None:
    with pytest.raises(InvalidTime, match="clocks jump from 02:00 to 02:30"):
        resolve_local_time("2026-10-04T02:15", "Australia/Lord_Howe")


def test_time_with_z_when_resolved_in_a_zone_then_it_is_that_instant_shown_in_the_zone() -> None:
    resolved = resolve_local_time("2026-06-01T18:00:00Z", NY)

    assert resolved.utc == utc("2026-06-01T18:00:00Z")
    assert resolved.local == "2026-06-01T14:00:00-04:00"


def test_time_with_offset_when_resolved_in_another_zone_then_the_offset_wins() -> None:
    assert resolve_local_time("2026-06-01T14:00:00+05:30", NY).utc == utc("2026-06-01T08:30:00Z")


def test_time_with_nanoseconds_when_resolved_then_keeps_microseconds() -> None:
    assert resolve_local_time("2026-06-01T14:00:00.123456789Z", "UTC").utc == datetime(2026, 6, 1, 14, 0, 0, 123456, tzinfo=UTC)


@pytest.mark.parametrize("text", ["tomorrow", "2026-06-01", "2026-06-01T14", "2026-13-01T00:00", "2026-06-01T14:00+5", "1780000000"])
def test_malformed_time_when_resolved_then_refused(text: str) -> None:
    with pytest.raises(InvalidTime):
        resolve_local_time(text, "UTC")


@pytest.mark.parametrize("zone", ["Mars/Olympus_Mons", "utc", "", "../../etc/passwd", "/etc/localtime", "localtime"])
def test_unknown_zone_when_resolving_then_refused(zone: str) -> None:
    with pytest.raises(InvalidTime, match="not an IANA time zone"):
        resolve_local_time("2026-06-01T14:00", zone)


ZONES = ["UTC", NY, "Europe/London", "Australia/Lord_Howe", "Asia/Kolkata", "America/Sao_Paulo", "Pacific/Chatham"]


@given(
    instant=st.datetimes(min_value=datetime(1990, 1, 1), max_value=datetime(2037, 12, 31), timezones=st.just(UTC)),
    zone=st.sampled_from(ZONES),
)
@example(instant=datetime(2026, 11, 1, 5, 30, tzinfo=UTC), zone=NY)  # the first 01:30 of the repeated hour
@example(instant=datetime(2026, 3, 8, 7, 0, tzinfo=UTC), zone=NY)  # 03:00, just after the skipped hour
def test_any_instant_when_written_as_local_wall_time_then_resolves_back_or_is_refused_as_ambiguous(instant: datetime, zone: str) -> None:
    wall = instant.astimezone(ZoneInfo(zone))
    naive = wall.replace(tzinfo=None)
    other = naive.replace(tzinfo=ZoneInfo(zone), fold=1 - wall.fold)

    if other.utcoffset() != wall.utcoffset() and other.astimezone(UTC).astimezone(ZoneInfo(zone)).replace(tzinfo=None) == naive:
        with pytest.raises(InvalidTime, match="ambiguous"):
            resolve_local_time(naive.isoformat(), zone)
    else:
        assert resolve_local_time(naive.isoformat(), zone).utc == instant
    assert resolve_local_time(wall.isoformat(), zone).utc == instant


# Parsing envelopes


def test_envelope_when_timezone_and_mode_left_out_then_utc_and_scheduled() -> None:
    envelope = parse({"posts": [post()]})

    assert (envelope.timezone, envelope.mode, envelope.idempotency_key) == ("UTC", "scheduled", None)


def test_envelope_when_wrapped_in_schedule_then_reads_the_same_as_bare() -> None:
    body = {"timezone": NY, "mode": "draft", "idempotencyKey": "launch-1", "posts": [post(publishAt="2026-06-01T09:00")]}

    assert parse({"schedule": body}) == parse(body)


def test_wrapped_envelope_when_fields_sit_beside_schedule_then_refused_naming_them() -> None:
    found = parse_problems(msgspec.json.encode({"schedule": {"posts": [post()]}, "timezone": NY}))

    assert paths(found) == ["timezone"]


def test_wrapped_envelope_when_invalid_inside_then_the_path_is_relative_to_the_envelope() -> None:
    found = parse_problems(msgspec.json.encode({"schedule": {"posts": [post(text="")]}}))

    assert paths(found) == ["posts[0].text"]


@pytest.mark.parametrize(
    ("body", "path"),
    [
        ({"posts": [post()], "bogus": 1}, "bogus"),
        ({"posts": [post(bogus=1)]}, "posts[0].bogus"),
        ({"posts": [post(publish_at="2026-06-01T09:00")]}, "posts[0].publish_at"),
        (
            {
                "campaigns": [
                    {"name": "c", "targets": [{"account": "x:@bob", "publishAt": "2026-06-01T09:00", "steps": [{"text": "a", "x": 1}]}]}
                ]
            },
            "campaigns[0].targets[0].steps[0].x",
        ),
    ],
)
def test_envelope_when_it_has_an_unknown_field_then_refused_at_its_path(body: dict[str, Any], path: str) -> None:
    found = parse_problems(msgspec.json.encode(body))

    assert paths(found) == [path]
    assert "unknown field" in found[0]["message"]


@pytest.mark.parametrize(
    ("body", "path"),
    [
        ({"posts": [{"account": "x:@bob"}]}, "posts[0].text"),
        ({"posts": [post(text="")]}, "posts[0].text"),
        ({"posts": [post(text="a" * 100_001)]}, "posts[0].text"),
        ({"posts": [post(assets=["https://e.com/a.png"] * 11)]}, "posts[0].assets"),
        ({"posts": [post(campaignId="not-a-uuid")]}, "posts[0].campaignId"),
        ({"posts": []}, "posts"),
        ({"posts": [post()], "mode": "later"}, "mode"),
        ({"posts": [post()], "idempotencyKey": ""}, "idempotencyKey"),
        ({"posts": [post()], "idempotencyKey": "k" * 201}, "idempotencyKey"),
        (
            {
                "campaigns": [
                    {
                        "name": "c",
                        "targets": [{"account": "x:@bob", "publishAt": "2026-06-01T09:00", "steps": [{"text": "a", "delayMinutes": -1}]}],
                    }
                ]
            },
            "campaigns[0].targets[0].steps[0].delayMinutes",
        ),
        ({"campaigns": [{"name": "c", "targets": [{"account": "x:@bob", "steps": [{"text": "a"}]}]}]}, "campaigns[0].targets[0].publishAt"),
        ({"campaigns": [{"name": "c", "targets": []}]}, "campaigns[0].targets"),
    ],
)
def test_malformed_envelope_when_parsed_then_refused_at_the_path(body: dict[str, Any], path: str) -> None:
    assert paths(parse_problems(msgspec.json.encode(body))) == [path]


def test_envelope_when_both_posts_and_campaigns_then_refused() -> None:
    campaign = {"name": "c", "targets": [{"account": "x:@bob", "publishAt": "2026-06-01T09:00", "steps": [{"text": "a"}]}]}

    assert paths(parse_problems(msgspec.json.encode({"posts": [post()], "campaigns": [campaign]}))) == ["campaigns"]


def test_envelope_when_neither_posts_nor_campaigns_then_refused() -> None:
    assert paths(parse_problems(b'{"timezone": "UTC"}')) == ["posts"]


@pytest.mark.parametrize("raw", [b"{", b"[]", b'"posts"', b""])
def test_body_when_not_a_json_object_then_refused_at_the_root(raw: bytes) -> None:
    assert paths(parse_problems(raw)) == [""]


def test_schedule_invalid_when_raised_then_it_is_a_validation_error_listing_the_problems() -> None:
    error = ScheduleInvalid([{"path": "posts[0].text", "message": "too long"}])

    assert error.code == "validation_error"
    assert error.extra() == {"errors": [{"path": "posts[0].text", "message": "too long"}]}


# Planning posts


def test_posts_when_planned_then_each_resolves_its_account_provider_and_time() -> None:
    result = planned({"timezone": NY, "idempotencyKey": "k-1", "posts": [post(publishAt="2026-06-01T09:00", name="Launch")]})

    assert (result.timezone, result.mode, result.source_model, result.idempotency_key) == (NY, "scheduled", "posts_v1", "k-1")
    [only] = result.posts
    assert (only.account_id, only.handle, only.provider, only.text, only.name, only.path) == (
        ALICE.id,
        "bluesky:alice",
        "bluesky",
        "Hello",
        "Launch",
        "posts[0]",
    )
    assert only.publish_at.utc == utc("2026-06-01T13:00:00Z")
    assert (only.publish_at.local, only.publish_at.zone) == ("2026-06-01T09:00:00-04:00", NY)


def test_posts_when_no_timezone_given_then_local_times_are_read_in_utc() -> None:
    [only] = planned({"posts": [post(publishAt="2026-06-01T09:00")]}).posts

    assert only.publish_at.utc == utc("2026-06-01T09:00:00Z")
    assert only.publish_at.zone == "UTC"


def test_post_when_no_publish_at_then_it_publishes_now() -> None:
    [only] = planned({"timezone": NY, "posts": [post()]}).posts

    assert only.publish_at.utc == NOW
    assert only.publish_at.zone == NY


@pytest.mark.parametrize("account", [str(BOB.id), str(BOB.id).upper(), "x:@bob", "X:@Bob"])
def test_account_when_named_by_id_or_handle_then_found(account: str) -> None:
    [only] = planned({"posts": [post(account=account)]}).posts

    assert only.account_id == BOB.id


def test_assets_when_ids_and_urls_then_kept_in_order_in_canonical_form() -> None:
    [only] = planned({"posts": [post(account="x:@bob", assets=[str(PNG.id).upper(), "https://cdn.example/a/b.JPG?v=1"])]}).posts

    assert only.assets == (str(PNG.id), "https://cdn.example/a/b.JPG?v=1")


def test_post_when_campaign_id_given_then_kept() -> None:
    campaign_id = uuid4()

    [only] = planned({"posts": [post(campaignId=str(campaign_id))]}).posts

    assert only.campaign_id == campaign_id


def test_posts_when_planned_then_sorted_by_time_with_ties_in_envelope_order() -> None:
    body = {
        "posts": [
            post(text="third", publishAt="2026-06-01T11:00Z"),
            post(text="first", publishAt="2026-06-01T09:00Z"),
            post(text="second-a", publishAt="2026-06-01T10:00Z"),
            post(text="second-b", publishAt="2026-06-01T06:00-04:00"),
        ]
    }

    assert [p.text for p in planned(body).posts] == ["first", "second-a", "second-b", "third"]


@pytest.mark.parametrize(
    ("body", "path", "message"),
    [
        ({"posts": [post(account="bluesky:nobody")]}, "posts[0].account", "Unknown account 'bluesky:nobody'"),
        ({"posts": [post(account=str(uuid4()))]}, "posts[0].account", "Unknown account"),
        ({"posts": [post(account="mastodon:carol")]}, "posts[0].account", "mastodon:carol is reconnect_required, not connected"),
        ({"posts": [post(text="a" * 301)]}, "posts[0].text", "301 graphemes; Bluesky allows 300"),
        ({"posts": [post(account="x:@bob", text="a" * 281)]}, "posts[0].text", "281 characters; X allows 280"),
        (
            {"posts": [post(account="telegram:dan", text="a" * 1025, assets=[str(PNG.id)])]},
            "posts[0].text",
            "1025 characters; Telegram allows 1024 in a caption with media",
        ),
        ({"posts": [post(assets=[str(MP4.id)])]}, "posts[0].assets[0]", "Bluesky does not take video/mp4"),
        ({"posts": [post(account="x:@bob", assets=[str(PNG.id)] * 5)]}, "posts[0].assets", "5 media; X takes at most 4"),
        ({"posts": [post(account="youtube:erin")]}, "posts[0].assets", "YouTube needs a video (video/mp4)"),
        ({"posts": [post(account="youtube:erin", assets=[str(PNG.id)])]}, "posts[0].assets[0]", "YouTube does not take image/png"),
        ({"posts": [post(assets=[str(uuid4())])]}, "posts[0].assets[0]", "Unknown asset"),
        ({"posts": [post(assets=["ftp://example.com/a.png"])]}, "posts[0].assets[0]", "Not an asset id or an http(s) URL"),
        ({"posts": [post(assets=["https://example.com/picture"])]}, "posts[0].assets[0]", "Cannot tell this URL's media type"),
        ({"posts": [post(publishAt="2026-02-28T12:00Z")]}, "posts[0].publishAt", "is in the past"),
        ({"posts": [post(publishAt="soon")]}, "posts[0].publishAt", "not an RFC 3339 date and time"),
        ({"timezone": NY, "posts": [post(publishAt="2026-03-08T02:30")]}, "posts[0].publishAt", "does not exist in America/New_York"),
        ({"timezone": NY, "posts": [post(publishAt="2026-11-01T01:30")]}, "posts[0].publishAt", "ambiguous"),
        ({"timezone": "Mars/Base", "posts": [post()]}, "timezone", "not an IANA time zone"),
    ],
)
def test_post_when_it_has_a_problem_then_refused_at_its_path(body: dict[str, Any], path: str, message: str) -> None:
    [found] = problems(body)

    assert found["path"] == path
    assert message in found["message"]


def test_publish_time_when_just_inside_the_grace_then_accepted() -> None:
    [only] = planned({"posts": [post(publishAt="2026-03-01T11:59:30Z")]}).posts

    assert only.publish_at.utc == utc("2026-03-01T11:59:30Z")


def test_draft_when_publish_time_is_past_then_accepted() -> None:
    result = planned({"mode": "draft", "posts": [post(publishAt="2026-01-01T09:00Z")]})

    assert result.mode == "draft"
    assert result.posts[0].publish_at.utc == utc("2026-01-01T09:00:00Z")


def test_unknown_zone_when_times_are_local_then_only_the_zone_is_reported() -> None:
    assert paths(problems({"timezone": "Mars/Base", "posts": [post(publishAt="2020-01-01T09:00")]})) == ["timezone"]


def test_schedule_when_several_posts_have_problems_then_every_one_is_reported_in_envelope_order() -> None:
    body = {
        "posts": [
            post(account="bluesky:nobody", publishAt="2020-01-01T00:00Z"),
            post(text="ok"),
            post(text="a" * 400, assets=[str(MP4.id)]),
            *[post() for _ in range(7)],
            post(account="mastodon:carol"),
        ]
    }

    assert paths(problems(body)) == [
        "posts[0].account",
        "posts[0].publishAt",
        "posts[2].assets[0]",
        "posts[2].text",
        "posts[10].account",
    ]


def test_unknown_account_when_text_is_long_then_only_the_account_is_reported() -> None:
    assert paths(problems({"posts": [post(account="bluesky:nobody", text="a" * 5000)]})) == ["posts[0].account"]


# Campaigns


def campaign(*targets: dict[str, Any], name: str = "Launch") -> dict[str, Any]:
    return {"name": name, "targets": list(targets)}


def target(account: str, publish_at: str, *steps: dict[str, Any]) -> dict[str, Any]:
    return {"account": account, "publishAt": publish_at, "steps": list(steps)}


def test_campaign_when_planned_then_each_step_follows_the_previous_by_its_delay() -> None:
    body = {
        "timezone": NY,
        "campaigns": [
            campaign(
                target(
                    "x:@bob",
                    "2026-06-01T09:00",
                    {"name": "Teaser", "text": "soon"},
                    {"text": "now", "delayMinutes": 30},
                    {"text": "recap", "delayMinutes": 90},
                )
            )
        ],
    }

    result = planned(body)

    assert result.source_model == "campaigns_v2"
    assert [(p.path, p.text, p.publish_at.utc, p.campaign_name) for p in result.posts] == [
        ("campaigns[0].targets[0].steps[0]", "soon", utc("2026-06-01T13:00:00Z"), "Launch"),
        ("campaigns[0].targets[0].steps[1]", "now", utc("2026-06-01T13:30:00Z"), "Launch"),
        ("campaigns[0].targets[0].steps[2]", "recap", utc("2026-06-01T15:00:00Z"), "Launch"),
    ]
    assert result.posts[0].name == "Teaser"


def test_campaign_when_a_delay_crosses_spring_forward_then_it_is_elapsed_time() -> None:
    body = {"timezone": NY, "campaigns": [campaign(target("x:@bob", "2026-03-08T01:30", {"text": "a"}, {"text": "b", "delayMinutes": 60}))]}

    second = planned(body).posts[1]

    assert second.publish_at.utc == utc("2026-03-08T07:30:00Z")
    assert second.publish_at.local == "2026-03-08T03:30:00-04:00"


def test_campaigns_when_several_targets_then_posts_interleave_by_time() -> None:
    body = {
        "campaigns": [
            campaign(
                target("x:@bob", "2026-06-01T09:00Z", {"text": "x1"}, {"text": "x2", "delayMinutes": 60}),
                target("bluesky:alice", "2026-06-01T09:30Z", {"text": "b1"}),
            )
        ]
    }

    assert [(p.text, p.provider) for p in planned(body).posts] == [("x1", "x"), ("b1", "bluesky"), ("x2", "x")]


def test_campaign_when_steps_have_problems_then_each_is_reported_at_its_step_path() -> None:
    body = {
        "campaigns": [
            campaign(
                target("bluesky:nobody", "2026-06-01T09:00Z", {"text": "a"}, {"text": "b"}),
                target("bluesky:alice", "2026-06-01T09:00Z", {"text": "ok"}, {"text": "ok"}, {"text": "a" * 301}),
            )
        ]
    }

    assert paths(problems(body)) == ["campaigns[0].targets[0].account", "campaigns[0].targets[1].steps[2].text"]


def test_campaign_when_its_start_is_past_then_reported_once_at_the_target_time() -> None:
    body = {"campaigns": [campaign(target("x:@bob", "2026-03-01T10:00Z", {"text": "a"}, {"text": "b", "delayMinutes": 240}))]}

    [found] = problems(body)

    assert found["path"] == "campaigns[0].targets[0].publishAt"
    assert "1 of its 2 steps would publish before now" in found["message"]


def test_campaigns_when_they_expand_past_the_limit_then_refused() -> None:
    steps = [{"text": "a"}] * (MAX_POSTS // 2 + 10)  # each target within the limit, the two together past it
    body = {"campaigns": [campaign(target("x:@bob", "2026-06-01T09:00Z", *steps), target("bluesky:alice", "2026-06-01T09:00Z", *steps))]}

    assert paths(problems(body)) == ["campaigns"]


def test_plan_when_now_is_naive_then_refused_as_a_programming_error() -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        plan(parse({"posts": [post()]}), now=datetime(2026, 3, 1, 12, 0), accounts=ACCOUNTS, assets=ASSETS)


def test_index_when_built_then_finds_each_account_by_id_and_handle() -> None:
    index = index_accounts([ALICE])

    assert index[str(ALICE.id)] is index["bluesky:alice"] is ALICE


def test_resolved_time_when_shifted_then_keeps_its_zone() -> None:
    start = resolve_local_time("2026-11-01T00:30", NY)

    later = start.plus(timedelta(hours=2))

    assert (later.utc, later.local, later.zone) == (utc("2026-11-01T06:30:00Z"), "2026-11-01T01:30:00-05:00", NY)


def test_plan_when_encoded_then_account_ids_are_uuids() -> None:
    [only] = planned({"posts": [post()]}).posts

    assert isinstance(only.account_id, UUID)
