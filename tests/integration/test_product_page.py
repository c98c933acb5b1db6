"""The product page analyser against pages served on loopback: sources, limits, redirects and the address guard."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator

import pytest

import adapters.outbound_http as outbound_http
from adapters.outbound_http import OutboundOptions
from adapters.product_page import ProductPageAnalyzer
from application.ports import PageAnalyzer, ProviderError
from tests.fakes import ProductSite, Streamed

MB = 1024 * 1024

OPENGRAPH = """<html><head>
<meta property="og:title" content="Steel Kettle">
<meta property="og:description" content="Boils a litre in two minutes.">
<meta property="og:image" content="/img/kettle.jpg">
<meta property="product:price:amount" content="39.00">
<meta property="product:price:currency" content="EUR">
<meta property="og:brand" content="Brewline">
<title>Steel Kettle | Shop</title></head><body></body></html>"""

JSON_LD = {
    "@context": "https://schema.org",
    "@graph": [
        {"@type": "Organization", "name": "Shop"},
        {
            "@type": "Product",
            "name": "Copper Kettle",
            "description": "Hand-hammered copper.",
            "image": [{"@type": "ImageObject", "url": "https://cdn.example/copper.jpg"}, "images/copper-side.jpg"],
            "brand": {"@type": "Brand", "name": "Hammer & Co"},
            "offers": [{"@type": "Offer", "price": 89.5, "priceCurrency": "GBP"}, {"@type": "Offer", "price": 99, "priceCurrency": "GBP"}],
        },
    ],
}


def options(*, allow_private: bool = True) -> OutboundOptions:
    return OutboundOptions(connect_timeout=1.0, read_timeout=2.0, attempts=2, backoff=0.01, max_backoff=0.02, allow_private=allow_private)


@pytest.fixture
def site() -> Iterator[ProductSite]:
    with ProductSite() as server:
        yield server


@pytest.fixture
def analyzer() -> Iterator[ProductPageAnalyzer]:
    reader = ProductPageAnalyzer(options(), max_bytes=2 * MB, max_redirects=5)
    yield reader
    reader.close()


def failure(analyzer: PageAnalyzer, url: str) -> ProviderError:
    with pytest.raises(ProviderError) as caught:
        analyzer.analyze(url)
    return caught.value


def ld_script(data: object) -> str:
    return f'<script type="application/ld+json">{json.dumps(data)}</script>'


def test_opengraph_page_when_analyzed_then_opengraph_fields(site: ProductSite, analyzer: ProductPageAnalyzer) -> None:
    url = site.page("/p/kettle", OPENGRAPH)

    page = analyzer.analyze(url)

    assert (page.url, page.title, page.description) == (url, "Steel Kettle", "Boils a litre in two minutes.")
    assert (page.price, page.currency, page.brand) == ("39.00", "EUR", "Brewline")
    assert page.images == (f"{site.url}/img/kettle.jpg",)
    assert page.source == ("opengraph",)


def test_json_ld_page_with_graph_and_offer_list_when_analyzed_then_json_ld_fields(site: ProductSite, analyzer: ProductPageAnalyzer) -> None:
    url = site.page("/shop/copper", f"<html><head>{ld_script(JSON_LD)}</head><body><h1>Copper</h1></body></html>")

    page = analyzer.analyze(url)

    assert (page.title, page.description, page.brand) == ("Copper Kettle", "Hand-hammered copper.", "Hammer & Co")
    assert (page.price, page.currency) == ("89.5", "GBP")
    assert page.images == ("https://cdn.example/copper.jpg", f"{site.url}/shop/images/copper-side.jpg")
    assert page.source == ("json-ld",)


def test_json_ld_and_opengraph_page_when_analyzed_then_json_ld_wins(site: ProductSite, analyzer: ProductPageAnalyzer) -> None:
    url = site.page("/both", OPENGRAPH.replace("</head>", ld_script(JSON_LD) + "</head>"))

    page = analyzer.analyze(url)

    assert (page.title, page.brand, page.price, page.currency) == ("Copper Kettle", "Hammer & Co", "89.5", "GBP")
    assert page.images[:2] == ("https://cdn.example/copper.jpg", f"{site.url}/images/copper-side.jpg")
    assert f"{site.url}/img/kettle.jpg" in page.images
    assert page.source == ("json-ld", "opengraph")


def test_plain_html_page_when_analyzed_then_title_description_and_images(site: ProductSite, analyzer: ProductPageAnalyzer) -> None:
    html = """<html><head><title>Teapot – Shop</title><meta name="description" content="A glass teapot.">
    </head><body><img src="/logo.png"><img src="photos/teapot.jpg" width="600" height="600"></body></html>"""
    url = site.page("/catalog/teapot", html)

    page = analyzer.analyze(url)

    assert (page.title, page.description) == ("Teapot – Shop", "A glass teapot.")
    assert page.images == (f"{site.url}/catalog/photos/teapot.jpg",)
    assert (page.price, page.currency, page.brand) == (None, None, None)
    assert page.source == ("html",)


def test_missing_page_when_analyzed_then_page_not_found(site: ProductSite, analyzer: ProductPageAnalyzer) -> None:
    error = failure(analyzer, f"{site.url}/no-such-product")

    assert (error.code, error.retryable) == ("page_not_found", False)


def test_server_error_when_analyzed_then_retried_and_page_unreachable(site: ProductSite, analyzer: ProductPageAnalyzer) -> None:
    url = site.page("/down", "<h1>Oops</h1>", status=503)

    error = failure(analyzer, url)

    assert (error.code, error.retryable) == ("page_unreachable", True)
    assert len(site.seen("GET", "/down")) == 2


def test_ten_mb_streamed_page_when_analyzed_then_page_too_large_without_reading_it_all(
    site: ProductSite, analyzer: ProductPageAnalyzer
) -> None:
    streamed = Streamed(total=10 * MB, chunk=64 * 1024, pause=0.01)
    url = site.stream("/huge", streamed)

    started = time.monotonic()
    error = failure(analyzer, url)
    elapsed = time.monotonic() - started

    assert error.code == "page_too_large"
    time.sleep(0.1)  # let the server notice the closed connection
    assert site.sent["/huge"] < 4 * MB
    assert elapsed < streamed.total / streamed.chunk * streamed.pause  # sending it all takes longer than this


def test_ten_mb_page_with_content_length_when_analyzed_then_refused_from_the_headers(
    site: ProductSite, analyzer: ProductPageAnalyzer
) -> None:
    url = site.page("/huge-declared", b"<p>" + b"x" * (10 * MB) + b"</p>")

    started = time.monotonic()
    error = failure(analyzer, url)

    assert error.code == "page_too_large"
    assert time.monotonic() - started < 1.0


def test_redirect_loop_when_analyzed_then_too_many_redirects_after_the_cap(site: ProductSite, analyzer: ProductPageAnalyzer) -> None:
    url = site.redirect("/loop", "/loop")

    error = failure(analyzer, url)

    assert (error.code, error.retryable) == ("too_many_redirects", False)
    assert len(site.seen("GET", "/loop")) == 6  # the first request and five redirects followed


def test_redirects_within_the_cap_when_analyzed_then_final_url_reported(site: ProductSite, analyzer: ProductPageAnalyzer) -> None:
    site.redirect("/short", "/p/kettle?utm=ad", status=301)
    site.page("/p/kettle", OPENGRAPH)

    page = analyzer.analyze(f"{site.url}/short")

    assert page.url == f"{site.url}/p/kettle?utm=ad"
    assert page.images == (f"{site.url}/img/kettle.jpg",)


def test_loopback_url_with_the_guard_on_when_analyzed_then_refused_before_any_request(site: ProductSite) -> None:
    url = site.page("/p/kettle", OPENGRAPH)
    guarded = ProductPageAnalyzer(options(allow_private=False))
    try:
        error = failure(guarded, url)
    finally:
        guarded.close()

    assert (error.code, error.retryable) == ("url_not_allowed", False)
    assert site.requests == []


def test_redirect_to_a_private_address_with_the_guard_on_when_analyzed_then_refused_at_that_hop(
    site: ProductSite, monkeypatch: pytest.MonkeyPatch
) -> None:
    real = outbound_http.is_public_address
    monkeypatch.setattr(outbound_http, "is_public_address", lambda address: str(address) == "127.0.0.1" or real(address))
    site.redirect("/go", "http://127.0.0.2:9/admin")  # 127.0.0.1 passes as public here; 127.0.0.2 stays loopback
    guarded = ProductPageAnalyzer(options(allow_private=False))
    try:
        error = failure(guarded, f"{site.url}/go")
    finally:
        guarded.close()

    assert error.code == "url_not_allowed"
    assert [r.path for r in site.requests] == ["/go"]


@pytest.mark.parametrize("location", ["file:///etc/passwd", "ftp://files.example/kettle.html"])
def test_redirect_to_another_scheme_when_analyzed_then_url_not_allowed(
    site: ProductSite, analyzer: ProductPageAnalyzer, location: str
) -> None:
    url = site.redirect("/go", location)

    assert failure(analyzer, url).code == "url_not_allowed"


@pytest.mark.parametrize("url", ["javascript:alert(1)", "/relative/path", "http://[::1"])
def test_malformed_or_non_http_url_when_analyzed_then_url_not_allowed(analyzer: ProductPageAnalyzer, url: str) -> None:
    assert failure(analyzer, url).code == "url_not_allowed"


@pytest.mark.parametrize("content_type", ["application/json", "image/jpeg", "text/plain"])
def test_non_html_content_type_when_analyzed_then_page_not_html(
    site: ProductSite, analyzer: ProductPageAnalyzer, content_type: str
) -> None:
    url = site.page("/feed", b'{"title": "Kettle"}', content_type=content_type)

    error = failure(analyzer, url)

    assert (error.code, error.retryable) == ("page_not_html", False)


def test_xhtml_page_when_analyzed_then_read(site: ProductSite, analyzer: ProductPageAnalyzer) -> None:
    url = site.page("/x", OPENGRAPH, content_type="application/xhtml+xml; charset=utf-8")

    assert analyzer.analyze(url).title == "Steel Kettle"


def test_relative_image_urls_when_analyzed_then_resolved_against_the_final_url(site: ProductSite, analyzer: ProductPageAnalyzer) -> None:
    site.redirect("/old/kettle", "/new/items/kettle")
    html = """<html><head><meta property="og:image" content="../media/a.jpg"><meta property="og:image" content="b.jpg">
    <meta property="og:image" content="/root.jpg"><meta property="og:image" content="//cdn.example/c.jpg"></head></html>"""
    site.page("/new/items/kettle", html)

    page = analyzer.analyze(f"{site.url}/old/kettle")

    assert page.images == (f"{site.url}/new/media/a.jpg", f"{site.url}/new/items/b.jpg", f"{site.url}/root.jpg", "http://cdn.example/c.jpg")


def test_page_in_a_header_charset_when_analyzed_then_decoded(site: ProductSite, analyzer: ProductPageAnalyzer) -> None:
    html = '<html><head><meta property="og:title" content="Чайник «Самовар»"></head></html>'
    url = site.page("/ru", html.encode("windows-1251"), content_type="text/html; charset=windows-1251")

    assert analyzer.analyze(url).title == "Чайник «Самовар»"


def test_page_in_a_meta_charset_when_analyzed_then_decoded(site: ProductSite, analyzer: ProductPageAnalyzer) -> None:
    html = '<html><head><meta charset="iso-8859-1"><title>Bouilloire crème – 20 €</title></head></html>'
    url = site.page("/fr", html.encode("cp1252"), content_type="text/html")

    assert analyzer.analyze(url).title == "Bouilloire crème – 20 €"
