"""Schedule envelopes: parse them, resolve their local times, and plan their posts — or name every problem."""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime, timedelta
from typing import Annotated, Literal, NamedTuple
from urllib.parse import urlsplit
from uuid import UUID
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import msgspec
from msgspec import Meta

from domain.errors import InvalidTime, ScheduleInvalid, UnknownProvider
from domain.providers import JPEG, MP4, PNG, WEBP, ProviderSpec, provider, text_length

Mode = Literal["scheduled", "draft"]
SourceModel = Literal["posts_v1", "campaigns_v2"]
Problem = dict[str, str]

# A run and its posts are saved in one transaction; saves of many hundreds of events were seen to hang in
# psycopg's pipeline while holding the events table lock, so a schedule stays well below that.
MAX_POSTS = 200
MAX_ASSETS = 10
# "No publishAt" means now, and the client's clock is not ours: a time this little in the past still goes out.
PAST_GRACE = timedelta(seconds=60)

AccountText = Annotated[str, Meta(min_length=1, max_length=300)]
Name = Annotated[str, Meta(min_length=1, max_length=200)]
Text = Annotated[str, Meta(min_length=1, max_length=100_000)]
TimeText = Annotated[str, Meta(min_length=1, max_length=64)]
Assets = Annotated[tuple[Annotated[str, Meta(min_length=1, max_length=2048)], ...], Meta(max_length=MAX_ASSETS)]


class _Input(msgspec.Struct, kw_only=True, rename="camel", forbid_unknown_fields=True):
    pass


class PostInput(_Input):
    account: AccountText
    text: Text
    name: Name | None = None
    publish_at: TimeText | None = None
    assets: Assets = ()
    campaign_id: UUID | None = None


class StepInput(_Input):
    text: Text
    name: Name | None = None
    assets: Assets = ()
    delay_minutes: Annotated[int, Meta(ge=0, le=366 * 24 * 60)] = 0  # from the previous step; the first from publishAt


class TargetInput(_Input):
    account: AccountText
    publish_at: TimeText
    steps: Annotated[tuple[StepInput, ...], Meta(min_length=1, max_length=MAX_POSTS)]


class CampaignInput(_Input):
    name: Name
    targets: Annotated[tuple[TargetInput, ...], Meta(min_length=1, max_length=MAX_POSTS)]


class Envelope(_Input):
    timezone: Annotated[str, Meta(min_length=1, max_length=64)] = "UTC"
    mode: Mode = "scheduled"
    idempotency_key: Annotated[str, Meta(min_length=1, max_length=200)] | None = None
    posts: Annotated[tuple[PostInput, ...], Meta(min_length=1, max_length=MAX_POSTS)] | None = None
    campaigns: Annotated[tuple[CampaignInput, ...], Meta(min_length=1, max_length=MAX_POSTS)] | None = None


def parse_envelope(raw: bytes) -> Envelope:
    """Accepts the envelope bare or as {"schedule": envelope}; paths in errors are relative to the envelope either way."""
    try:
        top = msgspec.json.decode(raw, type=dict[str, msgspec.Raw])
    except msgspec.DecodeError as error:
        raise ScheduleInvalid([{"path": "", "message": str(error)}]) from None
    body: bytes | msgspec.Raw = raw
    if "schedule" in top:
        if beside := sorted(set(top) - {"schedule"}):
            raise ScheduleInvalid([{"path": key, "message": "Unexpected beside `schedule`: put it inside the envelope"} for key in beside])
        body = top["schedule"]
    try:
        envelope = msgspec.json.decode(body, type=Envelope)
    except msgspec.ValidationError as error:
        raise ScheduleInvalid([_problem_from(error)]) from None
    if envelope.posts is not None and envelope.campaigns is not None:
        raise ScheduleInvalid([{"path": "campaigns", "message": "Give posts or campaigns, not both"}])
    if envelope.posts is None and envelope.campaigns is None:
        raise ScheduleInvalid([{"path": "posts", "message": "Give posts or campaigns"}])
    return envelope


