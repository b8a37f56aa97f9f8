"""URLs parsed as browsers parse them: the WHATWG URL Standard, through ada-url (a
conformant parser), with the few corrections ada 4 needs (IDNA labels, lone
surrogates) and the page encoding a query is percent-encoded in."""

from __future__ import annotations

import codecs
import functools
import re

import ada_url

__all__ = ["MAX_URL_LENGTH", "InvalidURL", "UnsupportedScheme", "resolve"]

MAX_URL_LENGTH = 8192
# what the standard strips from both ends of an href
_C0_OR_SPACE = "".join(map(chr, range(0x21)))
# what the special-query percent-encode set escapes, besides controls and non-ASCII
_QUERY_ESCAPED = frozenset(b" \"#<>'")


class InvalidURL(ValueError):
    """A URL that cannot be fetched: one a browser rejects too (bad host or port, no
    scheme, ...), or one too long to be sent."""


class UnsupportedScheme(InvalidURL):
    """A well-formed URL with a scheme the crawler does not fetch (``mailto:``,
    ``tel:``, ``javascript:``, ``data:``, ``ftp:``...): skipped and counted, not an error."""

    def __init__(self, scheme: str) -> None:
        super().__init__(f"unsupported scheme {scheme!r}")
        self.scheme = scheme


def resolve(href: str, base: str | None = None, *, encoding: str | None = None) -> str:
    """``href`` parsed against ``base`` by the WHATWG URL Standard, serialized (the
    fragment kept, as ``a.href`` has it). :class:`InvalidURL` if a browser rejects it.

    ``encoding`` is the page's: a non-UTF-8 page's query is percent-encoded in that
    encoding, as browsers do (the path is always UTF-8).
    """
    try:
        href_out = _ada(href, base)
    except ValueError:
        raise InvalidURL(_why_invalid(href, base)) from None
    if "xn--" in href_out and _bad_punycode(href_out):
        raise InvalidURL("not a URL a browser accepts (bad host: invalid IDNA label)")
    if encoding is not None and not href.isascii() and "?" in href and not _is_utf8(encoding):
        href_out = _encode_query(href_out, href, encoding)
    return href_out


_SPECIAL_SCHEMES = frozenset({"http:", "https:", "ws:", "wss:", "ftp:"})


def _bad_punycode(href: str) -> bool:
    """A special URL whose host has an ``xn--`` label that is not valid punycode for a
    valid label: the standard's domain-to-ASCII rejects it, ada 4 lets ASCII through."""
    url = ada_url.URL(href)
    if url.protocol not in _SPECIAL_SCHEMES:
        return False
    for label in str(url.hostname).split("."):
        if label[:4].lower() == "xn--" and ada_url.idna_to_unicode(label) == label:
            return True
    return False


def _ada(href: str, base: str | None) -> str:
    try:
        return ada_url.join_url(base, href) if base is not None else ada_url.normalize_url(href)
    except ValueError:
        if not _has_surrogates(href) and (base is None or not _has_surrogates(base)):
            raise
    # a JS string may hold lone surrogates, and the standard reads them as U+FFFD
    href = _usv(href)
    return ada_url.join_url(_usv(base), href) if base is not None else ada_url.normalize_url(href)


def _has_surrogates(text: str) -> bool:
    return not text.isascii() and any("\ud800" <= c <= "\udfff" for c in text)


def _usv(text: str) -> str:
    return text.encode("utf-16", "surrogatepass").decode("utf-16", "replace")


def _why_invalid(href: str, base: str | None) -> str:
    if len(href) > MAX_URL_LENGTH:
        return f"URL longer than {MAX_URL_LENGTH} characters"
    stripped = href.strip(_C0_OR_SPACE)
    if base is None and not re.match(r"[A-Za-z][A-Za-z0-9+.\-]*:", stripped):
        return "URL has no scheme"
    return "not a URL a browser accepts (bad host or port)"


def _encode_query(resolved: str, href: str, encoding: str) -> str:
    """``resolved`` with the query ``href`` wrote percent-encoded in ``encoding``."""
    raw = href.strip(_C0_OR_SPACE).replace("\t", "").replace("\n", "").replace("\r", "")
    query = raw.split("#", 1)[0].split("?", 1)[1]
    out: list[str] = []
    for char in query:
        try:
            data = char.encode(encoding)
        except UnicodeEncodeError:  # the standard's "html" error mode: &#N; escaped
            out.append(f"%26%23{ord(char)}%3B")
            continue
        out.extend(
            f"%{b:02X}" if b < 0x21 or b > 0x7E or b in _QUERY_ESCAPED else chr(b) for b in data
        )
    url = ada_url.URL(resolved)
    url.search = "?" + "".join(out)
    return str(url.href)


@functools.lru_cache(maxsize=64)
def _is_utf8(encoding: str) -> bool:
    try:
        name = codecs.lookup(encoding).name
    except LookupError:
        return True  # unknown: the standard's default
    # the URL Standard encodes UTF-16 pages' queries as UTF-8
    return name in ("utf-8", "utf-16", "utf-16-le", "utf-16-be")
