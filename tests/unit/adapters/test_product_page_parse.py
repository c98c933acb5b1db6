"""Product page extraction on HTML strings: JSON-LD > OpenGraph > HTML per field, URLs, and decoding."""

from __future__ import annotations

import json
from typing import Any

import pytest

from adapters.product_page import decode_html, extract

BASE = "https://shop.example/products/kettle?ref=ad"


def page(head: str = "", body: str = "") -> str:
    return f"<!doctype html><html><head>{head}</head><body>{body}</body></html>"


def json_ld(data: Any) -> str:
    return f'<script type="application/ld+json">{json.dumps(data)}</script>'


OPENGRAPH = """
<meta property="og:title" content="OG Kettle">
<meta property="og:description" content="OG description">
<meta property="og:image" content="https://cdn.example/og-1.jpg">
<meta property="og:image" content="/img/og-2.jpg">
<meta property="product:price:amount" content="24.50">
<meta property="product:price:currency" content="usd">
<meta property="product:brand" content="OG Brand">
"""

PRODUCT = {
    "@context": "https://schema.org",
    "@type": "Product",
    "name": "LD Kettle",
    "description": "LD description",
    "image": ["https://cdn.example/ld-1.jpg", "https://cdn.example/ld-2.jpg"],
    "brand": {"@type": "Brand", "name": "LD Brand"},
    "offers": {"@type": "Offer", "price": "19.99", "priceCurrency": "EUR"},
}


def test_opengraph_only_when_extracted_then_fields_come_from_opengraph() -> None:
    result = extract(page(OPENGRAPH + "<title>Ignored</title>"), BASE)

    assert result.title == "OG Kettle"
    assert result.description == "OG description"
    assert (result.price, result.currency, result.brand) == ("24.50", "USD", "OG Brand")
    assert result.images == ("https://cdn.example/og-1.jpg", "https://shop.example/img/og-2.jpg")
    assert result.source == ("opengraph",)
    assert result.url == BASE


def test_json_ld_product_when_extracted_then_fields_come_from_json_ld() -> None:
    result = extract(page(json_ld(PRODUCT)), BASE)

    assert (result.title, result.description, result.brand) == ("LD Kettle", "LD description", "LD Brand")
    assert (result.price, result.currency) == ("19.99", "EUR")
    assert result.images == ("https://cdn.example/ld-1.jpg", "https://cdn.example/ld-2.jpg")
    assert result.source == ("json-ld",)


def test_json_ld_and_opengraph_when_extracted_then_json_ld_wins_per_field_and_images_merge() -> None:
    partial = {**PRODUCT, "description": None, "brand": None, "image": "https://cdn.example/og-1.jpg"}

    result = extract(page(OPENGRAPH + json_ld(partial)), BASE)

    assert result.title == "LD Kettle"
    assert result.description == "OG description"
    assert result.brand == "OG Brand"
    assert (result.price, result.currency) == ("19.99", "EUR")
    assert result.images == ("https://cdn.example/og-1.jpg", "https://shop.example/img/og-2.jpg")
    assert result.source == ("json-ld", "opengraph")


def test_product_inside_graph_when_extracted_then_found() -> None:
    graph = {"@context": "https://schema.org", "@graph": [{"@type": "WebSite", "name": "The Shop"}, {**PRODUCT, "@type": ["Product"]}]}

    assert extract(page(json_ld(graph)), BASE).title == "LD Kettle"


def test_product_in_a_top_level_list_and_nested_under_a_page_when_extracted_then_found() -> None:
    listed = [{"@type": "BreadcrumbList"}, {**PRODUCT, "name": "Listed"}]
    nested = {"@type": "ItemPage", "mainEntity": {**PRODUCT, "name": "Nested"}}

    assert extract(page(json_ld(listed)), BASE).title == "Listed"
    assert extract(page(json_ld(nested)), BASE).title == "Nested"


@pytest.mark.parametrize(
    ("offers", "expected"),
    [
        ([{"@type": "Offer", "availability": "OutOfStock"}, {"@type": "Offer", "price": 12, "priceCurrency": "GBP"}], ("12", "GBP")),
        ({"@type": "AggregateOffer", "lowPrice": 9.5, "highPrice": 15, "priceCurrency": "CHF"}, ("9.5", "CHF")),
        ({"@type": "Offer", "priceSpecification": {"price": "7.00", "priceCurrency": "JPY"}}, ("7.00", "JPY")),
        ({"@type": "Offer", "price": 0.1}, ("0.1", None)),
        ("not an offer", (None, None)),
    ],
)
def test_offer_shapes_when_extracted_then_price_and_currency_read(offers: Any, expected: tuple[str | None, str | None]) -> None:
    result = extract(page(json_ld({**PRODUCT, "offers": offers})), BASE)

    assert (result.price, result.currency) == expected


@pytest.mark.parametrize(
    ("brand", "expected"),
    [("Plain", "Plain"), ({"@type": "Brand", "name": "Named"}, "Named"), ([{"name": "First"}, "Second"], "First"), ({"@id": "#b"}, None)],
)
def test_brand_shapes_when_extracted_then_name_read(brand: Any, expected: str | None) -> None:
    assert extract(page(json_ld({**PRODUCT, "brand": brand})), BASE).brand == expected


