"""User-visible behaviour of the offline, deterministic copy writer."""

from __future__ import annotations

from itertools import combinations
from typing import get_args

import msgspec
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from adapters.copy_local import LocalCopyProvider
from application.ports import (
    CopyBrief,
    CopyFormat,
    CopyVariant,
    Platform,
    Product,
    ProviderError,
    Tone,
)

PLATFORMS: tuple[Platform, ...] = get_args(Platform)
FORMATS: tuple[CopyFormat, ...] = get_args(CopyFormat)
TONES: tuple[Tone, ...] = get_args(Tone)

SHOE = Product(
    name="Stride Runner",
    description=(
        "A lightweight running shoe with recycled foam cushioning. Breathable knit upper keeps feet cool. Ships in plastic-free packaging."
    ),
)
writer = LocalCopyProvider()


def post(variant: CopyVariant) -> str:
    return " ".join([variant.hook, variant.body, variant.cta, *variant.hashtags])


def copy_text(variants: list[CopyVariant]) -> str:
    return " ".join(post(v) for v in variants)


def limit_violations(variant: CopyVariant, platform: Platform, fmt: CopyFormat) -> list[str]:
    """The published limits, written out independently of the adapter's own table."""
    short = fmt in ("short", "hook")
    checks: dict[Platform, list[tuple[str, int, int]]] = {
        "x": [("post", len(post(variant)), 280)],
        "google": [("headline", len(variant.hook), 30), ("description", len(variant.body), 90)],
        "meta": [
            ("hook", len(variant.hook), 40),
            ("primary", len(variant.body), 125 if short else 500),
        ],
        "linkedin": [("body", len(variant.body), 600)],
        "tiktok": [("post", len(post(variant)), 150 if short else 300)],
        "pinterest": [("hook", len(variant.hook), 100), ("body", len(variant.body), 500)],
        "universal": [("hook", len(variant.hook), 60), ("body", len(variant.body), 300)],
    }
    return [f"{what} {size} > {limit}" for what, size, limit in checks[platform] if size > limit]


briefs = st.builds(
    CopyBrief,
    product=st.builds(
        Product,
        name=st.text(min_size=1, max_size=400).filter(lambda s: bool(s.split())),
        description=st.none() | st.text(max_size=400),
    ),
    platform=st.sampled_from(PLATFORMS),
    format=st.sampled_from(FORMATS),
    tone=st.sampled_from(TONES),
    count=st.integers(min_value=1, max_value=8),
    language=st.sampled_from(["en", "es", "fr", "de", "es-MX", "ja", "pt"]),
    custom_instructions=st.none() | st.text(max_size=500) | st.sampled_from(["Mention free shipping.", "Highlight the 2-year warranty"]),
)


@settings(max_examples=300, deadline=None)
@given(brief=briefs)
def test_any_brief_when_written_then_every_variant_fits_its_platform_limits(
    brief: CopyBrief,
) -> None:
    variants = writer.write(brief)

    for variant in variants:
        assert limit_violations(variant, brief.platform, brief.format) == []
        assert variant.hook and variant.body and variant.cta


@settings(max_examples=100, deadline=None)
@given(brief=briefs)
def test_any_brief_when_written_twice_then_output_is_identical(brief: CopyBrief) -> None:
    first = msgspec.json.encode(writer.write(brief))

    assert msgspec.json.encode(LocalCopyProvider().write(brief)) == first


@settings(max_examples=100, deadline=None)
@given(brief=briefs)
def test_any_brief_when_written_then_count_is_respected_and_variants_are_distinct(
    brief: CopyBrief,
) -> None:
    variants = writer.write(brief)

    assert len(variants) == brief.count
    assert len({(v.hook, v.body, v.cta) for v in variants}) == brief.count


@settings(max_examples=100, deadline=None)
@given(brief=briefs)
def test_any_brief_when_written_then_hashtags_start_with_hash_and_have_no_spaces(
    brief: CopyBrief,
) -> None:
    for variant in writer.write(brief):
        for tag in variant.hashtags:
            assert tag.startswith("#") and len(tag) > 1
            assert not any(ch.isspace() for ch in tag)


@pytest.mark.parametrize("platform", PLATFORMS)
@pytest.mark.parametrize("fmt", FORMATS)
@pytest.mark.parametrize("tone", TONES)
def test_each_platform_format_and_tone_when_written_then_limits_hold(platform: Platform, fmt: CopyFormat, tone: Tone) -> None:
    brief = CopyBrief(
        product=SHOE,
        platform=platform,
        format=fmt,
        tone=tone,
        count=10,
        custom_instructions="Mention free shipping on every order over $50.",
    )

    variants = writer.write(brief)

    assert [limit_violations(v, platform, fmt) for v in variants] == [[]] * 10


def test_google_brief_when_written_then_no_hashtags_and_linkedin_has_at_most_three() -> None:
    google = writer.write(CopyBrief(product=SHOE, platform="google"))
    linkedin = writer.write(CopyBrief(product=SHOE, platform="linkedin"))

    assert all(v.hashtags == [] for v in google)
    assert all(len(v.hashtags) <= 3 for v in linkedin)


def test_pinterest_brief_when_written_then_hashtags_come_from_product_words() -> None:
    variants = writer.write(CopyBrief(product=SHOE, platform="pinterest"))

    tags = {tag for v in variants for tag in v.hashtags}
    assert {"#StrideRunner", "#Lightweight", "#Recycled"} <= tags
    assert all(len(v.hashtags) > 3 for v in variants)


