"""URLs as browsers resolve them, and the canonical form dedup keys on.

Two different strings come out of a link:

* the **request URL** is what a browser sends for it: the href resolved and
  serialized by the WHATWG URL Standard (via ada-url, a conformant parser).
  Spaces and non-ASCII are percent-encoded, ``\\`` is ``/`` in http(s) URLs, dot
  segments are resolved, hosts go through IDNA, and escapes already present stay
  exactly as written (``%zz``, ``%41``, ``%7e``): servers may tell them apart.
* the **canonical form** is only for deduplication: lower-case host, no default
  port or fragment, sorted query, normalized escapes. For a URL that was already
  canonical it is the URL itself, so fingerprints persisted by the ``--jobdir``
  and Redis frontiers before the change still match.

These run on every discovered link (a 20k-page crawl with 10 links a page filters
200k links), so the common case -- a plain absolute or root-relative http(s) link
-- is answered by a few string checks before any parsing; anything else goes to
ada. ``tests/http/test_url_fastpath.py`` checks both paths agree.
"""

from __future__ import annotations

import codecs
import functools
import hashlib
import re
from collections.abc import Callable
from urllib.parse import parse_qsl, quote, urlencode, urlsplit, urlunsplit

import ada_url

__all__ = [
    "InvalidURL",
    "UnsupportedScheme",
    "canonical_or_raise",
    "canonicalize_url",
    "fingerprint",
    "join_url",
    "prepare_url",
    "request_url",
    "resolve",
    "validate_url",
]

MAX_URL_LENGTH = 8192
_DEFAULT_PORTS = {"http": "80", "https": "443"}
_SAFE_PATH = "/%:@!$&'()*+,;=-._~"
# http(s)://authority/path where every path character is one the URL Standard
# leaves alone in a special URL's path (none of ?#%@[\, no space, no control, ASCII
# only): with no "/." in the path (so no dot segment) and an authority ada
# serializes as written, the URL is its own request URL and its own canonical form.
_PLAIN_URL_RE = re.compile(
    r"(https?)://([A-Za-z0-9\-._~!$&'()*+,;=:]*)/[A-Za-z0-9\-._~/:!$&'()*+,;=]*\Z"
)
# A root-relative href the URL Standard appends to the origin unchanged: the same
# path characters, and a query of characters the special-query set leaves alone
# (not ', ", <, >, space, controls, non-ASCII).
_PLAIN_ROOT_RE = re.compile(
    r"/(?![/\\])[A-Za-z0-9\-._~/:!$&'()*+,;=@]*(?:\?[A-Za-z0-9\-._~/:!$&()*+,;=@?%]*)?\Z"
)
# A path-relative href likewise: no ":" (it could be a scheme), no leading "."
_PLAIN_RELATIVE_RE = re.compile(
    r"[A-Za-z0-9\-_~!$&'()*+,;=@][A-Za-z0-9\-._~/!$&'()*+,;=@]*(?:\?[A-Za-z0-9\-._~/:!$&()*+,;=@?%]*)?\Z"
)
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
    stripped = href.strip(
        "\x00\x01\x02\x03\x04\x05\x06\x07\x08\t\n\x0b\x0c\r\x0e\x0f"
        "\x10\x11\x12\x13\x14\x15\x16\x17\x18\x19\x1a\x1b\x1c\x1d\x1e\x1f "
    )
    if base is None and not re.match(r"[A-Za-z][A-Za-z0-9+.\-]*:", stripped):
        return "URL has no scheme"
    return "not a URL a browser accepts (bad host or port)"


def _encode_query(resolved: str, href: str, encoding: str) -> str:
    """``resolved`` with the query ``href`` wrote percent-encoded in ``encoding``."""
    raw = href.strip().replace("\t", "").replace("\n", "").replace("\r", "")
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


def join_url(base: str, href: str, encoding: str | None = None) -> str:
    """``href`` resolved against ``base`` as a browser would; an href no browser can
    resolve comes back as written (stripped), for the engine to count as InvalidURL."""
    try:
        return resolve(href, base, encoding=encoding)
    except InvalidURL:
        return href.strip()


def request_url(url: str) -> str:
    """The URL a browser would request for absolute ``url``: :class:`UnsupportedScheme`
    when it is not http(s), :class:`InvalidURL` when it cannot be fetched at all."""
    if len(url) <= MAX_URL_LENGTH and _plain_absolute(url):
        return url
    return _request_url(url)