_AT_PATH = re.compile(r" - at `\$(?P<path>[^`]*)`$")
_FIELD = re.compile(r"(?:unknown|required) field `(?P<field>[^`]+)`")


def _problem_from(error: msgspec.ValidationError) -> Problem:
    """Turns msgspec's "Expected `str` of length >= 1 - at `$.posts[0].text`" into {path: "posts[0].text", message}."""
    message, path = str(error), ""
    if match := _AT_PATH.search(message):
        path, message = match.group("path"), message[: match.start()]
    if field := _FIELD.search(message):
        path = f"{path}.{field.group('field')}"
    return {"path": path.lstrip("."), "message": message}


# Times


class ResolvedTime(msgspec.Struct, frozen=True, kw_only=True):
    utc: datetime
    local: str  # the wall-clock time in zone with its offset, e.g. 2026-06-01T14:00:00-04:00
    zone: str

    @classmethod
    def at(cls, instant: datetime, zone: str) -> ResolvedTime:
        return cls(utc=instant.astimezone(UTC), local=instant.astimezone(zone_named(zone)).isoformat(), zone=zone)

    def plus(self, delay: timedelta) -> ResolvedTime:
        return ResolvedTime.at(self.utc + delay, self.zone)


_RFC3339 = re.compile(
    r"(?P<date>\d{4}-\d{2}-\d{2})[Tt ](?P<time>\d{2}:\d{2}(?::\d{2})?)(?P<fraction>\.\d{1,9})?(?P<offset>[Zz]|[+-]\d{2}:\d{2})?"
)


def zone_named(name: str) -> ZoneInfo:
    # "localtime" is whatever the server's clock says: not something a schedule can mean.
    if name != "localtime":
        try:
            return ZoneInfo(name)
        except (ZoneInfoNotFoundError, ValueError, OSError):
            pass
    raise InvalidTime(f"{name!r} is not an IANA time zone such as America/New_York or UTC")


def resolve_local_time(text: str, zone: str) -> ResolvedTime:
    """An RFC 3339 time with an offset is that instant; without one it is read in zone, which must name it exactly once."""
    tz = zone_named(zone)
    match = _RFC3339.fullmatch(text.strip())
    if match is None:
        raise InvalidTime(f"{text!r} is not an RFC 3339 date and time such as 2026-06-01T14:00:00 or 2026-06-01T18:00:00Z")
    local = f"{match['date']}T{match['time']}"
    fraction = (match["fraction"] or "")[:7]  # datetime keeps microseconds
    offset = (match["offset"] or "").upper()
    try:
        parsed = datetime.fromisoformat(local + fraction + offset)
    except ValueError:
        raise InvalidTime(f"{text!r} is not a valid date and time") from None
    if parsed.tzinfo is not None:
        return ResolvedTime.at(parsed, zone)
    return ResolvedTime.at(_read_in(parsed, tz, local), zone)


def _read_in(naive: datetime, tz: ZoneInfo, local: str) -> datetime:
    candidates = [naive.replace(tzinfo=tz, fold=fold) for fold in (0, 1)]
    real = [when for when in candidates if when.astimezone(UTC).astimezone(tz).replace(tzinfo=None) == naive]
    if len(real) == 1 or (len(real) == 2 and real[0].utcoffset() == real[1].utcoffset()):
        return real[0]
    if real:
        first, second = (when.astimezone(UTC) for when in real)
        first_offset, second_offset = (_offset(when.utcoffset()) for when in real)
        raise InvalidTime(
            f"{local} is ambiguous in {tz.key}: it happens twice, at {_zulu(first)} ({first_offset}) and {_zulu(second)} "
            f"({second_offset}); give an offset {first_offset} or {second_offset}"
        )
    before, after = (when.utcoffset() or timedelta(0) for when in candidates)
    change = _transition(naive, tz, before, after)
    raise InvalidTime(
        f"{local} does not exist in {tz.key}: clocks jump from {_clock(change + before)} to {_clock(change + after)}; give an offset"
    )


