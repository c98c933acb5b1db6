"""The provider catalogue: what each social platform accepts, and how it counts a post's text."""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Callable, Iterator, Mapping
from types import MappingProxyType
from typing import Literal

import msgspec

from domain.errors import UnknownProvider

Auth = Literal["manual", "oauth"]
# How the platform counts text: code points; user-perceived characters (Bluesky); or code points with
# every URL weighed as a shortened link of 23 (Mastodon; X also weighs wide characters and emoji as 2).
Counting = Literal["characters", "graphemes", "links_23", "x_weighted"]

PNG, JPEG, WEBP, MP4 = "image/png", "image/jpeg", "image/webp", "video/mp4"
IMAGES = (PNG, JPEG, WEBP)
LINK_WEIGHT = 23
_ZWJ = "\u200d"


class ProviderSpec(msgspec.Struct, frozen=True, kw_only=True):
    name: str
    display_name: str
    auth: Auth
    text_limit: int
    counting: Counting = "characters"
    caption_limit: int | None = None  # the text limit when the post carries media, where it differs
    media_types: tuple[str, ...]
    max_media: int
    media_required: bool = False
    video_required: bool = False
    supports_delete: bool
    supports_reconcile: bool
    posts_per_minute: int
    daily_cap: int | None  # None: the platform documents no daily cap for this kind of account

    def limit_for(self, media_count: int) -> int:
        return self.caption_limit if media_count and self.caption_limit is not None else self.text_limit

    @property
    def unit(self) -> str:
        return "graphemes" if self.counting == "graphemes" else "characters"


# Rate defaults are per account and configurable per provider; they sit at or under each platform's
# documented limit at the time of writing:
#   webhook   — ours; a polite default for someone else's endpoint.
#   discord   — webhooks: 30 messages a minute per channel.
#   telegram  — bots: 20 messages a minute to one group.
#   mastodon  — default instance limit 300 statuses per 3 hours (→ 2,400 a day), spread out.
#   bluesky   — PDS writes: 5,000 creates an hour, 35,000 a day; we stay far below to avoid spam labels.
#   x         — API Basic: 100 posts per 24 h per user; we keep half for the account's own use.
#   linkedin  — 150 member shares a day.
#   facebook  — no fixed page cap; Meta throttles bursts, so a conservative 50 a day.
#   instagram_business — 100 API-published posts per 24 h.
#   threads   — 250 posts per 24 h per profile.
#   pinterest — no documented pin cap per day; conservative 100.
#   tiktok    — about 15 posts per creator a day; 6 requests a minute per token.
#   youtube   — an upload costs 1,600 of the default 10,000 daily quota units: 6 a day.
_CATALOGUE = (
    ProviderSpec(
        name="webhook",
        display_name="Webhook",
        auth="manual",
        text_limit=100_000,
        media_types=(*IMAGES, MP4),
        max_media=10,
        supports_delete=False,
        supports_reconcile=True,
        posts_per_minute=60,
        daily_cap=None,
    ),
    ProviderSpec(
        name="discord",
        display_name="Discord",
        auth="manual",
        text_limit=2000,
        media_types=(*IMAGES, MP4),
        max_media=10,
        supports_delete=True,
        supports_reconcile=False,
        posts_per_minute=30,
        daily_cap=None,
    ),
    ProviderSpec(
        # sendMessage for text, sendPhoto (one image, caption up to 1,024) for media.
        name="telegram",
        display_name="Telegram",
        auth="manual",
        text_limit=4096,
        caption_limit=1024,
        media_types=(PNG, JPEG),
        max_media=1,
        supports_delete=True,
        supports_reconcile=False,
        posts_per_minute=20,
        daily_cap=None,
    ),
    ProviderSpec(
        name="mastodon",
        display_name="Mastodon",
        auth="manual",
        text_limit=500,
        counting="links_23",
        media_types=(*IMAGES, MP4),
        max_media=4,
        supports_delete=True,
        supports_reconcile=True,
        posts_per_minute=10,
        daily_cap=2400,
    ),
    ProviderSpec(
        # Image embeds only: video goes through a separate video service.
        name="bluesky",
        display_name="Bluesky",
        auth="manual",
        text_limit=300,
        counting="graphemes",
        media_types=IMAGES,
        max_media=4,
        supports_delete=True,
        supports_reconcile=True,
        posts_per_minute=30,
        daily_cap=1000,
    ),
    ProviderSpec(
        name="x",
        display_name="X",
        auth="oauth",
        text_limit=280,
        counting="x_weighted",
        media_types=(*IMAGES, MP4),
        max_media=4,
        supports_delete=True,
        supports_reconcile=True,
        posts_per_minute=5,
        daily_cap=50,
    ),
    ProviderSpec(
        name="linkedin",
        display_name="LinkedIn",
        auth="oauth",
        text_limit=3000,
        media_types=(PNG, JPEG, MP4),
        max_media=20,
        supports_delete=True,
        supports_reconcile=True,
        posts_per_minute=5,
        daily_cap=150,
    ),
    ProviderSpec(
        name="facebook",
        display_name="Facebook Page",
        auth="oauth",
        text_limit=63_206,
        media_types=(*IMAGES, MP4),
        max_media=10,
        supports_delete=True,
        supports_reconcile=True,
        posts_per_minute=5,
        daily_cap=50,
    ),
    ProviderSpec(
        # The content publishing API takes JPEG images only; carousels hold up to 10 items.
        name="instagram_business",
        display_name="Instagram Business",
        auth="oauth",
        text_limit=2200,
        media_types=(JPEG, MP4),
        max_media=10,
        media_required=True,
        supports_delete=False,
        supports_reconcile=True,
        posts_per_minute=5,
        daily_cap=100,
    ),
    ProviderSpec(
        name="threads",
        display_name="Threads",
        auth="oauth",
        text_limit=500,
        media_types=(PNG, JPEG, MP4),
        max_media=20,
        supports_delete=True,
        supports_reconcile=True,
        posts_per_minute=5,
        daily_cap=250,
    ),
    ProviderSpec(
        # One image or video per pin; carousel pins hold up to 5 images.
        name="pinterest",
        display_name="Pinterest",
        auth="oauth",
        text_limit=500,
        media_types=(*IMAGES, MP4),
        max_media=5,
        media_required=True,
        supports_delete=True,
        supports_reconcile=True,
        posts_per_minute=10,
        daily_cap=100,
    ),
    ProviderSpec(
        # The API has no delete, and a post in processing has no id to look up yet.
        name="tiktok",
        display_name="TikTok",
        auth="oauth",
        text_limit=2200,
        media_types=(MP4,),
        max_media=1,
        media_required=True,
        video_required=True,
        supports_delete=False,
        supports_reconcile=False,
        posts_per_minute=6,
        daily_cap=15,
    ),
    ProviderSpec(
        # The text is the video's description; its title is the post's name.
        name="youtube",
        display_name="YouTube",
        auth="oauth",
        text_limit=5000,
        media_types=(MP4,),
        max_media=1,
        media_required=True,
        video_required=True,
        supports_delete=True,
        supports_reconcile=True,
        posts_per_minute=2,
        daily_cap=6,
    ),
)

