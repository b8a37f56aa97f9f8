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

import functools
import hashlib
import re
from collections.abc import Callable
from urllib.parse import parse_qsl, quote, urlencode, urlsplit, urlunsplit

from pooledcrawl.http.whatwg import MAX_URL_LENGTH, InvalidURL, UnsupportedScheme, resolve

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
]

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

    ``encoding``, given to the joins, returns the page's encoding: it is asked only
    for an href with non-ASCII characters and a query, the one case it changes. (A
    Resolver keeps no reference to it: a page caching its Resolver would otherwise
    form a cycle, and pages would wait for the cyclic GC to be freed.)
    """

    __slots__ = ("_directory", "base", "origin")

    def __init__(self, base: str) -> None:
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

    def join(self, href: str, encoding: Callable[[], str] | None = None) -> str:
        """``href`` resolved; as written (stripped) when no browser could resolve it."""
        if self.origin is not None and "/." not in href:
            if href[:1] == "/":
                if _PLAIN_ROOT_RE.match(href) is not None:
                    return self.origin + href
            elif _PLAIN_RELATIVE_RE.match(href) is not None:
                return self._directory + href
        return self.base_join(href, encoding) or href.strip()

    def base_join(self, href: str, encoding: Callable[[], str] | None = None) -> str | None:
        """``href`` resolved by the URL Standard itself; None if a browser rejects it."""
        if self.base is None:
            return None
        page_encoding = None
        if encoding is not None and "?" in href and not href.isascii():
            page_encoding = encoding()
        try:
            return resolve(href, self.base, encoding=page_encoding)
        except InvalidURL:
            return None


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