def _request_url(url: str) -> str:
    if len(url) > MAX_URL_LENGTH:
        raise InvalidURL(f"URL longer than {MAX_URL_LENGTH} characters")
    href = resolve(url)
    scheme = href[: href.index(":")]
    if scheme != "http" and scheme != "https":
        raise UnsupportedScheme(scheme)
    if len(href) > MAX_URL_LENGTH:
        raise InvalidURL(f"URL longer than {MAX_URL_LENGTH} characters")
    parts = urlsplit(href)
    if parts.port == 0:  # parsed by the standard, but no browser connects to it
        raise InvalidURL("URL has port 0")
    return href


def prepare_url(url: str, *, drop_tracking: bool = False) -> tuple[str, str]:
    """``(request URL, canonical form)`` of an absolute URL the engine is to fetch."""
    if len(url) <= MAX_URL_LENGTH and _plain_absolute(url):
        return url, url  # no query: nothing for drop_tracking to drop
    href = _request_url(url)
    return href, _canonical(href, drop_tracking)


def canonical_or_raise(url: str, *, drop_tracking: bool = False) -> str:
    """The canonical form of a URL the engine may fetch; :class:`InvalidURL` if it may not."""
    return prepare_url(url, drop_tracking=drop_tracking)[1]


def validate_url(url: str) -> str:
    """Return ``url`` if it can be fetched; raise :class:`InvalidURL` saying why if not."""
    request_url(url)
    return url


def _plain_absolute(url: str) -> bool:
    """True when ``url`` is plainly its own request URL and canonical form."""
    match = _PLAIN_URL_RE.match(url)
    # ("/." can only be in the path: "http://.x/" merely takes the slow path)
    return match is not None and "/." not in url and _plain_authority(match[1], match[2])


@functools.lru_cache(maxsize=1024)
def _plain_authority(scheme: str, authority: str) -> bool:
    """``host[:port]`` already canonical, and serialized by the URL Standard as
    written: a crawl sees few hosts, and ada checks each once."""
    host = authority
    if ":" in host:
        host, port = host.rsplit(":", 1)
        if not port.isdigit() or port[0] == "0" or len(port) > 5 or int(port) > 65535:
            return False
        if port == ("443" if scheme == "https" else "80"):
            return False
    if not host or host.endswith(".") or host != host.lower():
        return False
    probe = f"{scheme}://{authority}/"
    try:
        return resolve(probe) == probe
    except InvalidURL:
        return False


def _fast_canonical(url: str) -> bool:
    """True when ``url`` is plainly canonical already (the overwhelmingly common case)."""
    return len(url) <= MAX_URL_LENGTH and _plain_absolute(url)


class Resolver:
    """Resolves a page's links against its base URL. Plain root- and path-relative
    hrefs (most links) are joined by concatenation, which is what the URL Standard
    does with them too (property-tested against ada); the rest go to ada.

    ``encoding`` returns the page's encoding; it is asked only for an href with
    non-ASCII characters and a query, the one case the encoding changes.
    """

    __slots__ = ("_directory", "_encoding", "base", "origin")

    def __init__(self, base: str, encoding: Callable[[], str] | None = None) -> None:
        self._encoding = encoding
        #: ``scheme://host[:port]`` when plain hrefs may be joined by concatenation
        self.origin: str | None = None
        self._directory = ""
        match = _PLAIN_URL_RE.match(base) if len(base) <= MAX_URL_LENGTH else None
        if match is not None and "/." not in base and _plain_authority(match[1], match[2]):
            self.base: str | None = base  # its own serialization: no parsing needed
            self.origin = base[: match.end(2)]
            self._directory = base[: base.rfind("/") + 1]
            return
        try:
            self.base = resolve(base)
        except InvalidURL:
            self.base = None
            return
        href = self.base
        if href.startswith(("http://", "https://")):
            start = href.index("//") + 2
            slash = href.find("/", start)
            if slash != -1 and _plain_authority(href[: start - 3], href[start:slash]):
                self.origin = href[:slash]
                end = len(href)
                for mark in "?#":
                    cut = href.find(mark, slash)
                    if cut != -1:
                        end = min(end, cut)
                self._directory = href[: href.rfind("/", slash, end) + 1]

    def join(self, href: str) -> str:
        """``href`` resolved; as written (stripped) when no browser could resolve it."""
        if self.origin is not None and "/." not in href:
            if href[:1] == "/":
                if _PLAIN_ROOT_RE.match(href) is not None:
                    return self.origin + href
            elif _PLAIN_RELATIVE_RE.match(href) is not None:
                return self._directory + href
        return self.base_join(href) or href.strip()

    def base_join(self, href: str) -> str | None:
        """``href`` resolved by the URL Standard itself; None if a browser rejects it."""
        if self.base is None:
            return None
        encoding = None
        if self._encoding is not None and "?" in href and not href.isascii():
            encoding = self._encoding()
        try:
            return resolve(href, self.base, encoding=encoding)
        except InvalidURL:
            return None


