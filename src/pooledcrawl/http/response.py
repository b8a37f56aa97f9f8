"""The Response model spiders see, whichever transport fetched it."""

from __future__ import annotations

import codecs
import functools
import re
import threading
from collections.abc import Iterator, Mapping
from typing import TYPE_CHECKING, Any

import orjson
from w3lib.encoding import (
    html_body_declared_encoding,
    html_to_unicode,
    http_content_type_encoding,
    read_bom,
    resolve_encoding,
)

from pooledcrawl.http.url import _PLAIN_ROOT_RE, Resolver

if TYPE_CHECKING:
    from parsel import Selector, SelectorList

    from pooledcrawl.http.request import Callback, Request
    from pooledcrawl.metrics.timing import Timing

__all__ = ["Response", "document_type"]

_CHARSET_RE = re.compile(r"charset=[\"']?([\w.:-]+)", re.I)
# what str.strip() removes from an ASCII string and bytes.strip() does not
_STR_ONLY_SPACE = frozenset(b"\x1c\x1d\x1e\x1f")
_XML_DECLARATION = re.compile(r"[\s\ufeff]*<\?xml\s")
# what bytes.strip() would leave starting with "<"
_ANY_MARKUP_START = re.compile(rb"[ \t\n\r\x0b\x0c]*<")
# the same, but not "<?xml": with no Content-Type, sniffing such a page needs its
# root element (see _sniff)
_MARKUP_START = re.compile(rb"[ \t\n\r\x0b\x0c]*<(?!\?xml)")
# an XHTML page behind its XML declaration: the doctype or root element says html
_XHTML_ROOT = re.compile(r"<(?:!doctype\s+html|html[\s>/])", re.I)
#: how far w3lib's html_body_declared_encoding looks for a declaration
_W3LIB_SCAN = 4096
_META_CHARSET = re.compile(rb"<meta\s[^>]*charset", re.I)
_BASE_TAG = re.compile(rb"<base[\s/>]", re.I)
# "prefix:name" in an XPath (not an axis's "::"); string literals may match too: harmless
_PREFIX_RE = re.compile(r"[\w.-]:(?!:)")
# the first <base> or <body> tag: a document's base URL comes from a <base href> in
# its head, so the search stops where the body starts
_BASE_OR_BODY = re.compile(rb"<(base|body)[\s/>]", re.I)
#: lxml parse errors after which parsel decodes the page itself, with replacements
_ENCODING_ERRORS = frozenset({9, 81})  # ERR_INVALID_CHAR, ERR_INVALID_ENCODING
#: per-thread lxml HTML parsers: a cache, not crawl state
_PARSERS = threading.local()


