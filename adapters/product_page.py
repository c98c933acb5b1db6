"""Product page analysis: fetch a shop's page safely and read title, description, price, brand and images.

`ProductPageAnalyzer.analyze` GETs the page through the guarded outbound client (`outbound_http`):
redirects are followed here, one hop at a time, so the address guard checks every hop and the count
is capped; only `text/html` and `application/xhtml+xml` are read, streamed and abandoned past
`max_bytes`; the text is decoded as the HTML standard says (byte-order mark, then the header's
charset, then a `<meta>` charset in the first bytes, then UTF-8, then windows-1252).

`extract` is the pure part: JSON-LD `Product` (top level, in lists, in `@graph` or nested under
another node) beats OpenGraph (`og:*`, `product:*`), which beats plain HTML (`<title>`, the meta
description, the first large `<img>`s), field by field. Images come from JSON-LD and OpenGraph
together; `<img>` tags only when neither names any. Malformed JSON-LD is skipped.
"""

from __future__ import annotations

import codecs
import json
import time
from collections.abc import Callable, Iterator
from decimal import Decimal
from typing import Any
from urllib.parse import urljoin, urlsplit

import httpx
from selectolax.lexbor import LexborHTMLParser, LexborNode

from adapters.outbound_http import Outbound, OutboundOptions, backoff_delay
from application.ports import PageSource, ProductPage, ProviderError

MAX_BYTES = 2 * 1024 * 1024
MAX_REDIRECTS = 5
TOTAL_TIMEOUT = 30.0  # seconds for the whole fetch: the read timeout alone lets a trickling server go on for ever
MAX_IMAGES = 10
TITLE_LIMIT = 200
DESCRIPTION_LIMIT = 5000
PRESCAN_BYTES = 4096  # where a <meta charset> may sit (the standard says 1024; real pages are sloppier)
LARGE_IMAGE = 200  # pixels: a declared width or height below this is an icon, not the product
JSON_LD_DEPTH = 12

HTML_TYPES = frozenset({"text/html", "application/xhtml+xml"})
REDIRECT_STATUSES = frozenset({301, 302, 303, 307, 308})
NOT_PRODUCT_IMAGE_HINTS = ("logo", "icon", "sprite", "pixel", "spacer", "avatar", "badge", "placeholder")
ACCEPT = "text/html,application/xhtml+xml;q=0.9,*/*;q=0.1"


