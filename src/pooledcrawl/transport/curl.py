"""HTTP/2 (and HTTP/1.1) over libcurl through curl_cffi: the fast HTTP/2 transport, and
the one that can present a browser's TLS and HTTP/2 fingerprint (``impersonate``).

Installed with ``pip install 'pooledcrawl[curl]'``. What to know:

* **Sessions.** One libcurl multi handle (its connection pool), one share handle
  (cookies, DNS and TLS sessions) and a free list of easy handles per proxy *and*
  identity: a connection opened with one browser's ClientHello must never carry a
  request that claims to be another browser.
* **HTTP/2 and fallback.** h2 is offered through TLS ALPN (``CURL_HTTP_VERSION_2TLS``);
  a server that does not select it gets HTTP/1.1, per server, on the same session.
  Plain ``http://`` is HTTP/1.1. libcurl multiplexes up to the server's
  ``MAX_CONCURRENT_STREAMS`` (at most 100) per connection and opens another
  connection past that, within the connection limits.
* **The same rules as the other transports.** Redirects are followed here, not by
  libcurl, so loops, the hop limit and non-http(s) targets fail with the same names
  as over aiohttp; bodies are capped after decompression (a gzip bomb stops at the
  cap), and ``Content-Length`` over the cap fails before the body is read.
* **DNS.** Direct requests resolve names through the crawl's resolver (c-ares, cached,
  ``dns_servers``), as over aiohttp, and pin the answer for libcurl with
  ``CURLOPT_RESOLVE`` (``+host:port:addresses``; the ``+`` lets libcurl's copy expire).
  libcurl decides on reuse later, so the resolver is asked once per request: its
  ``cache_hits`` count requests, where aiohttp's count new connections. Through a
  proxy, the proxy (or libcurl, for ``socks5://``) resolves the name.
* **Timeouts.** ``timeout_connect`` and ``timeout_total`` are libcurl's connect and
  transfer timeouts (in ms). ``timeout_sock_read`` (no byte for that long) is
  libcurl's low-speed check, which counts whole seconds: it is rounded up.
* **Metrics, and what libcurl cannot report.** Reuse comes from
  ``CURLINFO_NUM_CONNECTS`` per exchange. The pool wait of an exchange on a kept-alive
  connection (or HTTP/2 stream) is its ``PRETRANSFER_TIME_T``: all of it was waiting.
  When the wait ended in a *new* connection, it is not told apart from connecting
  (as over aiohttp): ``CURLINFO_QUEUE_TIME_T`` would, but it over-counts transfers
  that waited behind others (seen with libcurl 8.23). A kept-alive connection the
  server had closed is resent on a fresh one by libcurl, for every method, without
  telling: ``disconnects`` stays 0.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import socket
import time
from collections.abc import Mapping
from io import BytesIO
from typing import Final
from urllib.parse import urlsplit

from curl_cffi import (
    AsyncCurl,
    Curl,
    CurlError,
    CurlHttpVersion,
    CurlInfo,
    CurlLockData,
    CurlMOpt,
    CurlOpt,
    CurlShare,
    ffi,
    lib,
)
from curl_cffi.requests.impersonate import REAL_TARGET_MAP, BrowserType

from pooledcrawl.dns.names import is_literal, lookup_target
from pooledcrawl.dns.resolver import CachingResolver
from pooledcrawl.errors import UsageError
from pooledcrawl.http.request import Request
from pooledcrawl.http.response import Response
from pooledcrawl.metrics.timing import Timing
from pooledcrawl.settings import DEFAULT_USER_AGENT, Settings
from pooledcrawl.sizing import session_connector_limit
from pooledcrawl.transport.base import (
    TransportError,
    dns_failure,
    settings_headers,
    too_many_redirects,
)
from pooledcrawl.transport.capped import CappedBody
from pooledcrawl.transport.curl_errors import classify, scrub
from pooledcrawl.transport.curl_http import (
    header_lines,
    info,
    parse_headers,
    redirect_target,
    redirected,
)

__all__ = ["CurlTransport", "check_impersonate", "impersonate_targets"]

log = logging.getLogger("pooledcrawl.transport")

_REDIRECTS: Final = frozenset({301, 302, 303, 307, 308})
_HTTP_VERSIONS: Final = {1: "HTTP/1.0", 2: "HTTP/1.1", 3: "HTTP/2", 4: "HTTP/2", 30: "HTTP/3"}


def impersonate_targets() -> list[str]:
    """Every browser name curl_cffi can impersonate: versioned targets and aliases."""
    return sorted({b.value for b in BrowserType} | set(REAL_TARGET_MAP))


def check_impersonate(target: str) -> str:
    """``target`` resolved to a versioned one (``chrome`` -> ``chrome152``), or a UsageError."""
    if target in REAL_TARGET_MAP:
        return REAL_TARGET_MAP[target]
    if target in {b.value for b in BrowserType}:
        return target
    names = ", ".join(n for n in impersonate_targets() if not n[-1].isdigit())
    raise UsageError(
        f"setting impersonate: curl_cffi knows no browser {target!r} "
        f"(try one of {names}, or a versioned name such as chrome131)"
    )


class _Session:
    """A multi handle (the connection pool), its share handle and idle easy handles."""

    def __init__(self, settings: Settings) -> None:
        self.multi = AsyncCurl()
        limit = session_connector_limit(settings)
        _multi_setopt(self.multi, CurlMOpt.MAX_TOTAL_CONNECTIONS, limit)
        _multi_setopt(self.multi, CurlMOpt.MAXCONNECTS, limit)
        if settings.connector_limit_per_host:
            per_host = settings.connector_limit_per_host
            _multi_setopt(self.multi, CurlMOpt.MAX_HOST_CONNECTIONS, per_host)
        self.share = CurlShare(dns=True, ssl_session=True)
        if settings.cookies:
            self.share.share(CurlLockData.COOKIE)
        self.idle: list[Curl] = []

    def take(self) -> Curl:
        return self.idle.pop() if self.idle else Curl()

    async def close(self) -> None:
        await self.multi.close()  # type: ignore[no-untyped-call]
        for curl in self.idle:
            curl.close()
        self.idle.clear()
        with contextlib.suppress(CurlError):  # a handle still in flight: freed with it
            self.share.close()


class CurlTransport:
    """One session per (proxy, impersonated browser), each made on first use."""

    def __init__(self, settings: Settings) -> None:
        self._settings = settings
        self._sessions: dict[tuple[str | None, str | None], _Session] = {}
        self._cap = settings.max_response_size
        wanted = settings.impersonate
        self._impersonate = check_impersonate(wanted) if wanted else None
        self._targets: dict[str, str] = {}
        #: one resolver for direct requests, made in the running loop (c-ares needs it)
        self._resolver: CachingResolver | None = None
        self.use_default_headers(settings_headers(settings))

    def use_default_headers(self, headers: Mapping[str, str]) -> None:
        """What every exchange sends unless a request says otherwise (see
        ``transport.base.DefaultHeaders``)."""
        own = {k.lower(): v for k, v in headers.items()}
        # a browser identity sends its own User-Agent, unless the user set one on purpose
        browser = own
        if own.get("user-agent") == DEFAULT_USER_AGENT:
            browser = {k: v for k, v in own.items() if k != "user-agent"}
        #: default headers without and with a browser identity: (mapping, encoded lines)
        self._headers = {False: (own, header_lines(own.items()))}
        self._headers[True] = (browser, header_lines(browser.items()))

    @property
    def dns(self) -> CachingResolver | None:
        """The resolver, for its counts (None before the first direct fetch)."""
        return self._resolver

    def resolver(self) -> CachingResolver:
        """The resolver direct requests use, made on first call (in the running loop):
        ``politeness_key=ip`` looks names up through it, so the request that follows
        finds the answer in its cache."""
        if self._resolver is None:
            self._resolver = CachingResolver.from_settings(self._settings)
        return self._resolver

    async def _pin(self, url: str, proxy: str | None) -> list[bytes] | None:
        """``CURLOPT_RESOLVE`` for ``url``'s host, from the crawl's resolver; None for
        an IP literal, or through a proxy. A name that does not resolve fails here,
        as over aiohttp."""
        if proxy is not None:
            return None
        _, host, port = lookup_target(url)
        if not host or is_literal(host):
            return None
        try:
            answers = await self.resolver().addresses(host, socket.AF_UNSPEC)
        except OSError as exc:  # failed now, or cached as failed
            raise dns_failure(host, port, exc.strerror or str(exc)) from None
        addresses = ",".join(
            f"[{address}]" if family == socket.AF_INET6 else address for address, family in answers
        )
        return [f"+{host}:{port}:{addresses}".encode()]

    # ---- sessions ---------------------------------------------------------------------
    def _target(self, request: Request) -> str | None:
        meta = request._meta
        wanted = meta.get("impersonate") if meta else None
        if wanted is None:
            return self._impersonate
        if not wanted:  # "" or False: no browser identity for this request
            return None
        target = self._targets.get(wanted)
        if target is None:
            try:
                target = check_impersonate(str(wanted))
            except UsageError as exc:
                raise TransportError("ImpersonateError", str(exc), retryable=False) from None
            self._targets[wanted] = target
        return target

    def _session(self, proxy: str | None, target: str | None) -> _Session:
        key = (proxy, target)
        session = self._sessions.get(key)
        if session is None:
            session = self._sessions[key] = _Session(self._settings)
        return session

    # ---- fetching ---------------------------------------------------------------------
    async def fetch(self, request: Request, proxy: str | None = None) -> Response:
        target = self._target(request)
        session = self._session(proxy, target)
        timing = Timing()
        started = time.perf_counter()
        method, url, body = request.method, request.url, request.body
        headers = request.headers
        visited = [url]
        curl: Curl | None = None
        try:
            async with asyncio.timeout(self._settings.timeout_total):
                # before a handle is taken: a name that does not resolve costs none
                pin = await self._pin(url, proxy)
                curl = session.take()
                while True:
                    # libcurl writes the decoded body into it, so the cap holds for a
                    # compressed body too; its error fails the transfer through curl_cffi
                    sink = CappedBody(self._cap)
                    head = BytesIO()
                    self._configure(curl, session, method, url, headers, body, proxy, target)
                    if pin is not None:
                        curl.setopt(CurlOpt.RESOLVE, pin)
                    curl.setopt(CurlOpt.WRITEDATA, sink)
                    curl.setopt(CurlOpt.HEADERDATA, head)
                    try:
                        await session.multi.add_handle(curl)
                    except CurlError as exc:
                        raise classify(curl, exc, proxy, self._cap) from exc
                    finally:
                        curl.clean_handles_and_buffers()
                    opened = info(curl, CurlInfo.NUM_CONNECTS)
                    timing.opened += opened
                    timing.reused += opened == 0
                    if not opened:
                        # on a kept-alive connection (or stream), the time until the
                        # request could be sent was all waiting for it
                        timing.conn_wait += info(curl, CurlInfo.PRETRANSFER_TIME_T) / 1e6
                    status = info(curl, CurlInfo.RESPONSE_CODE)
                    if status not in _REDIRECTS:
                        break
                    location = redirect_target(curl, url, head.getvalue())
                    if location is None:
                        break
                    if len(visited) > self._settings.max_redirects:
                        raise too_many_redirects(visited)
                    if urlsplit(location).scheme.lower() not in ("http", "https"):
                        raise TransportError(
                            "RedirectRefused",
                            f"redirect to a non-http(s) URL: {location}",
                            retryable=False,
                        )
                    method, body, headers = redirected(status, method, body, headers, url, location)
                    url = location
                    visited.append(url)
                    pin = await self._pin(url, proxy)
                timing.body = time.perf_counter() - started
                # the final exchange's body transfer: total time less time to first byte
                transfer = info(curl, CurlInfo.TOTAL_TIME_T) - info(
                    curl, CurlInfo.STARTTRANSFER_TIME_T
                )
                timing.headers = max(timing.body - transfer / 1e6, 0.0)
                version = _HTTP_VERSIONS.get(info(curl, CurlInfo.HTTP_VERSION), "HTTP/1.1")
        except TransportError as exc:
            _discard(session, curl)
            exc.args = (scrub(str(exc.args[0]), proxy),)
            raise
        except TimeoutError as exc:
            _discard(session, curl)
            raise TransportError("TimeoutError", "timed out", retryable=True) from exc
        except BaseException:
            _discard(session, curl)
            raise
        session.idle.append(curl)
        response = Response(
            url, status, parse_headers(head.getvalue()), sink.value(), request, version
        )
        response.timing = timing
        return response

    def _configure(
        self,
        curl: Curl,
        session: _Session,
        method: str,
        url: str,
        headers: dict[str, str] | None,
        body: bytes | None,
        proxy: str | None,
        target: str | None,
    ) -> None:
        """Every option of one exchange, on a handle fresh from ``reset()``."""
        s = self._settings
        curl.reset()
        curl.setopt(CurlOpt.SHARE, session.share._curl_share)
        curl.setopt(CurlOpt.URL, url.encode())
        base, lines = self._headers[target is not None]
        if headers:
            merged = dict(base)
            merged.update((k.lower(), v) for k, v in headers.items())
            curl.setopt(CurlOpt.HTTPHEADER, header_lines(merged.items()))
        elif lines:
            curl.setopt(CurlOpt.HTTPHEADER, lines)
        if method == "HEAD":
            curl.setopt(CurlOpt.NOBODY, 1)
        elif method != "GET" or body:
            if body or method in ("POST", "PUT", "PATCH"):
                curl.setopt(CurlOpt.POSTFIELDSIZE, len(body or b""))
                curl.setopt(CurlOpt.COPYPOSTFIELDS, body or b"")
            if method != "POST":
                curl.setopt(CurlOpt.CUSTOMREQUEST, method.encode())
        if target is not None:
            # sets the ClientHello, the HTTP/2 SETTINGS and the browser's default
            # headers, merged with ours above in the browser's order
            if curl.impersonate(target, default_headers=True) != 0:
                raise TransportError(
                    "ImpersonateError", f"curl_cffi cannot impersonate {target}", retryable=False
                )
        else:
            curl.setopt(CurlOpt.ACCEPT_ENCODING, b"")  # every coding libcurl decodes
        http2 = s.http2 or target is not None
        if http2:
            curl.setopt(CurlOpt.HTTP_VERSION, CurlHttpVersion.V2TLS)
            # requests that start together wait for the first connection's ALPN, then
            # share it as streams, rather than each opening its own connection
            curl.setopt(CurlOpt.PIPEWAIT, 1)
        else:
            curl.setopt(CurlOpt.HTTP_VERSION, CurlHttpVersion.V1_1)
        if s.cookies:
            curl.setopt(CurlOpt.COOKIEFILE, b"")  # the cookie engine, on the shared jar
        curl.setopt(CurlOpt.TIMEOUT_MS, int(s.timeout_total * 1000))
        curl.setopt(CurlOpt.CONNECTTIMEOUT_MS, int(min(s.timeout_connect, s.timeout_total) * 1000))
        curl.setopt(CurlOpt.LOW_SPEED_LIMIT, 1)
        curl.setopt(CurlOpt.LOW_SPEED_TIME, max(math.ceil(s.timeout_sock_read), 1))
        curl.setopt(CurlOpt.MAXFILESIZE_LARGE, self._cap)
        curl.setopt(CurlOpt.MAXAGE_CONN, max(int(s.keepalive_timeout), 1))
        curl.setopt(CurlOpt.DNS_CACHE_TIMEOUT, s.ttl_dns_cache)
        curl.setopt(CurlOpt.NOSIGNAL, 1)
        if s.insecure:
            curl.setopt(CurlOpt.SSL_VERIFYPEER, 0)
            curl.setopt(CurlOpt.SSL_VERIFYHOST, 0)
            curl.setopt(CurlOpt.PROXY_SSL_VERIFYPEER, 0)
            curl.setopt(CurlOpt.PROXY_SSL_VERIFYHOST, 0)
            curl._skip_cacert = True
        elif s.ca_bundle:
            curl.setopt(CurlOpt.CAINFO, s.ca_bundle)
            curl.setopt(CurlOpt.PROXY_CAINFO, s.ca_bundle)
        if proxy is not None:
            curl.setopt(CurlOpt.PROXY, proxy)
            curl.setopt(CurlOpt.SUPPRESS_CONNECT_HEADERS, 1)
            if url.startswith("https") and not proxy.startswith("socks"):
                curl.setopt(CurlOpt.HTTPPROXYTUNNEL, 1)
        else:
            curl.setopt(CurlOpt.PROXY, b"")  # no proxy from the environment

    async def close(self) -> None:
        sessions, self._sessions = self._sessions, {}
        for session in sessions.values():
            await session.close()
        if self._resolver is not None:
            await self._resolver.close()


# ---- helpers --------------------------------------------------------------------------
def _multi_setopt(multi: AsyncCurl, option: CurlMOpt, value: int) -> None:
    """A long option of the multi handle. curl_cffi 0.17's ``AsyncCurl.setopt`` passes a
    pointer *to* the long, which ``curl_multi_setopt`` (varargs) reads as the value: a
    limit of some billions. The value itself, cast to ``void *``, has the width and
    calling convention of a ``long`` on LP64 platforms (Linux, macOS)."""
    code = lib.curl_multi_setopt(multi._curlm, int(option), ffi.cast("void *", value))
    if code != 0:
        raise UsageError(f"libcurl refused {option.name} = {value} (code {code})")


def _discard(session: _Session, curl: Curl | None) -> None:
    """Drop a handle after a failure: libcurl may still hold it (a timeout), and its
    state is not worth trusting for the next request. None: none was taken yet."""
    if curl is None:
        return
    with contextlib.suppress(CurlError):
        session.multi.remove_handle(curl)
    curl.close()