def _transition(naive: datetime, tz: ZoneInfo, before: timedelta, after: timedelta) -> datetime:
    """The instant (whole seconds, as in tzdata) the zone's offset changes from before to after around naive."""
    low = math.floor((naive - after).replace(tzinfo=UTC).timestamp())
    high = math.ceil((naive - before).replace(tzinfo=UTC).timestamp())
    while high - low > 1:
        middle = (low + high) // 2
        if datetime.fromtimestamp(middle, tz).utcoffset() == before:
            low = middle
        else:
            high = middle
    return datetime.fromtimestamp(high, UTC).replace(tzinfo=None)


def _offset(offset: timedelta | None) -> str:
    minutes = int((offset or timedelta(0)).total_seconds()) // 60
    sign = "-" if minutes < 0 else "+"
    return f"{sign}{abs(minutes) // 60:02d}:{abs(minutes) % 60:02d}"


def _clock(wall: datetime) -> str:
    return wall.strftime("%H:%M:%S" if wall.second else "%H:%M")


def _zulu(instant: datetime) -> str:
    return instant.replace(tzinfo=None).isoformat() + "Z"


# Plans


class AccountRef(msgspec.Struct, frozen=True, kw_only=True):
    id: UUID
    provider: str
    handle: str
    status: str


class AssetRef(msgspec.Struct, frozen=True, kw_only=True):
    id: UUID
    mime: str


def index_accounts(accounts: Iterable[AccountRef]) -> dict[str, AccountRef]:
    """The lookup plan() takes: each account under its id and its handle."""
    index: dict[str, AccountRef] = {}
    for account in accounts:
        index[str(account.id)] = account
        index[account.handle] = account
        index.setdefault(account.handle.casefold(), account)
    return index


class PlannedPost(msgspec.Struct, frozen=True, kw_only=True):
    path: str  # where in the envelope it came from: posts[3] or campaigns[0].targets[1].steps[2]
    account_id: UUID
    handle: str
    provider: str
    text: str
    publish_at: ResolvedTime
    assets: tuple[str, ...]  # asset ids (canonical UUID text) and http(s) URLs, in the order given
    name: str | None = None
    campaign_id: UUID | None = None
    campaign_name: str | None = None  # the name of the campaigns[] entry it was expanded from


class Plan(msgspec.Struct, frozen=True, kw_only=True):
    timezone: str
    mode: Mode
    source_model: SourceModel
    idempotency_key: str | None
    posts: tuple[PlannedPost, ...]  # by publish time; ties keep the envelope's order


class _Piece(NamedTuple):
    path: str
    text: str
    name: str | None
    assets: tuple[str, ...]
    publish_at: ResolvedTime | None
    campaign_id: UUID | None = None
    campaign_name: str | None = None


class _Group(NamedTuple):
    account_path: str
    account: str
    pieces: list[_Piece]


def plan(envelope: Envelope, *, now: datetime, accounts: Mapping[str, AccountRef], assets: Mapping[str, AssetRef]) -> Plan:
    """The posts the envelope asks for, or ScheduleInvalid naming every problem with its path.

    accounts is looked up by the account text (a handle or an id: see index_accounts); assets by asset id."""
    if now.tzinfo is None:
        raise ValueError("now must be timezone-aware")
    problems: list[Problem] = []
    zone = envelope.timezone
    try:
        zone_named(zone)
    except InvalidTime as error:
        problems.append({"path": "timezone", "message": error.detail})
        zone = "UTC"  # still finds the malformed times; whether they are past is unknowable
    # Drafts are re-timed when published, so a past time is fine there.
    times = _Times(zone, now, envelope.mode == "scheduled" and zone == envelope.timezone, problems)
    if envelope.posts is not None:
        source_model: SourceModel = "posts_v1"
        groups = _post_groups(envelope.posts, times)
    else:
        source_model = "campaigns_v2"
        groups = _campaign_groups(envelope.campaigns or (), times)
        if (total := sum(len(group.pieces) for group in groups)) > MAX_POSTS:
            problems.append({"path": "campaigns", "message": f"{total} posts; a schedule holds at most {MAX_POSTS}"})
    planned = [post for group in groups for post in _check_group(group, accounts, assets, problems)]
    if problems:
        raise ScheduleInvalid(sorted(problems, key=lambda problem: _path_key(problem["path"])))
    return Plan(
        timezone=envelope.timezone,
        mode=envelope.mode,
        source_model=source_model,
        idempotency_key=envelope.idempotency_key,
        posts=tuple(sorted(planned, key=lambda post: post.publish_at.utc)),
    )


