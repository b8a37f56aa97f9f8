"""Crawling from sitemaps: Scrapy's ``SitemapSpider``, with its names and meaning,
on a streaming parser.

Why our own parser and not ``ultimate-sitemap-parser`` (usp): usp is a whole
sitemap *crawler*. It fetches robots.txt and every sitemap itself, with its own
HTTP client, so those fetches would bypass this crawler's transports, proxies,
per-domain limits, retries, robots rules and stats. It also returns a tree of
page objects for the whole site when it is done, instead of handing out requests
while it reads. What a spider needs is a parser for one response at a time. With
lxml's pull parser that takes about a hundred lines. It reads
``<urlset>``/``<sitemapindex>`` entries as the bytes arrive, gunzipped in small
chunks, and frees each entry once it has been read. A sitemap of 50,000 URLs
(the protocol's maximum) therefore never exists as one tree, and a gzip bomb
stops at the size cap.
"""

from __future__ import annotations

import itertools
import logging
import re
import zlib
from collections import deque
from collections.abc import AsyncIterator, Callable, Iterable, Iterator, Sequence
from datetime import UTC, datetime
from typing import Any, ClassVar

from pooledcrawl.errors import UsageError
from pooledcrawl.http.request import Request
from pooledcrawl.http.response import Response
from pooledcrawl.spider import Spider

__all__ = ["SitemapSpider", "SitemapTooLarge", "parse_lastmod", "read_sitemap"]

log = logging.getLogger("pooledcrawl.sitemap")

#: sitemaps.org: "no larger than 50MB (52,428,800 bytes)" uncompressed
MAX_SITEMAP_SIZE = 52_428_800
_GZIP_MAGIC = b"\x1f\x8b"
_CHUNK = 64 * 1024

SitemapEntry = dict[str, Any]


class SitemapTooLarge(ValueError):
    """A sitemap whose uncompressed size passes the cap (possibly a gzip bomb)."""


class SitemapReader:
    """The entries of one sitemap document, read as a stream.

    ``type`` is the root element's name (``"urlset"``, ``"sitemapindex"``, or
    something else for a document that is not a sitemap), known once the root
    element has been read, or ``"text"`` for a plain-text sitemap (one URL a
    line, which sitemaps.org allows). Iterating yields one dict per
    ``<url>``/``<sitemap>``: child names without namespace mapped to their
    stripped text (``loc``, ``lastmod``, ``changefreq``, ``priority``...), plus
    ``alternate``, the hrefs of ``<xhtml:link>`` children, as Scrapy's
    ``Sitemap`` does; a text sitemap's entries have only ``loc``.
    """

    def __init__(self, body: bytes, max_size: int = MAX_SITEMAP_SIZE) -> None:
        from lxml import etree

        # no entity expansion and no network: a sitemap is untrusted input
        self._parser = etree.XMLPullParser(
            events=("start", "end"),
            resolve_entities=False,
            no_network=True,
            recover=True,
            remove_comments=True,
            remove_pis=True,
        )
        chunks = _chunks(body, max_size)
        first = next(chunks, None)
        self._chunks = chunks if first is None else itertools.chain([first], chunks)
        self._events: deque[tuple[str, Any]] = deque()
        self._root: Any = None
        self._done = False
        self.type: str | None = None
        start = (first or b"").lstrip(b" \t\r\n").removeprefix(b"\xef\xbb\xbf").lstrip()
        if start and not start.startswith(b"<"):
            self.type = "text"
        else:
            self._prime()

    def _prime(self) -> None:
        """Read until the root element starts (or the input ends)."""
        while self._root is None and self._fill():
            while self._events and self._root is None:
                event, element = self._events.popleft()
                if event == "start":
                    self._root = element
                    self.type = _local(element.tag)

    def _fill(self) -> bool:
        """Feed the parser one more chunk; False when the input is used up."""
        if self._done:
            return False
        chunk = next(self._chunks, None)
        if chunk is None:
            self._done = True
            self._events.extend(self._parser.read_events())
            try:
                self._parser.close()
            except Exception:  # a truncated document: keep what was read
                log.debug("sitemap ended early", exc_info=True)
        else:
            self._parser.feed(chunk)
        self._events.extend(self._parser.read_events())
        return True

    def __iter__(self) -> Iterator[SitemapEntry]:
        if self.type == "text":
            yield from self._text_entries()
            return
        root = self._root
        if root is None:
            return
        while True:
            while self._events:
                event, element = self._events.popleft()
                if event != "end" or element.getparent() is not root:
                    continue
                yield _entry(element)
                # free the entry (and whitespace before it) as soon as it is read
                element.clear()
                root.remove(element)
            if not self._fill():
                return

    def _text_entries(self) -> Iterator[SitemapEntry]:
        pending = b""
        for chunk in self._chunks:
            lines = (pending + chunk).split(b"\n")
            pending = lines.pop()
            yield from _text_lines(lines)
        yield from _text_lines([pending])