class ProductPageAnalyzer:
    """Reads product pages over guarded HTTP; `close()` it when done."""

    def __init__(
        self,
        options: OutboundOptions,
        *,
        max_bytes: int = MAX_BYTES,
        max_redirects: int = MAX_REDIRECTS,
        total_timeout: float = TOTAL_TIMEOUT,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.outbound = Outbound(options, provider="product_page")
        self.max_bytes = max_bytes
        self.max_redirects = max_redirects
        self.total_timeout = total_timeout
        self._sleep = sleep

    def analyze(self, url: str) -> ProductPage:
        final_url, body, content_type = self.fetch(url)
        return extract(decode_html(body, content_type), final_url)

    def fetch(self, url: str) -> tuple[str, bytes, str]:
        """The final URL, body and Content-Type of an HTML page, with retries for transient failures."""
        o = self.outbound.options
        for attempt in range(1, o.attempts + 1):
            try:
                return self._fetch_once(url)
            except ProviderError as error:
                if not error.retryable or attempt == o.attempts:
                    raise
                self._sleep(backoff_delay(attempt, backoff=o.backoff, max_backoff=o.max_backoff))
        raise AssertionError("unreachable")  # pragma: no cover

    def close(self) -> None:
        self.outbound.close()

    def _fetch_once(self, url: str) -> tuple[str, bytes, str]:
        deadline = time.monotonic() + self.total_timeout
        current = _parse_url(url)
        for _hop in range(self.max_redirects + 1):
            response = self._get(current)
            try:
                if response.status_code in REDIRECT_STATUSES:
                    current = _redirect_target(response)
                    continue
                _check_status(response)
                content_type = response.headers.get("Content-Type", "")
                if _media_type(content_type) not in HTML_TYPES:
                    raise ProviderError("page_not_html", f"The page is not HTML ({content_type or 'no Content-Type'})", retryable=False)
                return str(current), self._read(response, deadline), content_type
            finally:
                response.close()
        raise ProviderError("too_many_redirects", f"The page redirected more than {self.max_redirects} times", retryable=False)

    def _get(self, url: httpx.URL) -> httpx.Response:
        client = self.outbound.client
        try:  # the client's request hook refuses URLs the address guard does not allow (url_not_allowed)
            return client.send(client.build_request("GET", url, headers={"Accept": ACCEPT}), stream=True, follow_redirects=False)
        except httpx.TimeoutException:
            raise ProviderError("page_unreachable", f"{url.host} did not answer in time", retryable=True) from None
        except httpx.UnsupportedProtocol:
            raise ProviderError("url_not_allowed", "Only http(s) URLs are allowed", retryable=False) from None
        except httpx.TransportError as error:
            raise ProviderError("page_unreachable", f"{url.host} could not be reached: {error}", retryable=True) from None

    def _read(self, response: httpx.Response, deadline: float) -> bytes:
        declared = response.headers.get("Content-Length", "")
        if declared.isdigit() and int(declared) > self.max_bytes:
            raise _too_large(self.max_bytes)
        chunks: list[bytes] = []
        size = 0
        try:
            for chunk in response.iter_bytes():  # decoded: the cap also holds against a compressed bomb
                size += len(chunk)
                if size > self.max_bytes:
                    raise _too_large(self.max_bytes)
                if time.monotonic() > deadline:
                    raise ProviderError("page_unreachable", f"The page took longer than {self.total_timeout:g} s to load", retryable=False)
                chunks.append(chunk)
        except httpx.TimeoutException:
            raise ProviderError("page_unreachable", "The page stopped arriving (read timeout)", retryable=True) from None
        except httpx.DecodingError:
            raise ProviderError("page_unreachable", "The page's content encoding is broken", retryable=False) from None
        except httpx.TransportError as error:
            raise ProviderError("page_unreachable", f"The connection broke while reading the page: {error}", retryable=True) from None
        return b"".join(chunks)


def _parse_url(url: str) -> httpx.URL:
    try:
        parsed = httpx.URL(url.strip())
    except httpx.InvalidURL:
        raise ProviderError("url_not_allowed", "The product URL is not a valid URL", retryable=False) from None
    if parsed.scheme not in ("http", "https") or not parsed.host:
        raise ProviderError("url_not_allowed", "Only http(s) URLs with a host are allowed", retryable=False)
    return parsed


def _redirect_target(response: httpx.Response) -> httpx.URL:
    location = response.headers.get("Location")
    if not location:
        raise ProviderError("page_unreachable", f"HTTP {response.status_code} redirect without a Location", retryable=False)
    try:
        return response.url.join(location.strip()).copy_with(fragment=None)
    except httpx.InvalidURL:
        raise ProviderError("page_unreachable", "The page redirected to an invalid URL", retryable=False) from None


def _check_status(response: httpx.Response) -> None:
    status = response.status_code
    if response.is_success:
        return
    if status in (404, 410):
        raise ProviderError("page_not_found", f"The page does not exist (HTTP {status})", retryable=False)
    retryable = status == 429 or status >= 500
    raise ProviderError("page_unreachable", f"The shop answered HTTP {status}", retryable=retryable)


def _too_large(max_bytes: int) -> ProviderError:
    return ProviderError("page_too_large", f"The page is larger than {max_bytes} bytes", retryable=False)


def _media_type(content_type: str) -> str:
    return content_type.split(";", 1)[0].strip().lower()


# --- decoding ------------------------------------------------------------------------------------

BOMS = ((codecs.BOM_UTF8, "utf-8"), (codecs.BOM_UTF16_LE, "utf-16-le"), (codecs.BOM_UTF16_BE, "utf-16-be"))


def decode_html(body: bytes, content_type: str = "") -> str:
    """The page's text: the byte-order mark, else the header's charset, else a `<meta>` charset, else
    UTF-8 if it decodes, else windows-1252 (what browsers assume). Undecodable bytes become U+FFFD."""
    for bom, bom_encoding in BOMS:
        if body.startswith(bom):
            return body[len(bom) :].decode(bom_encoding, "replace")
    encoding = _encoding(_charset_param(content_type)) or _encoding(_meta_charset(body[:PRESCAN_BYTES]), from_meta=True)
    if encoding:
        return body.decode(encoding, "replace")
    try:
        return body.decode("utf-8")
    except UnicodeDecodeError:
        return body.decode("cp1252", "replace")


def _charset_param(content_type: str) -> str | None:
    for param in content_type.split(";")[1:]:
        name, _, value = param.partition("=")
        if name.strip().lower() == "charset":
            return value.strip().strip("\"'")
    return None


def _meta_charset(head: bytes) -> str | None:
    """The charset a `<meta charset>` or `<meta http-equiv="Content-Type">` declares in these first bytes."""
    tree = LexborHTMLParser(head.decode("cp1252", "replace"))  # ASCII-compatible: tag and attribute names survive
    for meta in tree.css("meta"):
        attrs = meta.attributes
        charset = attrs.get("charset")
        if charset:
            return charset.strip()
        if (attrs.get("http-equiv") or "").strip().lower() == "content-type":
            found = _charset_param(attrs.get("content") or "")
            if found:
                return found
    return None


def _encoding(label: str | None, *, from_meta: bool = False) -> str | None:
    """A Python codec for a charset label, with the HTML standard's aliases; None if unknown."""
    if not label:
        return None
    try:
        name = codecs.lookup(label.strip().lower()).name
    except LookupError:
        return None
    if name in ("latin-1", "iso8859-1", "ascii"):
        return "cp1252"  # browsers read these labels as windows-1252
    if from_meta and name.startswith("utf-16"):
        return "utf-8"  # a page that can declare itself in ASCII is not UTF-16
    return name


# --- extraction ----------------------------------------------------------------------------------


class _Fields:
    """What one source says; every attribute may be missing."""

    def __init__(self) -> None:
        self.title: str | None = None
        self.description: str | None = None
        self.price: str | None = None
        self.currency: str | None = None
        self.brand: str | None = None
        self.images: list[str] = []

    def any(self) -> bool:
        return any((self.title, self.description, self.price, self.currency, self.brand, self.images))


def extract(page: str, base_url: str) -> ProductPage:
    """Read a product page's HTML; `base_url` is where it was fetched from (relative URLs resolve against it)."""
    tree = LexborHTMLParser(page)
    base = _document_base(tree, base_url)
    layers: list[tuple[PageSource, _Fields]] = [
        ("json-ld", _from_json_ld(tree, base)),
        ("opengraph", _from_opengraph(tree, base)),
        ("html", _from_html(tree, base)),
    ]
    used: list[PageSource] = []

    def first(field: str) -> str | None:
        for name, fields in layers:
            value: str | None = getattr(fields, field)
            if value:
                if name not in used:
                    used.append(name)
                return value
        return None

    title = first("title") or ""
    description = first("description") or ""
    price = first("price")
    currency = None
    if price:  # the currency of the source that gave the price, else any other's
        currency = next(fields.currency for _, fields in layers if fields.price) or first("currency")
    brand = first("brand")
    images: list[str] = []
    for name, fields in layers:
        if name == "html" and images:
            break
        if fields.images and name not in used:
            used.append(name)
        images.extend(fields.images)
    return ProductPage(
        url=base_url,
        title=_clip(title, TITLE_LIMIT),
        description=_clip(description, DESCRIPTION_LIMIT),
        price=price,
        currency=currency,
        brand=brand,
        images=tuple(dict.fromkeys(images))[:MAX_IMAGES],
        source=tuple(name for name, _ in layers if name in used),
    )


def _document_base(tree: LexborHTMLParser, url: str) -> str:
    node = tree.css_first("base[href]")
    href = (node.attributes.get("href") or "").strip() if node is not None else ""
    return urljoin(url, href) if href else url


def _absolute(base: str, src: str | None) -> str | None:
    src = (src or "").strip()
    if not src or src.startswith("data:"):
        return None
    url = urljoin(base, src)
    parts = urlsplit(url)
    return url if parts.scheme in ("http", "https") and parts.netloc else None


def _text(value: str | None) -> str | None:
    """Whitespace collapsed; None if nothing is left."""
    if value is None:
        return None
    text = " ".join(value.split())
    return text or None


def _clip(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1].rstrip() + "…"


# OpenGraph


def _from_opengraph(tree: LexborHTMLParser, base: str) -> _Fields:
    found: dict[str, str] = {}
    images: list[str] = []
    for meta in tree.css("meta"):
        attrs = meta.attributes
        key = (attrs.get("property") or attrs.get("name") or "").strip().lower()
        content = _text(attrs.get("content"))
        if not key or content is None:
            continue
        if key in ("og:image", "og:image:url", "og:image:secure_url"):
            image = _absolute(base, content)
            if image:
                images.append(image)
        else:
            found.setdefault(key, content)
    fields = _Fields()
    fields.title = found.get("og:title")
    fields.description = found.get("og:description")
    fields.price = _price(found.get("product:price:amount") or found.get("og:price:amount"))
    fields.currency = _currency(found.get("product:price:currency") or found.get("og:price:currency"))
    fields.brand = found.get("product:brand") or found.get("og:brand")
    fields.images = images
    return fields


# JSON-LD


def _from_json_ld(tree: LexborHTMLParser, base: str) -> _Fields:
    fields = _Fields()
    product = next(_products(tree), None)
    if product is None:
        return fields
    fields.title = _plain(_first_string(product.get("name")))
    fields.description = _plain(_first_string(product.get("description")))
    fields.brand = _brand(product.get("brand"))
    fields.price, fields.currency = _offer(product.get("offers"))
    fields.images = [url for url in (_absolute(base, src) for src in _image_urls(product.get("image"))) if url]
    return fields


def _products(tree: LexborHTMLParser) -> Iterator[dict[str, Any]]:
    for script in tree.css("script"):
        if (script.attributes.get("type") or "").strip().lower() != "application/ld+json":
            continue
        try:
            data = json.loads(script.text(), parse_float=Decimal)
        except (ValueError, RecursionError):
            continue  # malformed JSON-LD is common; the other sources still count
        yield from _walk(data, 0)


def _walk(node: Any, depth: int) -> Iterator[dict[str, Any]]:
    """Product nodes anywhere in a JSON-LD document, in document order (a `@graph`, a list, a page's mainEntity)."""
    if depth > JSON_LD_DEPTH:
        return
    if isinstance(node, list):
        for item in node:
            yield from _walk(item, depth + 1)
    elif isinstance(node, dict):
        if _is_product(node.get("@type")):
            yield node
        for key, value in node.items():
            if key != "@context" and isinstance(value, (dict, list)):
                yield from _walk(value, depth + 1)


def _is_product(kind: Any) -> bool:
    kinds = kind if isinstance(kind, list) else [kind]
    return any(isinstance(k, str) and k.rsplit("/", 1)[-1].rsplit(":", 1)[-1] in ("Product", "ProductGroup") for k in kinds)


def _first_string(value: Any) -> str | None:
    if isinstance(value, list):
        value = next((v for v in value if isinstance(v, str) and v.strip()), None)
    return value if isinstance(value, str) else None


def _plain(value: str | None) -> str | None:
    """JSON-LD text as shown: shops often put escaped HTML in descriptions."""
    if value is not None and ("<" in value or "&" in value):
        value = LexborHTMLParser(value).text(separator=" ")  # tags dropped, entities decoded once
    return _text(value)


def _brand(value: Any) -> str | None:
    if isinstance(value, list):
        return next((b for b in (_brand(v) for v in value) if b), None)
    if isinstance(value, dict):
        value = value.get("name")
    return _plain(_first_string(value))


def _offer(value: Any) -> tuple[str | None, str | None]:
    """(price, currency) of the first offer that has a price: an Offer, an AggregateOffer, a list of them."""
    offers = value if isinstance(value, list) else [value]
    for offer in offers:
        if not isinstance(offer, dict):
            continue
        if isinstance(offer.get("offers"), (dict, list)):  # AggregateOffer holding its offers
            found = _offer(offer["offers"])
            if found[0]:
                return found
        specs = offer.get("priceSpecification")
        candidates = [offer, *(specs if isinstance(specs, list) else [specs])]
        for candidate in candidates:
            if not isinstance(candidate, dict):
                continue
            price = _price(candidate.get("price")) or _price(candidate.get("lowPrice"))
            if price:
                return price, _currency(candidate.get("priceCurrency") or offer.get("priceCurrency"))
    return None, None


def _image_urls(value: Any) -> Iterator[str]:
    if isinstance(value, str):
        yield value
    elif isinstance(value, list):
        for item in value:
            yield from _image_urls(item)
    elif isinstance(value, dict):  # ImageObject
        url = value.get("url") or value.get("contentUrl")
        if isinstance(url, (str, list)):
            yield from _image_urls(url)


def _price(value: Any) -> str | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, (int, Decimal)):
        return str(value)
    if isinstance(value, float):
        return repr(value)
    return _text(value) if isinstance(value, str) else None


