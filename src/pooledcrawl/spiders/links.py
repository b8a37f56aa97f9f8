"""Link extraction for rule-driven crawling: Scrapy's ``LinkExtractor``, with its
names and meaning, built for speed.

One compiled XPath finds every (tag, attribute) pair in a single pass over the
tree; the filters are compiled regexes and plain string tests, and the URL of
each link is resolved by :meth:`Response.urljoin`, the same resolver ``follow``
uses, so a link extracted here and a link followed by hand are the same URL.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Any

from pooledcrawl.http.url import canonicalize_url

if TYPE_CHECKING:
    from pooledcrawl.http.response import Response

__all__ = ["IGNORED_EXTENSIONS", "Link", "LinkExtractor"]

#: Extensions of links not worth fetching as pages; Scrapy's list
#: (``scrapy.linkextractors.IGNORED_EXTENSIONS``), so rules port unchanged.
IGNORED_EXTENSIONS: tuple[str, ...] = (
    # archives
    "7z", "7zip", "bz2", "rar", "tar", "tar.gz", "xz", "zip",
    # images
    "mng", "pct", "bmp", "gif", "jpg", "jpeg", "png", "pst", "psp", "tif", "tiff", "ai",
    "drw", "dxf", "eps", "ps", "svg", "cdr", "ico", "webp",
    # audio
    "mp3", "wma", "ogg", "wav", "ra", "aac", "mid", "au", "aiff",
    # video
    "3gp", "asf", "asx", "avi", "mov", "mp4", "mpg", "qt", "rm", "swf", "wmv", "m4a", "m4v",
    "flv", "webm",
    # office suites
    "xls", "xlsm", "xlsx", "xltm", "xltx", "potm", "potx", "ppt", "pptm", "pptx", "pps",
    "doc", "docb", "docm", "docx", "dotm", "dotx", "odt", "ods", "odg", "odp",
    # other
    "css", "pdf", "exe", "bin", "rss", "dmg", "iso", "apk", "jar", "sh", "rb", "js", "hta",
    "bat", "cpl", "msi", "msp", "py",
)  # fmt: skip

_VALID_SCHEMES = ("http://", "https://", "file://", "ftp://")
# what HTML5 strips from URL attributes ("ASCII whitespace")
_HTML5_SPACE = " \t\n\r\x0c"

Regexes = str | re.Pattern[str] | Iterable[str | re.Pattern[str]]


class Link:
    """A link found on a page: absolute ``url`` (fragment removed, as it is never
    sent), the element's ``text``, the ``fragment`` and whether ``rel`` has
    ``nofollow``. Equal when all four are (as Scrapy's ``Link``)."""

    # a plain slotted class: a frozen dataclass's __init__ costs several times
    # more, and a page may yield hundreds of these
    __slots__ = ("fragment", "nofollow", "text", "url")

    def __init__(self, url: str, text: str = "", fragment: str = "", nofollow: bool = False):
        self.url = url
        self.text = text
        self.fragment = fragment
        self.nofollow = nofollow

    def _key(self) -> tuple[str, str, str, bool]:
        return (self.url, self.text, self.fragment, self.nofollow)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Link):
            return NotImplemented
        return self._key() == other._key()

    def __hash__(self) -> int:
        return hash(self._key())

    def __repr__(self) -> str:
        return (
            f"Link(url={self.url!r}, text={self.text!r}, fragment={self.fragment!r}, "
            f"nofollow={self.nofollow!r})"
        )