PROVIDERS: Mapping[str, ProviderSpec] = MappingProxyType({spec.name: spec for spec in _CATALOGUE})


def provider(name: str) -> ProviderSpec:
    try:
        return PROVIDERS[name]
    except KeyError:
        raise UnknownProvider(f"Unknown provider {name!r}; use one of {', '.join(PROVIDERS)}.") from None


def is_video(mime: str) -> bool:
    return mime.startswith("video/")


def text_length(spec: ProviderSpec | str, text: str) -> int:
    """The length of text as the platform counts it against its limit."""
    counting = (provider(spec) if isinstance(spec, str) else spec).counting
    if counting == "graphemes":
        return sum(1 for _ in graphemes(text))
    if counting == "links_23":
        return _with_links(text, len)
    if counting == "x_weighted":
        return _with_links(unicodedata.normalize("NFC", text), lambda rest: sum(_x_weight(cluster) for cluster in graphemes(rest)))
    return len(text)


_LINK = re.compile(r"https?://\S+", re.IGNORECASE)
_TRAILING = ".,;:!?)]}'\""


def _with_links(text: str, count: Callable[[str], int]) -> int:
    """Each http(s) URL weighs LINK_WEIGHT, as the platforms shorten it; punctuation right after it is text."""
    links = 0
    rest: list[str] = []
    position = 0
    for match in _LINK.finditer(text):
        url = match.group().rstrip(_TRAILING)
        rest.append(text[position : match.start()])
        position = match.start() + len(url)
        links += 1
    rest.append(text[position:])
    return links * LINK_WEIGHT + count("".join(rest))


# twitter-text v3: code points in these ranges weigh 1, all others 2; an emoji sequence weighs 2 in all.
_X_LIGHT = ((0, 4351), (8192, 8205), (8208, 8223), (8242, 8247))


def _x_weight(cluster: str) -> int:
    if ord(cluster[0]) >= 0x1F000 or "\ufe0f" in cluster or _ZWJ in cluster:
        return 2
    return sum(1 if any(low <= ord(ch) <= high for low, high in _X_LIGHT) else 2 for ch in cluster)


def graphemes(text: str) -> Iterator[str]:
    """User-perceived characters, approximately (UAX #29 without the Indic and Hangul-syllable rules):
    combining marks, variation selectors, skin tones and emoji tags join the character before them,
    a ZWJ joins the characters on both sides, two regional indicators make one flag, CR LF is one."""
    cluster = ""
    open_flag = False  # the cluster is a lone regional indicator, waiting for its pair
    for ch in text:
        if cluster and _joins(cluster[-1], ch, open_flag):
            open_flag = False
            cluster += ch
            continue
        if cluster:
            yield cluster
        cluster = ch
        open_flag = _is_regional(ch)
    if cluster:
        yield cluster


def _joins(previous: str, ch: str, open_flag: bool) -> bool:
    if previous == "\r":
        return ch == "\n"
    if _is_control(previous):
        return False
    return _extends(ch) or previous == _ZWJ or (open_flag and _is_regional(ch))


def _extends(ch: str) -> bool:
    code = ord(ch)
    return (
        ch == _ZWJ
        or unicodedata.category(ch) in ("Mn", "Me", "Mc")
        or 0x1F3FB <= code <= 0x1F3FF  # skin tones
        or 0xE0020 <= code <= 0xE007F  # emoji tag sequences (subdivision flags)
        or 0x1160 <= code <= 0x11FF  # conjoining Hangul vowels and finals
    )


def _is_regional(ch: str) -> bool:
    return 0x1F1E6 <= ord(ch) <= 0x1F1FF


def _is_control(ch: str) -> bool:
    return unicodedata.category(ch) == "Cc"
