"""How a response body is parsed: the parser its Content-Type asks for (sniffed when
it names none), and the fast paths past parsel for HTML: a UTF-8 page parsed from its
bytes by a per-thread lxml parser, CSS and XPath queries compiled once."""

from __future__ import annotations

import functools
import re
import threading
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from parsel import Selector

__all__ = [
    "MARKUP_START",
    "compiled_xpath",
    "css_to_xpath",
    "document_type",
    "evaluate",
    "href_of",
    "href_of_node",
    "plain_markup",
    "sniff",
    "utf8_html_root",
]

# what str.strip() removes from an ASCII string and bytes.strip() does not
_STR_ONLY_SPACE = frozenset(b"\x1c\x1d\x1e\x1f")
_XML_DECLARATION = re.compile(r"[\s\ufeff]*<\?xml\s")
# what bytes.strip() would leave starting with "<"
_ANY_MARKUP_START = re.compile(rb"[ \t\n\r\x0b\x0c]*<")
# the same, but not "<?xml": with no Content-Type, sniffing such a page needs its
# root element (see sniff)
MARKUP_START = re.compile(rb"[ \t\n\r\x0b\x0c]*<(?!\?xml)")
# an XHTML page behind its XML declaration: the doctype or root element says html
_XHTML_ROOT = re.compile(r"<(?:!doctype\s+html|html[\s>/])", re.I)
# "prefix:name" in an XPath (not an axis's "::"); string literals may match too: harmless
_PREFIX_RE = re.compile(r"[\w.-]:(?!:)")
#: lxml parse errors after which parsel decodes the page itself, with replacements
_ENCODING_ERRORS = frozenset({9, 81})  # ERR_INVALID_CHAR, ERR_INVALID_ENCODING
#: per-thread lxml HTML parsers: a cache, not crawl state
_PARSERS = threading.local()


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


def sniff(text: str) -> str | None:
    """The type of a page with no useful Content-Type: markup is HTML unless an
    XML declaration opens it and no html doctype or root follows; anything else
    is left to parsel (JSON if it parses as a JSON document, else HTML)."""
    if not text.lstrip().startswith("<"):
        return None
    if _XML_DECLARATION.match(text) is not None and _XHTML_ROOT.search(text, 0, 2048) is None:
        return "xml"
    return "html"


def plain_markup(body: bytes) -> bool:
    """HTML whose bytes parsel strips and cleans exactly as it would its text:
    it starts with ``<`` and ends in ASCII that both ``str.strip`` and
    ``bytes.strip`` agree on, with no NUL (parsel drops those from text)."""
    if _ANY_MARKUP_START.match(body) is None or b"\x00" in body:
        return False
    tail = body[-64:].rstrip() or body.rstrip()  # no copy of the whole page
    return bool(tail) and tail[-1] < 0x80 and tail[-1] not in _STR_ONLY_SPACE


def href_of(sel: Selector) -> str | None:
    return href_of_node(sel.root)


def href_of_node(root: Any) -> str | None:
    if isinstance(root, str):
        return root
    get = getattr(root, "get", None)
    value = get("href") if get is not None else None
    return value if isinstance(value, str) else None


def evaluate(selector: Selector, xpath: str) -> list[Any] | None:
    """The node list an XPath finds on an HTML selector's tree, from a compiled
    query; None when parsel must answer instead (a namespace prefix, an error,
    a result that is not a node list)."""
    query = compiled_xpath(xpath)
    if query is None:
        return None
    try:
        found = query(selector.root)
    except Exception:  # parsel raises its own error for it
        return None
    return found if isinstance(found, list) else None


def utf8_html_root(body: bytes) -> Any | None:
    """The tree parsel would build from UTF-8 HTML bytes (``body`` is plain markup,
    see ``plain_markup``), from a parser kept per thread: making one costs a tenth
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


@functools.lru_cache(maxsize=256)
def css_to_xpath(query: str) -> str:
    from parsel import css2xpath

    result: str = css2xpath(query)
    return result


@functools.lru_cache(maxsize=256)
def compiled_xpath(query: str) -> Any:
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