class LinkExtractor:
    """Which links of a page to follow (Scrapy's ``LinkExtractor``).

    ``allow``/``deny`` are regexes searched in the absolute URL (deny wins);
    ``allow_domains``/``deny_domains`` match a host or its subdomains;
    ``restrict_css``/``restrict_xpaths`` limit the search to parts of the page;
    ``tags``/``attrs`` say where links are (``"*"`` for any); ``deny_extensions``
    defaults to :data:`IGNORED_EXTENSIONS`; ``process_value`` may rewrite or drop
    (return None) each raw value before filtering.
    """

    def __init__(
        self,
        allow: Regexes = (),
        deny: Regexes = (),
        allow_domains: str | Iterable[str] = (),
        deny_domains: str | Iterable[str] = (),
        restrict_xpaths: str | Iterable[str] = (),
        tags: str | Iterable[str] = ("a", "area"),
        attrs: str | Iterable[str] = ("href",),
        canonicalize: bool = False,
        unique: bool = True,
        process_value: Callable[[Any], Any] | None = None,
        deny_extensions: str | Iterable[str] | None = None,
        restrict_css: str | Iterable[str] = (),
        strip: bool = True,
        restrict_text: Regexes | None = None,
    ) -> None:
        self.allow_res = _compile(allow)
        self.deny_res = _compile(deny)
        self.restrict_text = _compile(restrict_text or ())
        self.allow_domains = frozenset(d.lower().strip(".") for d in _strings(allow_domains))
        self.deny_domains = frozenset(d.lower().strip(".") for d in _strings(deny_domains))
        from pooledcrawl.http.markup import css_to_xpath as _css_to_xpath

        self.restrict_xpaths = tuple(_strings(restrict_xpaths)) + tuple(
            _css_to_xpath(css) for css in _strings(restrict_css)
        )
        extensions = IGNORED_EXTENSIONS if deny_extensions is None else deny_extensions
        self.deny_extensions = tuple(f".{e.lower().lstrip('.')}" for e in _strings(extensions))
        # one set lookup for the last extension; endswith only for the few that
        # have a dot in them (".tar.gz")
        self._last_extensions = frozenset(e for e in self.deny_extensions if "." not in e[1:])
        self._dotted_extensions = tuple(e for e in self.deny_extensions if "." in e[1:])
        self.tags = tuple(_strings(tags))
        self.attrs = tuple(_strings(attrs))
        self.canonicalize = canonicalize
        self.unique = unique
        self.process_value = process_value
        self.strip = strip

    def extract_links(self, response: Response) -> list[Link]:
        """The links of ``response`` that pass every filter, in document order."""
        selector = response.selector
        query = _link_query(self.tags, self.attrs, selector.type != "html")
        if self.restrict_xpaths:
            from pooledcrawl.http.markup import evaluate as _evaluate

            found = []
            for xpath in self.restrict_xpaths:
                # a compiled query on the tree, as css() does; parsel for the rest
                nodes = _evaluate(selector, xpath) if selector.type == "html" else None
                if nodes is None:
                    nodes = [node.root for node in response.xpath(xpath)]
                for node in nodes:
                    if not isinstance(node, str):
                        found.extend(query(node))
        else:
            found = query(selector.root)
        return self._links(response, found)

    def _links(self, response: Response, found: list[Any]) -> list[Link]:
        links: list[Link] = []
        seen: set[str] = set()
        urljoin = response.urljoin
        process_value = self.process_value
        allow_res, deny_res = self.allow_res, self.deny_res
        check_host = bool(self.allow_domains or self.deny_domains)
        check_extension = bool(self.deny_extensions)
        strip = self.strip
        for value in found:
            href = value.strip(_HTML5_SPACE) if strip else str(value)
            try:
                url = urljoin(href)
                if process_value is not None:
                    processed = process_value(url)
                    if processed is None:
                        continue
                    url = urljoin(processed)  # a relative value after rewriting
            except ValueError:
                continue  # an unparseable href (e.g. a bad IPv6 literal)
            if not url.startswith(_VALID_SCHEMES):
                continue  # mailto:, javascript:, data:, ...
            # regexes see the URL as written, fragment included, as in Scrapy
            if allow_res and not any(r.search(url) for r in allow_res):
                continue
            if deny_res and any(r.search(url) for r in deny_res):
                continue
            url, _, fragment = url.partition("#")
            if check_host and not self._host_allowed(_host_of(url)):
                continue
            if check_extension and self._denied_extension(url):
                continue
            if self.canonicalize:
                try:
                    url = canonicalize_url(url)
                except ValueError:
                    continue
            if self.unique and url in seen:
                continue
            element = value.getparent()
            text = _text_of(element) if element is not None else ""
            if self.restrict_text and not any(r.search(text) for r in self.restrict_text):
                continue  # before `seen`: a later link to the URL may have matching text
            if self.unique:
                seen.add(url)
            rel = element.get("rel") if element is not None else None
            nofollow = rel is not None and "nofollow" in rel.lower().replace(",", " ").split()
            links.append(Link(url, text, fragment, nofollow))
        return links

    def _denied_extension(self, url: str) -> bool:
        """Whether the URL's path ends in a denied extension (query ignored). String
        searches only: this runs for every link of every page."""
        end = url.find("?")
        if end == -1:
            end = len(url)
        dot = url.rfind(".", 0, end)
        slash = url.rfind("/", 0, end)
        # the last dot must be in the last path segment, and that segment in the
        # path, not the host ("http://example.ai" has no extension)
        if dot < slash or slash <= url.find("://") + 2:
            return False
        if url[dot:end].lower() in self._last_extensions:
            return True
        dotted = self._dotted_extensions
        return bool(dotted) and url[slash:end].lower().endswith(dotted)

    def matches(self, url: str) -> bool:
        """Whether ``url`` passes the domain and allow/deny filters (as in Scrapy)."""
        if (self.allow_domains or self.deny_domains) and not self._host_allowed(_host_of(url)):
            return False
        if self.allow_res and not any(r.search(url) for r in self.allow_res):
            return False
        return not any(r.search(url) for r in self.deny_res)

    def _host_allowed(self, host: str) -> bool:
        if self.allow_domains and not _in_domains(host, self.allow_domains):
            return False
        return not (self.deny_domains and _in_domains(host, self.deny_domains))

    def __repr__(self) -> str:
        parts = [f"allow={[r.pattern for r in self.allow_res]!r}"] if self.allow_res else []
        if self.deny_res:
            parts.append(f"deny={[r.pattern for r in self.deny_res]!r}")
        return f"LinkExtractor({', '.join(parts)})"


