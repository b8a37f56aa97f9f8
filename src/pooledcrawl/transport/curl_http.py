"""What libcurl leaves to the curl transport: header lines, the last response's
headers, and redirects, which are followed in :mod:`pooledcrawl.transport.curl` (not by
libcurl) so that they behave as over aiohttp."""

from __future__ import annotations

from collections.abc import Iterable
from urllib.parse import urljoin, urlsplit

from curl_cffi import Curl, CurlInfo
from multidict import CIMultiDict, CIMultiDictProxy

__all__ = ["header_lines", "info", "parse_headers", "redirect_target", "redirected"]


def info(curl: Curl, option: CurlInfo) -> int:
    value = curl.getinfo(option)
    return value if isinstance(value, int) else 0


def header_lines(items: Iterable[tuple[str, str]]) -> list[bytes]:
    # "Name;" is libcurl's way to send a header with an empty value
    return [(f"{k}: {v}" if v else f"{k};").encode("latin-1", "replace") for k, v in items]


def parse_headers(raw: bytes) -> CIMultiDictProxy[str]:
    """The last response's headers (libcurl writes every hop's and any 1xx block).
    Values that are not UTF-8 are read as Latin-1, HTTP's historical charset."""
    start = raw.rfind(b"\r\nHTTP/")
    lines = raw[start + 2 if start >= 0 else 0 :].split(b"\r\n")
    headers: CIMultiDict[str] = CIMultiDict()
    for line in lines[1:]:
        name, sep, value = line.partition(b":")
        if not sep or not name or name[0] in b" \t":
            continue
        try:
            text = value.strip().decode("utf-8")
        except UnicodeDecodeError:
            text = value.strip().decode("latin-1")
        headers.add(name.decode("latin-1"), text)
    return CIMultiDictProxy(headers)


def redirect_target(curl: Curl, url: str, raw_headers: bytes) -> str | None:
    location = curl.getinfo(CurlInfo.REDIRECT_URL)
    if isinstance(location, bytes) and location:
        return location.decode("utf-8", "replace")
    # libcurl leaves REDIRECT_URL empty for schemes it would not follow: read the header
    value = parse_headers(raw_headers).get("Location")
    return urljoin(url, value) if value else None


def redirected(
    status: int,
    method: str,
    body: bytes | None,
    headers: dict[str, str] | None,
    url: str,
    location: str,
) -> tuple[str, bytes | None, dict[str, str] | None]:
    """The next hop's method, body and headers, as browsers and aiohttp do it: 303 (and
    301/302 after a POST) turns into a GET without a body; credentials stay on their origin."""
    if (status == 303 and method != "HEAD") or (status in (301, 302) and method == "POST"):
        method, body = "GET", None
    if headers and urlsplit(url).netloc != urlsplit(location).netloc:
        headers = {k: v for k, v in headers.items() if k.lower() not in ("authorization", "cookie")}
    return method, body, headers