def _text_lines(lines: list[bytes]) -> Iterator[SitemapEntry]:
    for line in lines:
        url = line.decode("utf-8", "replace").strip().lstrip("\ufeff")
        if url.startswith(("http://", "https://")):
            yield {"loc": url}


def _entry(element: Any) -> SitemapEntry:
    entry: SitemapEntry = {}
    for child in element:
        tag = child.tag
        if not isinstance(tag, str):
            continue
        name = _local(tag)
        if name == "link":
            href = child.get("href")
            if href is not None:
                entry.setdefault("alternate", []).append(href)
        else:
            entry[name] = child.text.strip() if child.text else ""
    return entry


def _local(tag: str) -> str:
    return tag.rpartition("}")[2]


def _chunks(body: bytes, max_size: int) -> Iterator[bytes]:
    """The document's bytes in bounded chunks, gunzipped if it is gzip (by its magic
    bytes: a ``.gz`` URL or a gzip Content-Type whose body the transport already
    decoded from ``Content-Encoding: gzip`` is plain XML). Raises SitemapTooLarge
    past ``max_size`` uncompressed bytes, having never held more than a chunk."""
    if not body.startswith(_GZIP_MAGIC):
        if len(body) > max_size:
            raise SitemapTooLarge(f"sitemap of {len(body)} bytes is over the {max_size} cap")
        for start in range(0, len(body), _CHUNK):
            yield body[start : start + _CHUNK]
        return
    total = 0
    data = body
    while data:
        decompressor = zlib.decompressobj(16 + zlib.MAX_WBITS)
        pending = data
        while not decompressor.eof:
            try:
                out = decompressor.decompress(pending, _CHUNK)
            except zlib.error as exc:
                log.warning("corrupt gzip sitemap: %s", exc)
                return
            pending = decompressor.unconsumed_tail
            if not out and not pending:
                break  # input used up (a truncated file), and nothing left inside zlib
            total += len(out)
            if total > max_size:
                raise SitemapTooLarge(f"sitemap over the {max_size}-byte cap when gunzipped")
            yield out
        # gzip files may hold several members one after another (RFC 1952 2.2)
        data = decompressor.unused_data if decompressor.eof else b""
        if not data.startswith(_GZIP_MAGIC):
            return


def read_sitemap(body: bytes, max_size: int = MAX_SITEMAP_SIZE) -> SitemapReader:
    """A streaming reader of a sitemap's body (plain or gzipped XML)."""
    return SitemapReader(body, max_size)


_W3C_PARTIAL = re.compile(r"\d{4}(-\d{2})?\Z")


def parse_lastmod(value: str | None) -> datetime | None:
    """A ``<lastmod>`` in W3C Datetime (``YYYY``, ``YYYY-MM``, ``YYYY-MM-DD``, with
    an optional time and zone), as an aware datetime (UTC when no zone is given);
    None when it is missing or unreadable."""
    if not value:
        return None
    value = value.strip()
    if _W3C_PARTIAL.match(value):
        value += "-01" * (3 - len(value.split("-")))
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        return None
    return parsed if parsed.tzinfo is not None else parsed.replace(tzinfo=UTC)


