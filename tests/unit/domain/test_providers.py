"""The provider catalogue: names, limits, and text counted as each platform counts it."""

from __future__ import annotations

import pytest

from domain.errors import UnknownProvider
from domain.providers import LINK_WEIGHT, PROVIDERS, graphemes, provider, text_length

MANUAL = ["webhook", "discord", "telegram", "mastodon", "bluesky"]
OAUTH = ["x", "linkedin", "facebook", "instagram_business", "threads", "pinterest", "tiktok", "youtube"]


def test_catalogue_when_listed_then_it_holds_the_providers_of_the_contract_in_order() -> None:
    assert list(PROVIDERS) == MANUAL + OAUTH


@pytest.mark.parametrize("name", MANUAL)
def test_manual_provider_when_looked_up_then_it_connects_manually(name: str) -> None:
    assert provider(name).auth == "manual"


@pytest.mark.parametrize("name", OAUTH)
def test_oauth_provider_when_looked_up_then_it_connects_with_oauth(name: str) -> None:
    assert provider(name).auth == "oauth"


@pytest.mark.parametrize(
    ("name", "limit"),
    [
        ("bluesky", 300),
        ("x", 280),
        ("linkedin", 3000),
        ("mastodon", 500),
        ("discord", 2000),
        ("telegram", 4096),
        ("threads", 500),
        ("facebook", 63_206),
        ("instagram_business", 2200),
        ("pinterest", 500),
        ("tiktok", 2200),
        ("youtube", 5000),
        ("webhook", 100_000),
    ],
)
def test_provider_when_looked_up_then_it_has_the_platform_text_limit(name: str, limit: int) -> None:
    assert provider(name).text_limit == limit


def test_telegram_when_post_carries_media_then_the_caption_limit_applies() -> None:
    assert (provider("telegram").limit_for(0), provider("telegram").limit_for(1)) == (4096, 1024)


@pytest.mark.parametrize("name", ["instagram_business", "pinterest", "tiktok", "youtube"])
def test_media_first_provider_when_looked_up_then_it_requires_media(name: str) -> None:
    assert provider(name).media_required


@pytest.mark.parametrize("name", ["tiktok", "youtube"])
def test_video_provider_when_looked_up_then_it_takes_only_video(name: str) -> None:
    spec = provider(name)

    assert spec.video_required
    assert spec.media_types == ("video/mp4",)


@pytest.mark.parametrize(
    ("name", "reconciles"), [("mastodon", True), ("bluesky", True), ("webhook", True), ("discord", False), ("telegram", False)]
)
def test_manual_provider_when_looked_up_then_it_says_whether_it_can_reconcile(name: str, reconciles: bool) -> None:
    assert provider(name).supports_reconcile is reconciles


def test_every_provider_when_looked_up_then_its_rate_limits_are_positive() -> None:
    for spec in PROVIDERS.values():
        assert spec.posts_per_minute > 0
        assert spec.daily_cap is None or spec.daily_cap > 0


def test_unknown_name_when_looked_up_then_raises_unknown_provider() -> None:
    with pytest.raises(UnknownProvider, match="myspace"):
        provider("myspace")


def test_catalogue_when_mutated_then_refuses() -> None:
    with pytest.raises(TypeError):
        PROVIDERS["myspace"] = provider("x")  # type: ignore[index]


@pytest.mark.parametrize(
    ("text", "count"),
    [
        ("hello", 5),
        ("e\u0301", 1),  # e + combining acute
        ("👍🏽", 1),  # skin tone modifier
        ("👨\u200d👩\u200d👧", 1),  # ZWJ family
        ("🇫🇷🇩🇪", 2),  # two flags
        ("❤️", 1),  # variation selector
        ("a\r\nb", 3),
        ("한국어", 3),
    ],
)
def test_bluesky_text_when_counted_then_each_grapheme_counts_once(text: str, count: int) -> None:
    assert text_length("bluesky", text) == count


def test_bluesky_when_300_emoji_families_then_they_fit_though_longer_in_code_points() -> None:
    text = "👨\u200d👩\u200d👧" * 300

    assert text_length(provider("bluesky"), text) == 300 == provider("bluesky").text_limit
    assert len(text) == 1500


def test_graphemes_when_split_then_joined_they_give_back_the_text() -> None:
    text = "Ünïcödé 👍🏽 🇫🇷 👨\u200d👩\u200d👧\r\n"

    assert "".join(graphemes(text)) == text


def test_x_text_when_it_holds_a_url_then_the_url_counts_23() -> None:
    url = "https://example.com/" + "a" * 100

    assert text_length("x", f"read {url} now") == len("read ") + LINK_WEIGHT + len(" now")


def test_x_text_when_a_short_url_then_it_still_counts_23() -> None:
    assert text_length("x", "http://a.io") == LINK_WEIGHT


def test_x_text_when_url_ends_a_sentence_then_the_full_stop_is_text() -> None:
    assert text_length("x", "see https://example.com/x.") == len("see ") + LINK_WEIGHT + 1


def test_x_text_when_two_urls_then_each_counts_23() -> None:
    assert text_length("x", "https://a.example/1 https://b.example/2") == 2 * LINK_WEIGHT + 1


def test_x_text_when_emoji_or_wide_characters_then_they_weigh_two() -> None:
    assert text_length("x", "👍🏽") == 2
    assert text_length("x", "日本") == 4
    assert text_length("x", "e\u0301") == 1  # normalised to é first


def test_mastodon_text_when_it_holds_a_url_then_the_url_counts_23() -> None:
    assert text_length("mastodon", "https://example.com/" + "a" * 600) == LINK_WEIGHT


def test_linkedin_text_when_it_holds_a_url_then_it_counts_every_character() -> None:
    url = "https://example.com/" + "a" * 100

    assert text_length("linkedin", url) == len(url)