@functools.lru_cache(maxsize=64)
def _is_utf8(encoding: str) -> bool:
    try:
        name = codecs.lookup(encoding).name
    except LookupError:
        return True  # unknown: the standard's default
    # the URL Standard encodes UTF-16 pages' queries as UTF-8
    return name in ("utf-8", "utf-16", "utf-16-le", "utf-16-be")


def canonicalize_url(url: str, *, drop_tracking: bool = False) -> str:
    """The form two URLs share when a server would treat them as the same resource.

    The request URL (as a browser resolves it) with the scheme and host lower-cased,
    the default port and fragment dropped, query parameters sorted, percent-escapes
    normalized, and with ``drop_tracking`` no ``utm_*`` parameters. Never raises: a
    URL a browser would reject comes back stripped and otherwise tidied, so dedup
    still works on it.
    """
    if _fast_canonical(url):
        return url
    result = _canonical_step(url, drop_tracking)
    for _ in range(3):  # a rejected URL's tidied form may parse: settle on a fixed point
        again = _canonical_step(result, drop_tracking)
        if again == result:
            break
        result = again
    return result


def _canonical_step(url: str, drop_tracking: bool) -> str:
    try:
        href = resolve(url) if len(url) <= MAX_URL_LENGTH else url
    except InvalidURL:
        href = url
    try:
        return _canonical(href, drop_tracking)
    except ValueError:  # unparsable, or not encodable (lone surrogates)
        return url.strip()


def _canonical(url: str, drop_tracking: bool) -> str:
    if not drop_tracking and _fast_canonical(url):
        return url
    parts = urlsplit(url.strip())
    scheme = parts.scheme.lower()
    host = (parts.hostname or "").rstrip(".")
    port = parts.port
    netloc = host
    if ":" in host:  # IPv6 literal
        netloc = f"[{host}]"
    if port is not None and str(port) != _DEFAULT_PORTS.get(scheme):
        netloc = f"{netloc}:{port}"
    if parts.username is not None:
        userinfo = parts.username + (f":{parts.password}" if parts.password is not None else "")
        netloc = f"{userinfo}@{netloc}"
    path = quote(_unquote_unreserved(parts.path), safe=_SAFE_PATH) or "/"
    if not netloc and path.startswith("//"):
        path = "/" + path.lstrip("/")  # or urlunsplit would turn the path into a host
    query = ""
    if parts.query:
        pairs = parse_qsl(parts.query, keep_blank_values=True)
        if drop_tracking:
            pairs = [(k, v) for k, v in pairs if not k.lower().startswith("utm_")]
        query = urlencode(sorted(pairs), quote_via=quote, safe="/:@!$'()*,;-._~")
    return urlunsplit((scheme, netloc, path, query, ""))


def _unquote_unreserved(path: str) -> str:
    """Decode only escapes of characters that never need escaping (RFC 3986 unreserved)."""
    if "%" not in path:
        return path
    out: list[str] = []
    i = 0
    n = len(path)
    while i < n:
        ch = path[i]
        if ch == "%" and i + 2 < n and _is_hex(path[i + 1 : i + 3]):
            code = int(path[i + 1 : i + 3], 16)
            decoded = chr(code)
            if (decoded.isalnum() and decoded.isascii()) or decoded in "-._~":
                out.append(decoded)
            else:
                out.append("%" + path[i + 1 : i + 3].upper())
            i += 3
            continue
        out.append(ch)
        i += 1
    return "".join(out)


def _is_hex(s: str) -> bool:
    return len(s) == 2 and all(c in "0123456789abcdefABCDEF" for c in s)


def fingerprint(canonical_url: str, method: str = "GET", body: bytes | None = None) -> int:
    """A stable 64-bit fingerprint: the same in every process, so it can be persisted."""
    h = hashlib.blake2b(canonical_url.encode("utf-8", "surrogatepass"), digest_size=8)
    if method != "GET" or body:
        h.update(b"\0" + method.encode("ascii", "replace") + b"\0" + (body or b""))
    return int.from_bytes(h.digest(), "big")


def origin_of(url: str) -> str | None:
    """``scheme://host[:port]`` of an http(s) URL, or None."""
    if url.startswith("http://"):
        start = 7
    elif url.startswith("https://"):
        start = 8
    else:
        return None
    slash = url.find("/", start)
    return url if slash == -1 else url[:slash]
