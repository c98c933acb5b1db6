"""Offline, deterministic ad images drawn with Pillow.

`LocalImageMaker` needs no network or model: it paints a gradient background, shapes
in the style's palette, the headline, a short line from the prompt and a CTA button,
then encodes a PNG. Every random choice comes from a `random.Random` seeded with the
sha256 of the brief's msgspec JSON encoding and the image index, so the same
(brief, index) always gives the same bytes; the index also picks the layout, the
accent colour and the CTA label, so the images of one job differ.

Sizes keep the exact aspect ratio with a 1080 px short side: 1:1 → 1080×1080,
9:16 → 1080×1920, 4:5 → 1080×1350, 16:9 → 1920×1080. Text uses Pillow's bundled
scalable font (`ImageFont.load_default(size=...)`), so no system fonts are read.
Without a headline, the prompt's first clause (up to `HEADLINE_WORDS` words) becomes
the headline (or, for a longer clause, its first words) and the rest of the prompt
the short line. Text is wrapped to the text column and shrunk until it fits; what
still does not fit is cut with "…".

The bundled font only has ASCII and a few typographic marks, so `drawable` spells
other characters with those it has ("Müsli – Crème" → "Musli - Creme") and drops what
it cannot spell (emoji, CJK), rather than drawing empty boxes.

`drawable`, `fit_text`, `draw_lines`, `gradient` and `rgb` are shared with
`adapters.video_local`.
"""

from __future__ import annotations

import hashlib
import io
import math
import random
import re
import unicodedata
from collections.abc import Callable
from functools import lru_cache
from typing import Literal, NamedTuple

import msgspec
from PIL import Image, ImageColor, ImageDraw, ImageFilter, ImageFont

from application.ports import ImageAspect, ImageBrief, ImageStyle, MediaFile

RGB = tuple[int, int, int]
Font = ImageFont.FreeTypeFont | ImageFont.ImageFont

SIZES: dict[ImageAspect, tuple[int, int]] = {
    "1:1": (1080, 1080),
    "9:16": (1080, 1920),
    "4:5": (1080, 1350),
    "16:9": (1920, 1080),
}
HEADLINE_WORDS = 8
SUBLINE_CHARS = 90
_ELLIPSIS = "…"
# What Pillow's bundled font (Aileron Regular) draws; anything else comes out as a box.
GLYPHS = frozenset(map(chr, range(32, 127))) | frozenset("©«°±´·»‘’“”…‹›⁄™")
_SPELLED = str.maketrans({"–": "-", "—": "-", "ß": "ss", "æ": "ae", "Æ": "AE", "œ": "oe", "Œ": "OE", "ø": "o", "Ø": "O", "€": "EUR"})


class Palette(NamedTuple):
    top: str  # background gradient, top to bottom
    bottom: str
    text: str
    muted: str  # the short line
    accents: tuple[str, str, str]  # the index picks one for shapes and the CTA button
    ctas: tuple[str, str, str]
    outline: str | None = None  # headline outline, for text that may cross shapes


STYLES: dict[ImageStyle, Palette] = {
    "product_hero": Palette(
        "#0f172a", "#334155", "#ffffff", "#cbd5e1", ("#f59e0b", "#38bdf8", "#f472b6"), ("Shop now", "Buy now", "Get yours")
    ),
    "lifestyle": Palette(
        "#fff1e6", "#fbc4ab", "#3d2c23", "#6b4f43", ("#e76f51", "#2a9d8f", "#b5527e"), ("Discover more", "Join in", "See the story")
    ),
    "minimal": Palette("#fafafa", "#e7e5e4", "#111827", "#4b5563", ("#111827", "#2563eb", "#dc2626"), ("Learn more", "Explore", "View")),
    "bold": Palette(
        "#6d28d9", "#db2777", "#ffffff", "#fde7f3", ("#facc15", "#22d3ee", "#a3e635"), ("Grab it now", "Go big", "Get it today"), "#3b0764"
    ),
    "seasonal": Palette(
        "#14532d", "#052e16", "#fefce8", "#d9f99d", ("#ef4444", "#facc15", "#fb923c"), ("Shop the season", "Gift it", "Limited time")
    ),
}