class Response:
    """An HTTP response. Text and selectors are decoded and parsed only when used."""

    __slots__ = (
        "_resolver",
        "_selector",
        "_text",
        "body",
        "encoding_hint",
        "headers",
        "http_version",
        "request",
        "status",
        "timing",
        "url",
        "wire_bytes",
    )

    def __init__(
        self,
        url: str,
        status: int,
        headers: Mapping[str, str],
        body: bytes,
        request: Request,
        http_version: str = "HTTP/1.1",
    ) -> None:
        self.url = url
        self.status = status
        self.headers = headers
        self.body = body
        self.request = request
        self.http_version = http_version
        #: what the transport measured (latency, pool wait, connection reuse), if anything
        self.timing: Timing | None = None
        #: bytes on the wire for the exchange, when the transport counts them (cost)
        self.wire_bytes = 0
        self.encoding_hint: str | None = None
        self._text: str | None = None
        self._selector: Selector | None = None
        self._resolver: Resolver | None = None

    @property
    def meta(self) -> dict[str, Any]:
        return self.request.meta

    @property
    def text(self) -> str:
        """The body decoded with the declared charset (header, BOM or ``<meta>``),
        falling back to UTF-8 with replacement characters. Never raises."""
        if self._text is None:
            self._text = self._decode()
        return self._text

    def _decode(self) -> str:
        content_type = self.headers.get("Content-Type", "") or ""
        match = _CHARSET_RE.search(content_type)
        if match is not None and not self.body.startswith((b"\xef\xbb\xbf", b"\xff", b"\xfe")):
            encoding = resolve_encoding(match.group(1))
            if encoding is not None:
                self.encoding_hint = encoding
                return self.body.decode(encoding, "replace")
        try:
            encoding, text = html_to_unicode(
                content_type, self.body, auto_detect_fun=_late_declared
            )
        except (LookupError, ValueError):
            encoding, text = "utf-8", self.body.decode("utf-8", "replace")
        self.encoding_hint = encoding
        return text

    def _encoding(self) -> str:
        """The charset ``text`` decodes with, found the same way but without decoding."""
        content_type = self.headers.get("Content-Type", "") or ""
        body = self.body
        match = _CHARSET_RE.search(content_type)
        if match is not None and not body.startswith((b"\xef\xbb\xbf", b"\xff", b"\xfe")):
            encoding = resolve_encoding(match.group(1))
            if encoding is not None:
                return encoding
        bom, _ = read_bom(body)
        return (
            bom
            or http_content_type_encoding(content_type)
            or _declared(body)
            or _late_declared(body)
            or "utf-8"
        )

    def json(self) -> Any:
        """The body parsed as JSON (orjson)."""
        return orjson.loads(self.body)

    @property
    def selector(self) -> Selector:
        if self._selector is None:
            from parsel import Selector

            self._selector = self._parse(Selector)
        return self._selector

    def _parse(self, selector_cls: type[Selector]) -> Selector:
        """The page parsed as its Content-Type says (``document_type``), sniffed
        only when the header names no markup or JSON type. HTML is the common case,
        and a UTF-8 page goes to lxml as bytes instead of being decoded and encoded
        again; the result is what ``Selector(text=self.text, type=...)`` gives."""
        body = self.body
        kind = document_type(self.headers.get("Content-Type", "") or "")
        if (
            self._text is None
            and (kind == "html" or (kind is None and _MARKUP_START.match(body) is not None))
            and self._plain_markup(body)
            and _is_utf8(self._encoding())
        ):
            root = _utf8_html_root(body)
            if root is not None:
                return selector_cls(root=root, type="html")
            return selector_cls(body=body, encoding="utf-8", type="html")
        text = self.text
        return selector_cls(text=text, type=kind or _sniff(text))

    @staticmethod
    def _plain_markup(body: bytes) -> bool:
        """HTML whose bytes parsel strips and cleans exactly as it would its text:
        it starts with ``<`` and ends in ASCII that both ``str.strip`` and
        ``bytes.strip`` agree on, with no NUL (parsel drops those from text)."""
        if _ANY_MARKUP_START.match(body) is None or b"\x00" in body:
            return False
        tail = body[-64:].rstrip() or body.rstrip()  # no copy of the whole page
        return bool(tail) and tail[-1] < 0x80 and tail[-1] not in _STR_ONLY_SPACE

    def css(self, query: str) -> SelectorList[Selector]:
        selector = self.selector
        if selector.type == "html":
            xpath = _css_to_xpath(query)
            found = _evaluate(selector, xpath)
            if found is not None:
                # what parsel's css() builds, without its per-call namespace bookkeeping
                cls = type(selector)
                return selector.selectorlist_cls(
                    [
                        cls(root=x, _expr=xpath, namespaces=selector.namespaces, type="html")
                        for x in found
                    ]
                )
        return selector.css(query)

    def xpath(self, query: str, **kwargs: Any) -> SelectorList[Selector]:
        return self.selector.xpath(query, **kwargs)

    @property
    def base_url(self) -> str:
        """What this page's links resolve against: its ``<base href>`` if the head
        has one (resolved against the page URL, as browsers do), else its URL."""
        return self._links().base or self.url

    def _links(self) -> Resolver:
        if self._resolver is None:
            self._resolver = Resolver(self._base_href())
        return self._resolver

    def _base_href(self) -> str:
        found = _BASE_OR_BODY.search(self.body)
        if found is None or found.group(1).lower() != b"base":
            return self.url
        hrefs = _evaluate(self.selector, "(//base[@href])[1]/@href")
        if not hrefs or not isinstance(hrefs[0], str):
            return self.url
        base = Resolver(self.url).base_join(hrefs[0], self._link_encoding)
        # a javascript: or data: base would leave every relative link unfetchable
        return base if base and base.startswith(("http://", "https://")) else self.url

    def _link_encoding(self) -> str:
        return self.encoding_hint or self._encoding()

    def urljoin(self, href: str) -> str:
        """Resolve a link found on this page as a browser would (WHATWG URL Standard,
        against the page's base URL); an href no browser can resolve comes back as
        written, and the engine counts it as InvalidURL if it is followed."""
        return self._links().join(href, self._link_encoding)

    def follow(
        self, href: str | Selector, callback: Callback | None = None, **kwargs: Any
    ) -> Request:
        """A Request for a link on this page (a URL, or an ``<a>``/attribute selector)."""
        from pooledcrawl.http.request import Request

        url = href if isinstance(href, str) else _href_of(href)
        if url is None:
            raise ValueError(f"selector {href!r} has no href")
        return Request(self.urljoin(url), callback, **kwargs)

    def follow_all(
        self,
        urls: list[str] | None = None,
        callback: Callback | None = None,
        *,
        css: str | None = None,
        xpath: str | None = None,
        **kwargs: Any,
    ) -> Iterator[Request]:
        """Requests for many links: given URLs, or the elements a css/xpath query finds.
        Links to schemes the crawler cannot fetch (mailto:, tel:, javascript:...) are
        yielded too: the engine skips them and counts them as ``links_skipped``."""
        from pooledcrawl.http.request import Request

        hrefs: list[str]
        if urls is not None:
            hrefs = list(urls)
        else:
            if css is None and xpath is None:
                raise ValueError("follow_all needs urls, css= or xpath=")
            hrefs = self._hrefs(css, xpath)
        links = self._links()
        origin, join, plain_root = links.origin, links.join, _PLAIN_ROOT_RE.match
        for href in hrefs:
            # plain root-relative links, the common case, joined inline (as join does)
            if origin is not None and href[:1] == "/" and plain_root(href) and "/." not in href:
                yield Request(origin + href, callback, **kwargs)
            else:
                yield Request(join(href, self._link_encoding), callback, **kwargs)

    def _hrefs(self, css: str | None, xpath: str | None) -> list[str]:
        """The links a css/xpath query finds. The common case evaluates a compiled
        XPath on the tree and reads ``href`` from the elements, without wrapping
        each one in a Selector first; anything unusual goes through parsel."""
        selector = self.selector
        if selector.type == "html":
            if css is not None and "::" not in css:
                # plain CSS selects elements: let lxml read their href, without a
                # Python proxy per element
                hrefs = _evaluate(selector, f"({_css_to_xpath(css)})/@href")
                if hrefs is not None:
                    return hrefs
            query = _css_to_xpath(css) if css is not None else xpath or ""
            nodes = _evaluate(selector, query)
            if nodes is not None:
                return [h for h in map(_href_of_node, nodes) if h is not None]
        found = self.css(css) if css is not None else self.xpath(xpath or "")
        return [h for h in map(_href_of, found) if h is not None]

    def __repr__(self) -> str:
        return f"<Response {self.status} {self.url}>"


