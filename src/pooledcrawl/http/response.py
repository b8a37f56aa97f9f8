"""The Response model spiders see, whichever transport fetched it."""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from typing import TYPE_CHECKING, Any

import orjson

from pooledcrawl.http.encoding import body_encoding, decode_body, is_utf8
from pooledcrawl.http.markup import (
    MARKUP_START,
    css_to_xpath,
    document_type,
    evaluate,
    href_of,
    href_of_node,
    plain_markup,
    sniff,
    utf8_html_root,
)
from pooledcrawl.http.url import _PLAIN_ROOT_RE, Resolver

if TYPE_CHECKING:
    from parsel import Selector, SelectorList

    from pooledcrawl.http.request import Callback, Request
    from pooledcrawl.metrics.timing import Timing

__all__ = ["Response", "document_type"]

# the first <base> or <body> tag: a document's base URL comes from a <base href> in
# its head, so the search stops where the body starts
_BASE_OR_BODY = re.compile(rb"<(base|body)[\s/>]", re.I)


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
        encoding, text = decode_body(self.headers.get("Content-Type", "") or "", self.body)
        self.encoding_hint = encoding
        return text

    def _encoding(self) -> str:
        """The charset ``text`` decodes with, found the same way but without decoding."""
        return body_encoding(self.headers.get("Content-Type", "") or "", self.body)

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
            and (kind == "html" or (kind is None and MARKUP_START.match(body) is not None))
            and plain_markup(body)
            and is_utf8(self._encoding())
        ):
            root = utf8_html_root(body)
            if root is not None:
                return selector_cls(root=root, type="html")
            return selector_cls(body=body, encoding="utf-8", type="html")
        text = self.text
        return selector_cls(text=text, type=kind or sniff(text))

    def css(self, query: str) -> SelectorList[Selector]:
        selector = self.selector
        if selector.type == "html":
            xpath = css_to_xpath(query)
            found = evaluate(selector, xpath)
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
        hrefs = evaluate(self.selector, "(//base[@href])[1]/@href")
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

        url = href if isinstance(href, str) else href_of(href)
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
                hrefs = evaluate(selector, f"({css_to_xpath(css)})/@href")
                if hrefs is not None:
                    return hrefs
            query = css_to_xpath(css) if css is not None else xpath or ""
            nodes = evaluate(selector, query)
            if nodes is not None:
                return [h for h in map(href_of_node, nodes) if h is not None]
        found = self.css(css) if css is not None else self.xpath(xpath or "")
        return [h for h in map(href_of, found) if h is not None]

    def __repr__(self) -> str:
        return f"<Response {self.status} {self.url}>"