@given(
    a=st.from_regex(r"[A-Z][a-z]{2,14}", fullmatch=True),
    b=st.from_regex(r"[A-Z][a-z]{2,14}", fullmatch=True),
)
def test_two_products_when_written_then_outputs_differ(a: str, b: str) -> None:
    if a == b:
        return
    out_a = writer.write(CopyBrief(product=Product(name=a)))
    out_b = writer.write(CopyBrief(product=Product(name=b)))

    assert out_a != out_b


@pytest.mark.parametrize(
    "change",
    [
        {"product": Product(name="Stride Runner", description="Trail shoe with a grippy outsole.")},
        {"platform": "pinterest"},
        {"format": "story"},
        {"tone": "luxe"},
        {"language": "fr"},
        {"custom_instructions": "Mention the 30-day return window."},
    ],
)
def test_base_brief_when_one_field_changes_then_copy_changes(change: dict[str, object]) -> None:
    base = CopyBrief(product=SHOE, count=3)

    changed = msgspec.structs.replace(base, **change)

    assert copy_text(writer.write(changed)) != copy_text(writer.write(base))


@pytest.mark.parametrize("fmt", FORMATS)
def test_product_when_written_then_its_name_appears_in_every_variant(fmt: CopyFormat) -> None:
    variants = writer.write(CopyBrief(product=SHOE, format=fmt))

    assert all("Stride Runner" in v.hook + " " + v.body for v in variants)


def test_description_when_written_then_its_first_sentence_is_used() -> None:
    variants = writer.write(CopyBrief(product=SHOE, format="long", count=3))

    assert all("A lightweight running shoe with recycled foam cushioning" in v.body for v in variants)


@pytest.mark.parametrize(("tone_a", "tone_b"), list(combinations(TONES, 2)))
def test_two_tones_when_written_then_hooks_and_ctas_are_worded_differently(tone_a: Tone, tone_b: Tone) -> None:
    a = writer.write(CopyBrief(product=SHOE, tone=tone_a))
    b = writer.write(CopyBrief(product=SHOE, tone=tone_b))

    assert {v.hook for v in a}.isdisjoint(v.hook for v in b)
    assert {v.cta for v in a}.isdisjoint(v.cta for v in b)


def test_spanish_brief_when_written_then_cta_is_spanish_and_differs_from_english() -> None:
    spanish_words = {
        "ahora",
        "hoy",
        "ya",
        "descubre",
        "compra",
        "consigue",
        "pruébalo",
        "empieza",
        "más",
    }
    es = writer.write(CopyBrief(product=SHOE, language="es", tone="urgent", count=3))
    en = writer.write(CopyBrief(product=SHOE, language="en", tone="urgent", count=3))

    es_ctas = {v.cta for v in es}
    assert es_ctas.isdisjoint(v.cta for v in en)
    assert any(spanish_words & set(cta.lower().split()) for cta in es_ctas)


def test_regional_spanish_when_written_then_uses_spanish_phrases() -> None:
    es_ctas = {v.cta for v in writer.write(CopyBrief(product=SHOE, language="es", count=10))}
    mx_ctas = {v.cta for v in writer.write(CopyBrief(product=SHOE, language="es-MX", count=10))}

    assert mx_ctas <= es_ctas


def test_unsupported_language_when_written_then_falls_back_to_english_phrases() -> None:
    en_ctas = {v.cta for v in writer.write(CopyBrief(product=SHOE, language="en", count=10))}
    ja_ctas = {v.cta for v in writer.write(CopyBrief(product=SHOE, language="ja", count=10))}

    assert ja_ctas <= en_ctas


@pytest.mark.parametrize("platform", PLATFORMS)
def test_mention_instruction_when_written_then_body_states_it_within_limits(
    platform: Platform,
) -> None:
    brief = CopyBrief(
        product=SHOE,
        platform=platform,
        count=4,
        custom_instructions="Please mention free shipping.",
    )

    variants = writer.write(brief)

    assert all("Free shipping." in v.body for v in variants)
    assert all(limit_violations(v, platform, "short") == [] for v in variants)


def test_long_description_when_clipped_then_cut_at_word_boundary_with_ellipsis() -> None:
    product = Product(name="Dawn", description="sunrise " * 60)

    variants = writer.write(CopyBrief(product=product, platform="google", count=3))

    for variant in variants:
        assert variant.body.endswith("…")
        assert variant.body[:-1].split()[-1] == "sunrise"


def test_long_format_when_written_then_body_has_several_sentences() -> None:
    for variant in writer.write(CopyBrief(product=Product(name="Dawn"), format="long")):
        assert sum(variant.body.count(end) for end in ".!?") >= 3


def test_story_format_when_written_then_body_has_three_beats_and_hook_format_is_short() -> None:
    story = writer.write(CopyBrief(product=SHOE, format="story"))
    hook = writer.write(CopyBrief(product=SHOE, format="hook", platform="pinterest"))

    assert all(sum(v.body.count(end) for end in ".!?") >= 3 for v in story)
    assert all(len(v.body) <= 100 for v in hook)


@pytest.mark.parametrize(
    "brief",
    [
        CopyBrief(product=Product(name="   ")),
        CopyBrief(product=SHOE, count=0),
        CopyBrief(product=SHOE, count=21),
    ],
)
def test_invalid_brief_when_written_then_non_retryable_provider_error(brief: CopyBrief) -> None:
    with pytest.raises(ProviderError) as caught:
        writer.write(brief)

    assert caught.value.code == "invalid_brief"
    assert caught.value.retryable is False