@functools.lru_cache(maxsize=128)
def document_type(content_type: str) -> str | None:
    """The parser a Content-Type asks for: ``html`` for text/html and XHTML (as
    browsers and Scrapy's HtmlResponse do, whatever the body starts with),
    ``xml`` for ``*/xml`` and ``*+xml``, ``json`` for ``*/json`` and ``*+json``;
    None when the header is missing or names no such type (octet-stream,
    text/plain, ...): the body is sniffed then."""
    media = content_type.partition(";")[0].strip().lower()
    if media in ("text/html", "application/xhtml+xml"):
        return "html"
    if media.endswith(("/json", "+json")):
        return "json"
    if media.endswith(("/xml", "+xml")):
        return "xml"
    return None


def _sniff(text: str) -> str | None:
    """The type of a page with no useful Content-Type: markup is HTML unless an
    XML declaration opens it and no html doctype or root follows; anything else
    is left to parsel (JSON if it parses as a JSON document, else HTML)."""
    if not text.lstrip().startswith("<"):
        return None
    if _XML_DECLARATION.match(text) is not None and _XHTML_ROOT.search(text, 0, 2048) is None:
        return "xml"
    return "html"


def _href_of(sel: Selector) -> str | None:
    return _href_of_node(sel.root)


def _href_of_node(root: Any) -> str | None:
    if isinstance(root, str):
        return root
    get = getattr(root, "get", None)
    value = get("href") if get is not None else None
    return value if isinstance(value, str) else None


