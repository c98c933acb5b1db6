"""User-visible behaviour of the offline, deterministic PNG ad maker."""

from __future__ import annotations

import io
import math
from itertools import combinations
from typing import get_args

import pytest
from PIL import Image, ImageChops

from adapters.image_local import GLYPHS, LocalImageMaker, drawable
from application.ports import ImageAspect, ImageBrief, ImageStyle, MediaFile

ASPECTS: tuple[ImageAspect, ...] = get_args(ImageAspect)
STYLES: tuple[ImageStyle, ...] = get_args(ImageStyle)
EXPECTED_SIZES = {"1:1": (1080, 1080), "9:16": (1080, 1920), "4:5": (1080, 1350), "16:9": (1920, 1080)}
PROMPT = "Fresh cold brew coffee in a glass bottle, on a sunny kitchen counter"
maker = LocalImageMaker()


def brief(**overrides) -> ImageBrief:
    return ImageBrief(**{"prompt": PROMPT, "count": 4, **overrides})


def opened(media: MediaFile) -> Image.Image:
    image = Image.open(io.BytesIO(media.content))
    image.load()
    return image


def dominant_colour(image: Image.Image) -> tuple[int, ...]:
    """The most common of four colours the image is reduced to."""
    reduced = image.convert("RGB").resize((60, 60)).quantize(colors=4, method=Image.Quantize.MEDIANCUT)
    palette = reduced.getpalette() or []
    _, index = max(reduced.getcolors() or [])
    return tuple(palette[index * 3 : index * 3 + 3])


@pytest.mark.parametrize(("aspect", "style"), zip(ASPECTS, STYLES, strict=False))
def test_each_aspect_ratio_when_made_then_png_of_exact_size(aspect: ImageAspect, style: ImageStyle):
    media = maker.make(brief(aspect_ratio=aspect, style=style), 1)

    image = opened(media)
    assert image.format == "PNG"
    assert media.mime == "image/png"
    assert image.size == (media.width, media.height) == EXPECTED_SIZES[aspect]
    assert media.duration_seconds is None


def test_same_brief_and_index_when_made_twice_then_identical_bytes():
    assert maker.make(brief(style="seasonal"), 2).content == maker.make(brief(style="seasonal"), 2).content


def test_different_indexes_when_made_then_every_image_differs():
    images = [maker.make(brief(), index).content for index in range(4)]

    assert len(set(images)) == 4


def test_different_styles_when_made_then_dominant_colours_differ():
    colours = {style: dominant_colour(opened(maker.make(brief(style=style), 0))) for style in STYLES}

    for (a, colour_a), (b, colour_b) in combinations(colours.items(), 2):
        assert math.dist(colour_a, colour_b) > 30, f"{a} {colour_a} vs {b} {colour_b}"


def test_headline_when_given_then_image_differs_from_no_headline():
    plain = opened(maker.make(brief(), 0)).convert("RGB")
    headlined = opened(maker.make(brief(headline="Cold brew, done right"), 0)).convert("RGB")

    assert ImageChops.difference(plain, headlined).getbbox() is not None


def test_different_headlines_when_made_then_images_differ():
    first = maker.make(brief(headline="Cold brew, done right"), 0).content

    assert maker.make(brief(headline="Summer in a bottle"), 0).content != first


def test_unbreakable_long_text_when_made_then_still_renders_at_size():
    long_brief = brief(prompt="x" * 1000, headline="W" * 120, aspect_ratio="9:16", style="bold")

    assert opened(maker.make(long_brief, 3)).size == (1080, 1920)


def test_text_outside_the_bundled_font_when_made_drawable_then_spelled_with_its_glyphs():
    assert drawable("Unser Müsli – Crème brûlée, Straße 🎉 東京") == "Unser Musli - Creme brulee, Strasse"
    assert set(drawable("Œuvre ½ “déjà vu” …")) <= GLYPHS