class Layout(NamedTuple):
    align: Literal["left", "center"]
    vpos: float  # where the text block sits in the free height: 0 top, 1 bottom
    flip: bool  # gradient direction; on landscape images, text column on the right


LAYOUTS = (
    Layout("center", 0.75, False),
    Layout("left", 1.0, True),
    Layout("left", 0.0, False),
    Layout("center", 0.1, True),
)


class TextBlock(NamedTuple):
    font: Font
    lines: list[str]
    line_height: int

    @property
    def height(self) -> int:
        return len(self.lines) * self.line_height


class Scene(NamedTuple):
    """What the style's decoration needs to know about one image."""

    size: tuple[int, int]
    focus: tuple[float, float]  # centre of the area the text leaves free
    radius: float
    accent: RGB
    others: tuple[RGB, RGB]  # the palette's other accents
    text_box: tuple[int, int, int, int]
    rng: random.Random


class LocalImageMaker:
    """`ImageMaker` that draws PNG ads offline; see the module docstring."""

    def make(self, brief: ImageBrief, index: int) -> MediaFile:
        width, height = SIZES[brief.aspect_ratio]
        palette = STYLES[brief.style]
        layout = LAYOUTS[index % len(LAYOUTS)]
        digest = hashlib.sha256(msgspec.json.encode(brief) + b"#%d" % index).digest()
        rng = random.Random(int.from_bytes(digest, "big"))
        accents = [rgb(c) for c in palette.accents]
        accent = accents.pop(index % len(accents))
        headline, subline = _texts(brief)

        short = min(width, height)
        margin = round(short * 0.08)
        col_w = width - 2 * margin if width <= height * 1.2 else round(width * 0.5)
        col_x = width - margin - col_w if layout.flip else margin
        head = fit_text(headline, col_w, round(height * 0.42), max_size=round(short * 0.105), min_size=round(short * 0.045), max_lines=4)
        sub = fit_text(subline, col_w, round(height * 0.16), max_size=round(short * 0.042), min_size=round(short * 0.028), max_lines=3)
        cta_font = _font(round(short * 0.04))
        cta_label = palette.ctas[index % len(palette.ctas)]
        cta_h = round(short * 0.04 * 2.2)
        gap = round(short * 0.035)
        block_h = head.height + (gap + sub.height if sub.lines else 0) + gap + cta_h
        top = margin + round(layout.vpos * max(height - 2 * margin - block_h, 0))

        image = gradient((width, height), rgb(palette.top), rgb(palette.bottom), reverse=layout.flip)
        text_box = (col_x, top, col_x + col_w, top + block_h)
        focus, radius = _focus((width, height), text_box, col_w < width - 2 * margin, rng)
        scene = Scene((width, height), focus, radius, accent, (accents[0], accents[1]), text_box, rng)
        image.alpha_composite(_DECOR[brief.style](scene))

        draw = ImageDraw.Draw(image)
        outline = rgb(palette.outline) if palette.outline else None
        y = draw_lines(draw, head, col_x, top, col_w, layout.align, rgb(palette.text), bold=True, outline=outline)
        if sub.lines:
            y = draw_lines(draw, sub, col_x, y + gap, col_w, layout.align, rgb(palette.muted))
        _button(draw, cta_label, cta_font, col_x, y + gap, col_w, cta_h, layout.align, accent)

        out = io.BytesIO()
        image.convert("RGB").save(out, format="PNG", compress_level=6)
        return MediaFile(content=out.getvalue(), mime="image/png", width=width, height=height)