class SitemapSpider(Spider):
    """Crawls the URLs that sitemaps list (Scrapy's ``SitemapSpider``).

    ``sitemap_urls``: sitemaps, sitemap indexes, or robots.txt files (whose
    ``Sitemap:`` lines are followed). ``sitemap_rules``: ``(regex, callback)``
    pairs; a URL goes to the first rule whose regex it matches, and to none if
    none does. ``sitemap_follow``: regexes an index's child sitemaps must match.
    ``sitemap_alternate_links``: also request the ``<xhtml:link rel="alternate">``
    URLs. ``sitemap_filter(entries)`` may drop or change entries.
    ``sitemap_modified_since`` (a datetime or an ISO date, also as ``-a``) keeps
    only entries whose ``lastmod`` is that recent or missing.
    """

    sitemap_urls: ClassVar[Sequence[str]] = ()
    sitemap_rules: ClassVar[Sequence[tuple[str | re.Pattern[str], str | Callable[..., Any]]]] = [
        ("", "parse")
    ]
    sitemap_follow: ClassVar[Sequence[str | re.Pattern[str]]] = [""]
    sitemap_alternate_links: ClassVar[bool] = False
    sitemap_modified_since: datetime | str | None = None
    #: cap on a sitemap's uncompressed size
    sitemap_max_size: ClassVar[int] = MAX_SITEMAP_SIZE

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._cbs: list[tuple[re.Pattern[str], Callable[..., Any]]] = []
        for pattern, callback in self.sitemap_rules:
            if isinstance(callback, str):
                callback = getattr(self, callback)
            self._cbs.append((_regex(pattern), callback))
        self._follow = [_regex(x) for x in self.sitemap_follow]
        since = self.sitemap_modified_since
        if isinstance(since, str):
            parsed = parse_lastmod(since)
            if parsed is None:
                raise UsageError(f"sitemap_modified_since: not a W3C date: {since!r}")
            since = parsed
        elif since is not None and since.tzinfo is None:
            since = since.replace(tzinfo=UTC)
        self._modified_since: datetime | None = since

    async def start(self) -> AsyncIterator[Request]:
        for url in self.sitemap_urls:
            yield Request(url, self._parse_sitemap)

    def sitemap_filter(self, entries: Iterable[SitemapEntry]) -> Iterable[SitemapEntry]:
        """Override to filter or change entries (a generator keeps it streaming).
        The default applies ``sitemap_modified_since``."""
        since = self._modified_since
        if since is None:
            yield from entries
            return
        for entry in entries:
            modified = parse_lastmod(entry.get("lastmod"))
            if modified is None or modified >= since:
                yield entry

    def _parse_sitemap(self, response: Response) -> Iterator[Request]:
        if response.url.endswith("/robots.txt"):
            from protego import Protego

            for url in Protego.parse(response.text).sitemaps:
                yield Request(response.urljoin(url), self._parse_sitemap)
            return
        try:
            reader = read_sitemap(response.body, self.sitemap_max_size)
            if reader.type == "sitemapindex":
                for url in self._locations(reader):
                    if any(r.search(url) for r in self._follow):
                        yield Request(url, self._parse_sitemap)
            elif reader.type in ("urlset", "text"):
                for url in self._locations(reader):
                    for pattern, callback in self._cbs:
                        if pattern.search(url):
                            yield Request(url, callback)
                            break
            else:
                log.warning("ignoring invalid sitemap: %s", response.url)
        except SitemapTooLarge as exc:
            log.warning("stopped reading sitemap %s: %s", response.url, exc)

    def _locations(self, reader: SitemapReader) -> Iterator[str]:
        alternates = self.sitemap_alternate_links
        for entry in self.sitemap_filter(reader):
            loc = entry.get("loc")
            if loc:
                yield loc
            if alternates:
                yield from entry.get("alternate", ())


def _regex(value: str | re.Pattern[str]) -> re.Pattern[str]:
    return re.compile(value) if isinstance(value, str) else value
