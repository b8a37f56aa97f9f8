"""URL canonicalization and request fingerprints.

These run on every discovered link (a 20k-page crawl with 10 links a page filters
200k links), so the common case -- an absolute http(s) URL that is already
canonical -- is answered by a few string checks before any parsing happens.
"""

from __future__ import annotations

import functools
import hashlib
import re
from urllib.parse import parse_qsl, quote, urlencode, urljoin, urlsplit, urlunsplit

__all__ = [
    "InvalidURL",
    "canonical_or_raise",
    "canonicalize_url",
    "fingerprint",
    "join_url",
    "validate_url",
]

MAX_URL_LENGTH = 8192
_DEFAULT_PORTS = {"http": "80", "https": "443"}
_SAFE_PATH = "/%:@!$&'()*+,;=-._~"
# http(s)://authority/path where every character is one the slow path never rewrites
# (none of ?#%@[, no space, no control, ASCII only): anything else takes the slow
# path, so both paths give the same answer for every input. One match checks it all.
_PLAIN_URL_RE = re.compile(
    r"(https?)://([A-Za-z0-9\-._~!$&'()*+,;=:]*)/[A-Za-z0-9\-._~/:!$&'()*+,;=]*\Z"
)


class InvalidURL(ValueError):
    """A URL that cannot be fetched: no http(s) scheme, no host, a bad port, ..."""


def _has_control_or_space(url: str) -> bool:
    return not url.isprintable() or " " in url


def _fast_canonical(url: str) -> bool:
    """True when ``url`` is plainly canonical already (the overwhelmingly common case)."""
    match = _PLAIN_URL_RE.match(url)
    return match is not None and _plain_authority(*match.groups())


@functools.lru_cache(maxsize=1024)
def _plain_authority(scheme: str, authority: str) -> bool:
    """``host[:port]`` already canonical: a crawl sees few hosts and checks each once."""
    host = authority
    if ":" in host:
        host, port = host.rsplit(":", 1)
        if not port.isdigit() or port[0] == "0" or len(port) > 5 or int(port) > 65535:
            return False
        if port == ("443" if scheme == "https" else "80"):
            return False
    if not host or host.endswith("."):
        return False
    return host == host.lower()


def canonical_or_raise(url: str, *, drop_tracking: bool = False) -> str:
    """The canonical form of a URL the engine may fetch; :class:`InvalidURL` if it may not."""
    if not drop_tracking and len(url) <= MAX_URL_LENGTH and _fast_canonical(url):
        return url
    return canonicalize_url(validate_url(url), drop_tracking=drop_tracking)


def canonicalize_url(url: str, *, drop_tracking: bool = False) -> str:
    """The form two URLs share when a server would treat them as the same resource.

    Lower-cases the scheme and host, drops the default port and the fragment,
    sorts query parameters, normalises percent-escapes, and with ``drop_tracking``
    removes ``utm_*`` parameters. Never raises: a URL it cannot parse comes back
    stripped but otherwise unchanged, so dedup still works on it.
    """
    if not drop_tracking and _fast_canonical(url):
        return url
    try:
        return _canonicalize(url, drop_tracking)
    except ValueError:  # unparsable, or not encodable (lone surrogates)
        return url.strip()


def _canonicalize(url: str, drop_tracking: bool) -> str:
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


def validate_url(url: str) -> str:
    """Return ``url`` if it can be fetched; raise :class:`InvalidURL` saying why if not."""
    if len(url) > MAX_URL_LENGTH:
        raise InvalidURL(f"URL longer than {MAX_URL_LENGTH} characters")
    if _has_control_or_space(url.strip()):
        raise InvalidURL("URL contains control characters or spaces")
    if not url.startswith(("http://", "https://")):
        scheme = url.split(":", 1)[0] if ":" in url else ""
        if not scheme or not scheme.isalpha():
            raise InvalidURL("URL has no scheme")
        if scheme.lower() not in ("http", "https"):
            raise InvalidURL(f"unsupported scheme {scheme.lower()!r}")
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as exc:
        raise InvalidURL(str(exc)) from None
    if not parts.hostname:
        raise InvalidURL("URL has no host")
    if port == 0:
        raise InvalidURL("URL has port 0")
    return url


def join_url(base: str, href: str, origin: str | None = None) -> str:
    """Resolve ``href`` against ``base``; root-relative links skip ``urljoin`` when
    the caller passes the base's ``scheme://host[:port]`` as ``origin``."""
    href = href.strip()  # browsers ignore whitespace around an href; HTML often has some
    if origin is not None and href.startswith("/") and not href.startswith("//"):
        return origin + href
    if href.startswith(("http://", "https://")):
        return href
    return urljoin(base, href)


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