def _strings(value: str | re.Pattern[str] | Iterable[Any]) -> list[Any]:
    if isinstance(value, str | re.Pattern):
        return [value]
    return list(value)


def _compile(value: Regexes) -> tuple[re.Pattern[str], ...]:
    return tuple(x if isinstance(x, re.Pattern) else re.compile(x) for x in _strings(value))


@functools.lru_cache(maxsize=64)
def _link_query(tags: tuple[str, ...], attrs: tuple[str, ...], namespaced: bool) -> Any:
    """One compiled XPath selecting every link attribute, in document order. Results
    are lxml "smart strings": each knows its element, so the text and ``rel`` of a
    link are read only for links that pass the filters. A union of plain name tests
    is what libxml2 evaluates fastest (a predicate per element costs three times
    as much); ``local-name()`` is used only for namespaced trees (XHTML parsed as XML)."""
    from lxml import etree

    def element(tag: str) -> str:
        if tag == "*":
            return "descendant-or-self::*"
        if namespaced:
            return f"descendant-or-self::*[local-name()='{tag.lower()}']"
        return f"descendant-or-self::{tag.lower()}"

    attributes = ["@*"] if "*" in attrs else [f"@{a.lower()}" for a in attrs]
    paths = [f"{element(t)}/{a}" for t in (("*",) if "*" in tags else tags) for a in attributes]
    return etree.XPath("|".join(paths), smart_strings=True)


def _text_of(element: Any) -> str:
    """The element's text content (``string()`` in XPath), as Scrapy's Link.text."""
    text = element.text
    if len(element) == 0:
        return text or ""
    return "".join(element.itertext())


def _host_of(url: str) -> str:
    start = url.find("://")
    start = 0 if start == -1 else start + 3
    end = len(url)
    for sep in "/?#":
        i = url.find(sep, start)
        if i != -1 and i < end:
            end = i
    host = url[start:end].rpartition("@")[2]
    if host.startswith("["):
        return host[1 : host.find("]")].lower()
    return host.partition(":")[0].lower()


def _in_domains(host: str, domains: frozenset[str]) -> bool:
    if host in domains:
        return True
    # a subdomain of any listed domain: test each parent of the host
    dot = host.find(".")
    while dot != -1:
        if host[dot + 1 :] in domains:
            return True
        dot = host.find(".", dot + 1)
    return False
