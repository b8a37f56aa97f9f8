"""The Response model spiders see, whichever transport fetched it."""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from typing import TYPE_CHECKING, Any

import orjson
from w3lib.encoding import html_to_unicode, resolve_encoding

from pooledcrawl.http.url import join_url, origin_of

if TYPE_CHECKING:
    from parsel import Selector, SelectorList

    from pooledcrawl.http.request import Callback, Request
    from pooledcrawl.metrics.timing import Timing

__all__ = ["Response"]

_CHARSET_RE = re.compile(r"charset=[\"']?([\w.:-]+)", re.I)


class Response:
    """An HTTP response. Text and selectors are decoded and parsed only when used."""

    __slots__ = (
        "_origin",
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
        self.encoding_hint: str | None = None
        self._text: str | None = None
        self._selector: Selector | None = None
        self._origin: str | None = None

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
            encoding, text = html_to_unicode(content_type, self.body)
        except (LookupError, ValueError):
            encoding, text = "utf-8", self.body.decode("utf-8", "replace")
        self.encoding_hint = encoding
        return text

    def json(self) -> Any:
        """The body parsed as JSON (orjson)."""
        return orjson.loads(self.body)

    @property
    def selector(self) -> Selector:
        if self._selector is None:
            from parsel import Selector

            self._selector = Selector(text=self.text)
        return self._selector

    def css(self, query: str) -> SelectorList[Selector]:
        return self.selector.css(query)

    def xpath(self, query: str, **kwargs: Any) -> SelectorList[Selector]:
        return self.selector.xpath(query, **kwargs)

    def urljoin(self, href: str) -> str:
        """Resolve a link found on this page."""
        if self._origin is None:
            self._origin = origin_of(self.url) or ""
        return join_url(self.url, href, self._origin or None)

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
        """Requests for many links: given URLs, or the elements a css/xpath query finds."""
        from pooledcrawl.http.request import Request

        hrefs: list[str]
        if urls is not None:
            hrefs = list(urls)
        else:
            if css is None and xpath is None:
                raise ValueError("follow_all needs urls, css= or xpath=")
            found = self.css(css) if css is not None else self.xpath(xpath or "")
            hrefs = [h for h in map(_href_of, found) if h is not None]
        for href in hrefs:
            yield Request(self.urljoin(href), callback, **kwargs)

    def __repr__(self) -> str:
        return f"<Response {self.status} {self.url}>"


def _href_of(sel: Selector) -> str | None:
    root = sel.root
    if isinstance(root, str):
        return root
    get = getattr(root, "get", None)
    value = get("href") if get is not None else None
    return value if isinstance(value, str) else None