@pytest.mark.parametrize(
    ("image", "expected"),
    [
        ("/a.jpg", ("https://shop.example/a.jpg",)),
        ({"@type": "ImageObject", "url": "b.jpg"}, ("https://shop.example/products/b.jpg",)),
        (
            [{"@type": "ImageObject", "contentUrl": "//cdn.example/c.jpg"}, "d.jpg"],
            ("https://cdn.example/c.jpg", "https://shop.example/products/d.jpg"),
        ),
    ],
)
def test_image_shapes_when_extracted_then_absolute_urls(image: Any, expected: tuple[str, ...]) -> None:
    assert extract(page(json_ld({**PRODUCT, "image": image})), BASE).images == expected


def test_malformed_json_ld_when_extracted_then_skipped_and_the_next_block_read() -> None:
    head = '<script type="application/ld+json">{"@type": "Product", "name": "Broken",</script>' + json_ld(PRODUCT)

    assert extract(page(head), BASE).title == "LD Kettle"


def test_only_malformed_json_ld_when_extracted_then_other_sources_used() -> None:
    head = '<script type="application/ld+json">[[[{nope</script><title>From the title</title>'

    result = extract(page(head), BASE)

    assert result.title == "From the title"
    assert result.source == ("html",)


def test_json_ld_description_with_markup_when_extracted_then_plain_text() -> None:
    product = {**PRODUCT, "description": "<p>Boils fast &amp; quiet.</p>\n<ul><li>1.7 l</li></ul>"}

    assert extract(page(json_ld(product)), BASE).description == "Boils fast & quiet. 1.7 l"


def test_no_structured_data_when_extracted_then_html_title_description_and_large_images() -> None:
    head = '<title>  Steel\n Kettle | Shop </title><meta name="description" content="A kettle.">'
    body = """
        <img src="/logo.png">
        <img src="/tiny.jpg" width="16" height="16">
        <img src="data:image/gif;base64,R0lGOD">
        <img src="/icons/cart.svg">
        <img src="/photos/kettle-front.jpg" width="800" height="800">
        <img data-src="/photos/kettle-side.jpg">
    """

    result = extract(page(head, body), BASE)

    assert result.title == "Steel Kettle | Shop"
    assert result.description == "A kettle."
    assert result.images == ("https://shop.example/photos/kettle-front.jpg", "https://shop.example/photos/kettle-side.jpg")
    assert (result.price, result.brand) == (None, None)
    assert result.source == ("html",)


def test_structured_images_when_extracted_then_img_tags_ignored() -> None:
    result = extract(page(OPENGRAPH, '<img src="/photos/other.jpg" width="900">'), BASE)

    assert "https://shop.example/photos/other.jpg" not in result.images


def test_base_element_when_extracted_then_relative_urls_resolve_against_it() -> None:
    head = '<base href="https://static.example/assets/"><meta property="og:image" content="kettle.jpg">'

    assert extract(page(head), BASE).images == ("https://static.example/assets/kettle.jpg",)


def test_many_and_repeated_images_when_extracted_then_deduplicated_and_at_most_ten() -> None:
    images = [f"/img/{i % 12}.jpg" for i in range(30)]

    result = extract(page(json_ld({**PRODUCT, "image": images})), BASE)

    assert result.images == tuple(f"https://shop.example/img/{i}.jpg" for i in range(10))


def test_non_http_image_urls_when_extracted_then_dropped() -> None:
    head = '<meta property="og:image" content="javascript:alert(1)"><meta property="og:image" content="ftp://x/y.jpg">'

    assert extract(page(head), BASE).images == ()


def test_empty_page_when_extracted_then_empty_fields() -> None:
    result = extract("", BASE)

    assert (result.title, result.description, result.images, result.source) == ("", "", (), ())


def test_very_long_title_when_extracted_then_clipped() -> None:
    result = extract(page(f"<title>{'Kettle ' * 100}</title>"), BASE)

    assert len(result.title) == 200
    assert result.title.endswith("…")


@pytest.mark.parametrize(
    ("body", "content_type", "expected"),
    [
        ("Café".encode("cp1252"), "text/html; charset=ISO-8859-1", "Café"),
        ("Чайник".encode("cp1251"), 'text/html; charset="windows-1251"', "Чайник"),
        (b'<meta charset="shift_jis">' + "やかん".encode("shift_jis"), "text/html", "やかん"),
        (b'<meta http-equiv="Content-Type" content="text/html; charset=koi8-r">' + "Чайник".encode("koi8_r"), "text/html", "Чайник"),
        ("Crème".encode(), "text/html", "Crème"),
        ("Crème".encode("cp1252"), "text/html", "Crème"),
        (b"\xef\xbb\xbf" + "Crème".encode(), "text/html; charset=iso-8859-1", "Crème"),
        ("Crème".encode(), "text/html; charset=no-such-charset", "Crème"),
    ],
)
def test_bytes_when_decoded_then_bom_header_meta_then_utf8_then_cp1252(body: bytes, content_type: str, expected: str) -> None:
    assert expected in decode_html(body, content_type)