class _Times:
    def __init__(self, zone: str, now: datetime, check_past: bool, problems: list[Problem]) -> None:
        self.zone, self.now, self.check_past, self.problems = zone, now, check_past, problems
        self.cutoff = now - PAST_GRACE

    def now_resolved(self) -> ResolvedTime:
        return ResolvedTime.at(self.now, self.zone)

    def resolve(self, text: str, path: str) -> ResolvedTime | None:
        try:
            return resolve_local_time(text, self.zone)
        except InvalidTime as error:
            self.problems.append({"path": path, "message": error.detail})
            return None

    def in_past(self, when: ResolvedTime) -> bool:
        return self.check_past and when.utc < self.cutoff

    def past(self, path: str, text: str, when: ResolvedTime, extra: str = "") -> None:
        self.problems.append(
            {"path": path, "message": f"{text} ({_zulu(when.utc)}) is in the past{extra}; now is {_zulu(self.now.astimezone(UTC))}"}
        )


def _post_groups(posts: Iterable[PostInput], times: _Times) -> list[_Group]:
    groups = []
    for index, post in enumerate(posts):
        path = f"posts[{index}]"
        when = times.now_resolved() if post.publish_at is None else times.resolve(post.publish_at, f"{path}.publishAt")
        if when is not None and post.publish_at is not None and times.in_past(when):
            times.past(f"{path}.publishAt", post.publish_at, when)
        piece = _Piece(path, post.text, post.name, post.assets, when, post.campaign_id)
        groups.append(_Group(f"{path}.account", post.account, [piece]))
    return groups


def _campaign_groups(campaigns: Iterable[CampaignInput], times: _Times) -> list[_Group]:
    groups = []
    for c, campaign in enumerate(campaigns):
        for t, target in enumerate(campaign.targets):
            path = f"campaigns[{c}].targets[{t}]"
            start = times.resolve(target.publish_at, f"{path}.publishAt")
            pieces, late, early = [], timedelta(0), 0
            for s, step in enumerate(target.steps):
                late += timedelta(minutes=step.delay_minutes)
                when = None if start is None else start.plus(late)
                if when is not None and times.in_past(when):
                    early += 1
                pieces.append(_Piece(f"{path}.steps[{s}]", step.text, step.name, step.assets, when, None, campaign.name))
            if start is not None and early:
                times.past(f"{path}.publishAt", target.publish_at, start, f": {early} of its {len(pieces)} steps would publish before now")
            groups.append(_Group(f"{path}.account", target.account, pieces))
    return groups


def _check_group(
    group: _Group, accounts: Mapping[str, AccountRef], assets: Mapping[str, AssetRef], problems: list[Problem]
) -> list[PlannedPost]:
    account, spec = _account(group, accounts, problems)
    planned = []
    for piece in group.pieces:
        references = _media(piece, spec, assets, problems)
        if spec is not None:
            _check_text(piece, spec, problems)
            _check_media_count(piece, spec, problems)
        if account is None or spec is None or piece.publish_at is None or references is None:
            continue
        planned.append(
            PlannedPost(
                path=piece.path,
                account_id=account.id,
                handle=account.handle,
                provider=spec.name,
                text=piece.text,
                publish_at=piece.publish_at,
                assets=references,
                name=piece.name,
                campaign_id=piece.campaign_id,
                campaign_name=piece.campaign_name,
            )
        )
    return planned