def drawable(text: str) -> str:
    """`text` in characters the bundled font has: accents stripped, a few letters spelled out,
    the rest dropped; whitespace collapsed."""
    kept: list[str] = []
    for ch in " ".join(text.split()).translate(_SPELLED):
        kept.extend(ch if ch in GLYPHS else (c for c in unicodedata.normalize("NFKD", ch) if c in GLYPHS))
    return " ".join("".join(kept).split())


def rgb(colour: str) -> RGB:
    r, g, b = ImageColor.getrgb(colour)[:3]
    return r, g, b


def gradient(size: tuple[int, int], top: RGB, bottom: RGB, *, reverse: bool = False) -> Image.Image:
    """An RGBA vertical gradient (bottom to top when `reverse`)."""
    mask = Image.linear_gradient("L").resize(size, Image.Resampling.BILINEAR)
    start, end = (bottom, top) if reverse else (top, bottom)
    return Image.composite(Image.new("RGBA", size, end), Image.new("RGBA", size, start), mask)


@lru_cache(maxsize=64)
def _font(size: int) -> Font:
    return ImageFont.load_default(size=size)


def fit_text(text: str, width: int, height: int, *, max_size: int, min_size: int, max_lines: int) -> TextBlock:
    """The largest size (stepping down by 10%) at which `text` wraps into `width`×`height`;
    at `min_size`, the lines that fit, the last one cut with "…"."""
    size = max_size
    while True:
        font = _font(size)
        line_height = round(size * 1.2)
        lines = _wrap(text, font, width)
        fits = len(lines) <= max_lines and len(lines) * line_height <= height
        if fits or size <= min_size:
            break
        size = max(min_size, int(size * 0.9))
    keep = max(1, min(max_lines, height // line_height))
    if len(lines) > keep:
        lines = [*lines[: keep - 1], _ellipsize(" ".join(lines[keep - 1 :]), font, width)]
    return TextBlock(font, lines, line_height)


def draw_lines(
    draw: ImageDraw.ImageDraw,
    block: TextBlock,
    x: int,
    y: int,
    width: int,
    align: str,
    fill: RGB,
    *,
    bold: bool = False,
    outline: RGB | None = None,
) -> int:
    """Draw the block's lines from `y` down; returns the y below the last line. `bold` thickens
    the strokes; `outline` rings them in another colour."""
    stroke = max(1, round(block.line_height / (25 if outline else 45))) if bold or outline else 0
    for line in block.lines:
        left = x + (width - block.font.getlength(line)) / 2 if align == "center" else x
        draw.text((left, y), line, font=block.font, fill=fill, stroke_width=stroke, stroke_fill=outline or fill)
        y += block.line_height
    return y


def _wrap(text: str, font: Font, width: int) -> list[str]:
    lines: list[str] = []
    line = ""
    for whole in text.split():
        word = whole
        while font.getlength(word) > width:  # a word wider than the column is broken
            if line:
                lines.append(line)
                line = ""
            lo, hi = 1, len(word) - 1  # the longest prefix that fits, at least one character
            while lo < hi:
                mid = (lo + hi + 1) // 2
                lo, hi = (mid, hi) if font.getlength(word[:mid]) <= width else (lo, mid - 1)
            cut = lo
            lines.append(word[:cut])
            word = word[cut:]
        candidate = f"{line} {word}" if line else word
        if font.getlength(candidate) <= width:
            line = candidate
        else:
            lines.append(line)
            line = word
    return [*lines, line] if line else lines


def _ellipsize(text: str, font: Font, width: int) -> str:
    while text and font.getlength(text + _ELLIPSIS) > width:
        text = text.rsplit(" ", 1)[0] if " " in text.strip() else text[:-1]
    return text.rstrip(_TRIM + "-") + _ELLIPSIS


_CLAUSE_END = re.compile(r"[.,;:!?–—]\s|[.!?]$")
_TRIM = " .,;:!?–—"
_DANGLING = frozenset(("a", "an", "and", "at", "by", "for", "from", "in", "into", "of", "on", "or", "our", "the", "to", "with", "your"))


def _texts(brief: ImageBrief) -> tuple[str, str]:
    """Headline and short line: the brief's headline and the prompt, or both cut from the prompt."""
    prompt = drawable(brief.prompt)
    headline = drawable(brief.headline or "")
    if headline:
        return headline, _clip(prompt, SUBLINE_CHARS)
    words = prompt.split()
    end = m.start() + 1 if (m := _CLAUSE_END.search(prompt)) else len(prompt)
    n = len(prompt[:end].split())
    if n > HEADLINE_WORDS:  # a long clause: its first words, without a dangling "of the"
        n = HEADLINE_WORDS - 2
        while n > 2 and words[n - 1].casefold() in _DANGLING:
            n -= 1
    head = " ".join(words[:n]).rstrip(_TRIM)
    rest = " ".join(words[n:]).lstrip(_TRIM)
    return head[:1].upper() + head[1:], _clip(rest[:1].upper() + rest[1:], SUBLINE_CHARS)


def _clip(text: str, limit: int) -> str:
    if len(text) <= limit:
        return text
    cut = text[: limit - 1].rsplit(" ", 1)[0] if " " in text[: limit - 1] else text[: limit - 1]
    return cut.rstrip(_TRIM + "-") + _ELLIPSIS


def _focus(size: tuple[int, int], box: tuple[int, int, int, int], column: bool, rng: random.Random) -> tuple[tuple[float, float], float]:
    """Centre and radius for the style's main shape, in the space the text leaves free."""
    width, height = size
    if column:  # landscape: the half beside the text column
        free_x = (box[2] + width) / 2 if box[0] + box[2] < width else box[0] / 2
        return (free_x + rng.uniform(-0.03, 0.03) * width, height / 2), height * 0.3
    above, below = box[1], height - box[3]
    y = above / 2 if above >= below else (box[3] + height) / 2
    radius = max(max(above, below) * 0.4, min(size) * 0.13)
    return (width / 2 + rng.uniform(-0.12, 0.12) * width, y), radius


def _button(draw: ImageDraw.ImageDraw, label: str, font: Font, x: int, y: int, width: int, height: int, align: str, fill: RGB) -> None:
    pad = height * 0.6
    w = min(font.getlength(label) + 2 * pad, width)
    left = x + (width - w) / 2 if align == "center" else x
    draw.rounded_rectangle((left, y, left + w, y + height), radius=height / 2, fill=fill)
    luminance = (0.299 * fill[0] + 0.587 * fill[1] + 0.114 * fill[2]) / 255
    ink = (17, 24, 39) if luminance > 0.6 else (255, 255, 255)
    draw.text((left + w / 2, y + height / 2), label, font=font, fill=ink, anchor="mm")


def _layer(size: tuple[int, int]) -> tuple[Image.Image, ImageDraw.ImageDraw]:
    layer = Image.new("RGBA", size, (0, 0, 0, 0))
    return layer, ImageDraw.Draw(layer)


def _circle(draw: ImageDraw.ImageDraw, centre: tuple[float, float], r: float, **kwargs: object) -> None:
    x, y = centre
    draw.ellipse((x - r, y - r, x + r, y + r), **kwargs)  # type: ignore[arg-type]


def _product_hero(s: Scene) -> Image.Image:
    """A glowing disc on a podium: where the product would stand."""
    layer, draw = _layer(s.size)
    (x, y), r = s.focus, s.radius
    for i in range(10):
        _circle(draw, (x, y), r * (1.5 - i * 0.06), fill=(*s.accent, 8 + i * 3))
    draw.ellipse((x - r * 1.1, y + r * 0.55, x + r * 1.1, y + r * 0.95), fill=(*s.others[0], 70))
    _circle(draw, (x, y), r * 0.62, fill=(*s.accent, 235))
    _circle(draw, (x - r * 0.2, y - r * 0.2), r * 0.22, fill=(255, 255, 255, 60))
    return layer


def _lifestyle(s: Scene) -> Image.Image:
    """Soft bokeh: blurred circles drawn at a quarter of the size, then scaled up."""
    k = 4
    small = (s.size[0] // k, s.size[1] // k)
    layer, draw = _layer(small)
    short = min(small)
    for _ in range(12):
        colour = s.rng.choice((s.accent, *s.others))
        centre = (s.rng.uniform(0, small[0]), s.rng.uniform(0, small[1]))
        _circle(draw, centre, s.rng.uniform(0.05, 0.16) * short, fill=(*colour, s.rng.randint(50, 110)))
    _circle(draw, (s.focus[0] / k, s.focus[1] / k), s.radius / k, fill=(*s.accent, 170))
    return layer.filter(ImageFilter.GaussianBlur(3)).resize(s.size, Image.Resampling.BILINEAR)


def _minimal(s: Scene) -> Image.Image:
    """One solid shape and a hairline."""
    layer, draw = _layer(s.size)
    (x, y), r = s.focus, s.radius * 0.55
    if s.rng.random() < 0.5:
        _circle(draw, (x, y), r, fill=(*s.accent, 255))
    else:
        draw.rectangle((x - r, y - r, x + r, y + r), fill=(*s.accent, 255))
    line_y = y + r * 1.5
    draw.line((s.size[0] * 0.1, line_y, s.size[0] * 0.9, line_y), fill=(*s.accent, 90), width=max(2, s.size[0] // 400))
    return layer


def _bold(s: Scene) -> Image.Image:
    """A big corner triangle, stripes and a thick ring."""
    layer, draw = _layer(s.size)
    width, height = s.size
    (x, y), r = s.focus, s.radius
    cx = width if x > width / 2 else 0
    cy = height if y > height / 2 else 0
    legs = (0.42, 0.75) if width > height else (0.6, 0.45)
    dx, dy = (-1 if cx else 1) * width * legs[0], (-1 if cy else 1) * height * legs[1]
    draw.polygon([(cx, cy), (cx + dx, cy), (cx, cy + dy)], fill=(*s.accent, 225))
    for i in range(1, 4):
        f = 1 + i * 0.12
        draw.line((cx + dx * f, cy, cx, cy + dy * f), fill=(*s.others[0], 160), width=max(4, width // 120))
    _circle(draw, (x, y), r * 0.7, outline=(*s.others[1], 240), width=max(8, round(r * 0.12)))
    return layer


def _seasonal(s: Scene) -> Image.Image:
    """A wreath ring and confetti that keeps clear of the text."""
    layer, draw = _layer(s.size)
    (x, y), r = s.focus, s.radius * 0.8
    _circle(draw, (x, y), r, outline=(*s.accent, 220), width=max(8, round(r * 0.14)))
    for i in range(12):
        angle = i / 12 * math.tau
        dot = (x + r * math.cos(angle), y + r * math.sin(angle))
        _circle(draw, dot, r * 0.09, fill=(*s.others[i % 2], 240))
    left, top, right, bottom = s.text_box
    short = min(s.size)
    for _ in range(70):
        px, py = s.rng.uniform(0, s.size[0]), s.rng.uniform(0, s.size[1])
        if left - 20 <= px <= right + 20 and top - 20 <= py <= bottom + 20:
            continue
        colour = s.rng.choice((s.accent, *s.others))
        half = s.rng.uniform(0.004, 0.01) * short
        draw.rectangle((px - half, py - half, px + half, py + half * 1.8), fill=(*colour, 190))
    return layer


_DECOR: dict[ImageStyle, Callable[[Scene], Image.Image]] = {
    "product_hero": _product_hero,
    "lifestyle": _lifestyle,
    "minimal": _minimal,
    "bold": _bold,
    "seasonal": _seasonal,
}