def _declared(body: bytes) -> str | None:
    """``html_body_declared_encoding(body)``, answered at once for the usual page: w3lib
    stops scanning at ``<body``, and before it only a meta tag naming "charset" or
    an XML declaration can declare anything (comments are skipped, so any comment
    there sends the page to w3lib)."""
    end = body.find(b"<body", 0, 4096)
    if end != -1:
        head = body[:end].lower()
        if b"charset" not in head and b"<?xml" not in head and b"<!--" not in head:
            return None
    return html_body_declared_encoding(body)


def _late_declared(body: bytes) -> str | None:
    """A ``<meta charset>`` in the head past the 4 KB w3lib scans: browsers honour
    one anywhere in the head (they start decoding again when the parser reaches
    it; HTML Standard, "changing the encoding while parsing"). Long inline
    scripts and styles put it there. Two ``find`` calls bound the search to the
    head, so a page with its ``<body>`` early pays nothing more."""
    if len(body) <= _W3LIB_SCAN:
        return None
    ends = [i for i in (body.find(b"<body"), body.find(b"<BODY")) if i != -1]
    end = min(ends) if ends else len(body)
    if end <= _W3LIB_SCAN:
        return None
    match = _META_CHARSET.search(body, _W3LIB_SCAN - 512, end)
    if match is None:
        return None
    return html_body_declared_encoding(body[match.start() : match.start() + 1024])


def _evaluate(selector: Selector, xpath: str) -> list[Any] | None:
    """The node list an XPath finds on an HTML selector's tree, from a compiled
    query; None when parsel must answer instead (a namespace prefix, an error,
    a result that is not a node list)."""
    evaluate = _compiled_xpath(xpath)
    if evaluate is None:
        return None
    try:
        found = evaluate(selector.root)
    except Exception:  # parsel raises its own error for it
        return None
    return found if isinstance(found, list) else None


def _utf8_html_root(body: bytes) -> Any | None:
    """The tree parsel would build from UTF-8 HTML bytes (``body`` is plain markup,
    see ``_plain_markup``), from a parser kept per thread: making one costs a tenth
    of a page's parse. None when parsel must parse it (invalid UTF-8, no tree)."""
    from lxml import etree, html

    parser = getattr(_PARSERS, "html", None)
    if parser is None:
        # lxml parsers must not be shared between threads
        parser = _PARSERS.html = html.HTMLParser(recover=True, encoding="utf-8", huge_tree=True)
    try:
        root = etree.fromstring(body.strip(), parser=parser)
    except etree.XMLSyntaxError:
        return None
    if root is None or any(e.type in _ENCODING_ERRORS for e in parser.error_log):
        return None
    return root


@functools.lru_cache(maxsize=64)
def _is_utf8(encoding: str) -> bool:
    try:
        return codecs.lookup(encoding).name == "utf-8"
    except LookupError:
        return False


@functools.lru_cache(maxsize=256)
def _css_to_xpath(query: str) -> str:
    from parsel import css2xpath

    result: str = css2xpath(query)
    return result


@functools.lru_cache(maxsize=256)
def _compiled_xpath(query: str) -> Any:
    """The query compiled once (as parsel does, with plain-string results); None
    when lxml refuses it, or when it names a namespace prefix (only parsel knows
    the selector's namespaces)."""
    from lxml import etree

    if _PREFIX_RE.search(query) is not None:
        return None
    try:
        return etree.XPath(query, smart_strings=False)
    except etree.XPathError:
        return None