def _account(group: _Group, accounts: Mapping[str, AccountRef], problems: list[Problem]) -> tuple[AccountRef | None, ProviderSpec | None]:
    account = _find_account(group.account, accounts)
    if account is None:
        problems.append({"path": group.account_path, "message": f"Unknown account {group.account!r}: see GET /v1/accounts"})
        return None, None
    try:
        spec = provider(account.provider)
    except UnknownProvider:
        problems.append({"path": group.account_path, "message": f"{account.handle} is on {account.provider!r}, which is not a provider"})
        return None, None
    if account.status != "connected":
        problems.append({"path": group.account_path, "message": f"Account {account.handle} is {account.status}, not connected"})
        return None, spec
    return account, spec


def _find_account(text: str, accounts: Mapping[str, AccountRef]) -> AccountRef | None:
    if (found := accounts.get(text)) is not None:
        return found
    try:
        return accounts.get(str(UUID(text)))
    except ValueError:
        return accounts.get(text.casefold())


_MIME_OF_SUFFIX = {".png": PNG, ".jpg": JPEG, ".jpeg": JPEG, ".webp": WEBP, ".mp4": MP4}


def _media(piece: _Piece, spec: ProviderSpec | None, assets: Mapping[str, AssetRef], problems: list[Problem]) -> tuple[str, ...] | None:
    """The canonical asset references, or None when one of them is a problem (each reported)."""
    references: list[str] = []
    clean = True
    for index, reference in enumerate(piece.assets):
        canonical, mime, problem = _asset(reference, assets)
        if problem is None and spec is not None and mime not in spec.media_types:
            problem = f"{spec.display_name} does not take {mime}; it takes {', '.join(spec.media_types)}"
        if problem is not None:
            problems.append({"path": f"{piece.path}.assets[{index}]", "message": problem})
            clean = False
        references.append(canonical)
    return tuple(references) if clean else None


def _asset(reference: str, assets: Mapping[str, AssetRef]) -> tuple[str, str, str | None]:
    """(canonical reference, mime, problem)."""
    try:
        asset_id = str(UUID(reference))
    except ValueError:
        return _linked(reference)
    asset = assets.get(asset_id)
    if asset is None:
        return asset_id, "", f"Unknown asset {asset_id}"
    return asset_id, asset.mime, None


def _linked(url: str) -> tuple[str, str, str | None]:
    parts = urlsplit(url)
    if parts.scheme.lower() not in ("http", "https") or not parts.netloc:
        return url, "", "Not an asset id or an http(s) URL"
    suffix = parts.path[parts.path.rfind(".") :].lower() if "." in parts.path.rsplit("/", 1)[-1] else ""
    mime = _MIME_OF_SUFFIX.get(suffix)
    if mime is None:
        return url, "", "Cannot tell this URL's media type: link a .png, .jpg, .webp or .mp4 file, or upload it and give its asset id"
    return url, mime, None


def _check_text(piece: _Piece, spec: ProviderSpec, problems: list[Problem]) -> None:
    limit = spec.limit_for(len(piece.assets))
    length = text_length(spec, piece.text)
    if length > limit:
        caption = " in a caption with media" if limit != spec.text_limit else ""
        problems.append({"path": f"{piece.path}.text", "message": f"{length} {spec.unit}; {spec.display_name} allows {limit}{caption}"})


def _check_media_count(piece: _Piece, spec: ProviderSpec, problems: list[Problem]) -> None:
    count = len(piece.assets)
    if count > spec.max_media:
        problems.append({"path": f"{piece.path}.assets", "message": f"{count} media; {spec.display_name} takes at most {spec.max_media}"})
    elif spec.media_required and not count:
        needs = "a video (video/mp4)" if spec.video_required else "an image or a video"
        problems.append({"path": f"{piece.path}.assets", "message": f"{spec.display_name} needs {needs}"})


_PATH_PART = re.compile(r"([A-Za-z]+)|\[(\d+)\]")


def _path_key(path: str) -> tuple[tuple[int, int | str], ...]:
    """Orders paths as they appear in the envelope: posts[2] before posts[10]."""
    return tuple((1, int(index)) if index else (0, name) for name, index in _PATH_PART.findall(path))