def _currency(value: Any) -> str | None:
    text = _text(value) if isinstance(value, str) else None
    return text.upper() if text else None


# HTML


def _from_html(tree: LexborHTMLParser, base: str) -> _Fields:
    fields = _Fields()
    title = tree.css_first("title")
    fields.title = _text(title.text()) if title is not None else None
    for meta in tree.css("meta"):
        attrs = meta.attributes
        if (attrs.get("name") or "").strip().lower() == "description":
            fields.description = _text(attrs.get("content"))
            if fields.description:
                break
    fields.images = [url for url in (_absolute(base, _img_src(img)) for img in tree.css("img") if _looks_large(img)) if url]
    return fields


def _img_src(img: LexborNode) -> str | None:
    attrs = img.attributes
    return attrs.get("src") or attrs.get("data-src")  # data-src: lazy-loading scripts fill src later


def _looks_large(img: LexborNode) -> bool:
    """Not an icon, logo, tracking pixel or vector decoration, as far as the tag can tell."""
    src = (_img_src(img) or "").lower()
    if not src or src.startswith("data:") or urlsplit(src).path.endswith(".svg"):
        return False
    if any(hint in src for hint in NOT_PRODUCT_IMAGE_HINTS):
        return False
    for dimension in ("width", "height"):
        declared = (img.attributes.get(dimension) or "").strip().removesuffix("px")
        if declared.isdigit() and int(declared) < LARGE_IMAGE:
            return False
    return True
