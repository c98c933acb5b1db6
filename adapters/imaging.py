"""What the image providers share: the prompt an ImageBrief becomes, and reading a PNG's size."""

from __future__ import annotations

import struct

from application.ports import ImageBrief, ImageStyle

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"

STYLE_DIRECTIONS: dict[ImageStyle, str] = {
    "product_hero": "Product hero shot: the product centred and sharp, clean studio background, soft professional lighting.",
    "lifestyle": "Lifestyle photograph: the product in use in a natural, everyday setting, warm natural light.",
    "minimal": "Minimalist composition: generous negative space, muted palette, one clear focal point.",
    "bold": "Bold graphic look: saturated high-contrast colours, strong shapes, dynamic angle.",
    "seasonal": "Seasonal theme: props, colours and light of the current season or holiday, festive but uncluttered.",
}


def image_prompt(brief: ImageBrief) -> str:
    """The text-to-image prompt for a brief: the customer's prompt, the style's direction and any headline."""
    parts = [f"Advertising image. {brief.prompt.strip()}", STYLE_DIRECTIONS[brief.style], f"Aspect ratio {brief.aspect_ratio}."]
    if brief.headline and brief.headline.strip():
        parts.append(f'Render the headline text "{brief.headline.strip()}" legibly, spelled exactly, with clear contrast.')
    else:
        parts.append("No text, letters or logos in the image.")
    return " ".join(parts)


def png_size(data: bytes) -> tuple[int, int]:
    """(width, height) from a PNG's IHDR chunk; ValueError if `data` does not start like a PNG."""
    if len(data) < 24 or not data.startswith(PNG_SIGNATURE) or data[12:16] != b"IHDR":
        raise ValueError("not a PNG image")
    width, height = struct.unpack(">II", data[16:24])
    if width == 0 or height == 0:
        raise ValueError("PNG with an empty IHDR size")
    return width, height
