"""HTTP/1.1 over aiohttp: the default transport, and the fastest."""

from __future__ import annotations

import asyncio
import logging
import ssl
import time
from collections import Counter, OrderedDict
from collections.abc import Mapping
from typing import Any

import aiohttp
from aiohttp_socks import ProxyConnectionError as SocksConnectionError
from aiohttp_socks import ProxyError as SocksError
from aiohttp_socks import ProxyTimeoutError as SocksTimeoutError
from multidict import CIMultiDict, CIMultiDictProxy
from yarl import URL

from pooledcrawl.dns.resolver import CachingResolver
from pooledcrawl.http.request import Request
from pooledcrawl.http.response import Response
from pooledcrawl.metrics.timing import Timing
from pooledcrawl.proxy.cost import request_head_bytes
from pooledcrawl.settings import Settings
from pooledcrawl.sizing import session_connector_limit
from pooledcrawl.transport.base import (
    PROXY_AUTH_FAILED,
    TransportError,
    settings_headers,
    too_many_redirects,
)
from pooledcrawl.transport.capped import check_length, read_capped
from pooledcrawl.transport.metering import (
    MeteredConnector,
    MeteredSocksConnector,
    end_metered_fetch,
    metered_fetch,
)

__all__ = ["AiohttpTransport"]

log = logging.getLogger("pooledcrawl.transport")

_CHUNK = 64 * 1024
_IDEMPOTENT_METHODS = frozenset({"GET", "HEAD", "OPTIONS", "TRACE", "PUT", "DELETE"})


class AiohttpTransport:
    """One ``ClientSession`` per proxy identity (``None`` = direct), each created on first use.

    A sticky proxy session is its own identity (the session id is in the proxy
    credentials), so it gets its own connections and cookie jar: a kept-alive
    connection to the gateway is bound to the exit it was opened through, and
    sharing one across sessions would send a session's requests from another
    session's IP. Identities are many and short-lived, so they are kept in a
    bounded LRU, and a retired one is closed as soon as it is idle.
    """

    #: sessions (proxy identities) kept open at once; the least recently used idle one
    #: is closed past this
    max_sessions = 512
    #: fill ``Response.wire_bytes`` (set by the engine when it meters cost)
    count_bytes = False

    def __init__(self, settings: Settings) -> None:
        self._settings = settings
        self._sessions: OrderedDict[str | None, aiohttp.ClientSession] = OrderedDict()
        #: requests in flight per identity: a session is closed only when idle
        self._busy: Counter[str | None] = Counter()
        #: retired identities, closed when their last request ends
        self._doomed: set[str | None] = set()
        self._timeout = aiohttp.ClientTimeout(
            total=settings.timeout_total,
            connect=settings.timeout_connect,
            sock_connect=settings.timeout_sock_connect,
            sock_read=settings.timeout_sock_read,
        )
        self._ssl = _ssl_option(settings)
        self._cap = settings.max_response_size
        #: one resolver for all sessions, made in the running loop (c-ares needs it)
        self._resolver: CachingResolver | None = None
        self._headers = settings_headers(settings)

    def use_default_headers(self, headers: Mapping[str, str]) -> None:
        """What every session sends unless a request says otherwise (see
        ``transport.base.DefaultHeaders``); for sessions made from now on."""
        self._headers = dict(headers)

    @property
    def dns(self) -> CachingResolver | None:
        """The resolver, for its counts (None before the first fetch)."""
        return self._resolver

    def _session(self, proxy: str | None) -> aiohttp.ClientSession:
        session = self._sessions.get(proxy)
        if session is None:
            s = self._settings
            limit = session_connector_limit(s)
            idle = s.max_idle_connections
            options: dict[str, Any] = {
                "limit": limit,
                "max_idle": limit if idle is None else idle,
                "limit_per_host": s.connector_limit_per_host or 0,
                "keepalive_timeout": s.keepalive_timeout,
                # DNS answers are cached by the resolver, each for its own TTL
                "use_dns_cache": False,
                "resolver": self._get_resolver(),
                "ssl": self._ssl,
            }
            connector: aiohttp.TCPConnector
            session_proxy = proxy
            if proxy is not None and proxy.startswith("socks"):
                # SOCKS: the connector dials through the proxy (aiohttp-socks); the
                # credentials in the URL go to that proxy's handshake only.
                rdns = True if proxy.startswith("socks5h") else None
                url = proxy.replace("socks5h://", "socks5://", 1)
                connector = MeteredSocksConnector.from_url(url, rdns=rdns, **options)
                session_proxy = None
            else:
                connector = MeteredConnector(**options)
            session = aiohttp.ClientSession(
                connector=connector,
                timeout=self._timeout,
                headers=self._headers,
                cookie_jar=aiohttp.CookieJar(unsafe=True)
                if s.cookies
                else aiohttp.DummyCookieJar(),
                proxy=session_proxy,
                max_field_size=16 * 1024,
                max_line_size=16 * 1024,
                raise_for_status=False,
            )
            self._sessions[proxy] = session
        elif len(self._sessions) > 1:
            self._sessions.move_to_end(proxy)
        return session

    def discard(self, proxy: str | None) -> None:
        """``proxy`` (a retired session's identity) is not used again: close its
        connections and drop its cookies once its requests in flight are done."""
        if proxy in self._sessions:
            self._doomed.add(proxy)

    async def _trim(self) -> None:
        """After a fetch: close the retired sessions that are idle; close the least
        recently used idle sessions past ``max_sessions``. The sessions to close are
        taken out before the first await, so concurrent trims never close one twice."""
        closing: list[aiohttp.ClientSession] = []
        for key in [key for key in self._doomed if not self._busy[key]]:
            self._doomed.discard(key)
            self._busy.pop(key, None)
            session = self._sessions.pop(key, None)
            if session is not None:
                closing.append(session)
        excess = len(self._sessions) - self.max_sessions
        if excess > 0:
            for key in [key for key in self._sessions if not self._busy[key]][:excess]:
                self._busy.pop(key, None)
                self._doomed.discard(key)
                closing.append(self._sessions.pop(key))
        for session in closing:
            await session.close()

    def resolver(self) -> CachingResolver:
        """The resolver its connections use, made on first call (in the running loop):
        ``politeness_key=ip`` looks names up through it, so the fetch that follows
        finds the answer in its cache."""
        return self._get_resolver()

    def _get_resolver(self) -> CachingResolver:
        if self._resolver is None:
            self._resolver = CachingResolver.from_settings(self._settings)
        return self._resolver

    async def fetch(self, request: Request, proxy: str | None = None) -> Response:
        session = self._session(proxy)
        self._busy[proxy] += 1
        got_headers = False
        timing = Timing()
        started = time.perf_counter()
        metering = metered_fetch(timing)  # pool wait and keep-alive reuse
        try:
            async with session.request(
                request.method,
                # sent as written: the engine made it the URL a browser sends, and
                # yarl would otherwise re-quote it (%7e to ~, %zz to %25zz)
                URL(request.url, encoded=True) if request.url.isascii() else request.url,
                headers=request.headers,
                data=request.body,
                # aiohttp fails on its max_redirects-th redirect; ours is how many to follow
                max_redirects=self._settings.max_redirects + 1,
            ) as resp:
                got_headers = True
                timing.headers = time.perf_counter() - started
                body = await self._read_capped(resp)
                timing.body = time.perf_counter() - started
                # more connections than exchanges: aiohttp resent on a fresh one
                # after the server had closed a kept-alive connection
                timing.disconnects = max(timing.reused + timing.opened - len(resp.history) - 1, 0)
                headers = _clean_headers(resp.headers)
                response = Response(str(resp.url), resp.status, headers, body, request, "HTTP/1.1")
                response.timing = timing
                if self.count_bytes:
                    response.wire_bytes = _wire_bytes(resp, request, proxied=proxy is not None)
                return response
        except TransportError:
            raise
        except Exception as exc:
            error = _classify(exc, proxy is not None)
            # A kept-alive connection the server had closed: aiohttp already resends
            # idempotent methods once, at once (RFC 9112 9.3.1); flag the others for the
            # engine's one free retry, so every method gets the same treatment.
            error.stale_connection = (
                error.stale_connection
                and not got_headers
                and timing.reused > 0
                and request.method not in _IDEMPOTENT_METHODS
            )
            raise error from exc
        finally:
            end_metered_fetch(metering)
            self._busy[proxy] -= 1
            if self._doomed or len(self._sessions) > self.max_sessions:
                await self._trim()

    async def _read_capped(self, resp: aiohttp.ClientResponse) -> bytes:
        """Read the body, never buffering past the size cap (decompressed size included)."""
        length = resp.content_length
        try:
            check_length(length, self._cap)
            if length is not None and "Content-Encoding" not in resp.headers:
                return await resp.read()
            return await read_capped(resp.content.iter_chunked(_CHUNK), self._cap)
        except TransportError:
            resp.close()
            raise

    async def close(self) -> None:
        sessions, self._sessions = self._sessions, OrderedDict()
        for session in sessions.values():
            await session.close()
        if self._resolver is not None:
            await self._resolver.close()


def _wire_bytes(resp: aiohttp.ClientResponse, request: Request, *, proxied: bool) -> int:
    """Bytes on the wire for the exchange, redirects included: each request line and
    header block, each response status line and header block, the request body and the
    response bodies as transferred (compressed). Through an HTTP proxy the request
    line carries the absolute URL (RFC 9112 3.2.2). TLS framing is not counted."""
    total = 0
    for hop in (*resp.history, resp):
        info = hop.request_info
        target = str(info.url) if proxied else info.url.raw_path_qs
        total += request_head_bytes(info.method, target, info.headers)
        total += 15 + len(hop.reason or "")  # "HTTP/1.1 200 " + reason + CRLF
        total += sum(len(name) + len(value) + 4 for name, value in hop.raw_headers) + 2
        if hop is not resp:
            total += hop.content_length or 0
    if isinstance(request.body, bytes):
        total += len(request.body)
    return total + resp.content.total_raw_bytes


def _clean_headers(headers: CIMultiDictProxy[str]) -> CIMultiDictProxy[str]:
    """Header values that are not UTF-8 arrive with surrogate escapes, which nothing
    downstream can encode (orjson refuses them, so an item holding one would fail);
    read those bytes as Latin-1, HTTP's historical charset. All-ASCII: one scan."""
    if all(value.isascii() for value in headers.values()):
        return headers
    clean: CIMultiDict[str] = CIMultiDict()
    for key, value in headers.items():
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            value = value.encode("utf-8", "surrogateescape").decode("latin-1")
        clean.add(key, value)
    return CIMultiDictProxy(clean)


def _ssl_option(settings: Settings) -> ssl.SSLContext | bool:
    if settings.insecure:
        return False
    if settings.ca_bundle:
        return ssl.create_default_context(cafile=settings.ca_bundle)
    return True


def _classify(exc: BaseException, via_proxy: bool) -> TransportError:
    """Map aiohttp's exceptions onto retryable or final, target's fault or proxy's."""
    name = type(exc).__name__
    message = str(exc) or name
    if isinstance(exc, aiohttp.TooManyRedirects):
        return too_many_redirects([str(r.url) for r in exc.history])
    if isinstance(
        exc, aiohttp.NonHttpUrlRedirectClientError | aiohttp.InvalidUrlRedirectClientError
    ):
        return TransportError(
            "RedirectRefused", f"redirect to a non-http(s) URL: {exc}", retryable=False
        )
    if isinstance(exc, aiohttp.InvalidUrlClientError | aiohttp.NonHttpUrlClientError):
        return TransportError("InvalidURL", message, retryable=False)
    if isinstance(exc, aiohttp.ClientHttpProxyError) and exc.status == 407:
        # no proxy URL in the message: it would carry the credentials
        return TransportError(
            PROXY_AUTH_FAILED, "the proxy answered 407 to CONNECT", retryable=True, proxy_fault=True
        )
    if isinstance(exc, aiohttp.ClientHttpProxyError):
        # 502/504 on CONNECT: the proxy is fine, the target is not reachable through it
        return TransportError(
            name, message, retryable=True, proxy_fault=exc.status not in (502, 504)
        )
    if isinstance(exc, aiohttp.ClientProxyConnectionError | SocksConnectionError):
        return TransportError(name, message, retryable=True, proxy_fault=True)
    if isinstance(exc, SocksError) and "authentication" in message.lower():
        return TransportError(PROXY_AUTH_FAILED, message, retryable=True, proxy_fault=True)
    if isinstance(exc, SocksError):
        # SOCKS reply codes 3-6 (unreachable, refused, TTL) are about the target
        target_side = exc.error_code in (3, 4, 5, 6)
        return TransportError(name, message, retryable=True, proxy_fault=not target_side)
    if isinstance(exc, SocksTimeoutError):
        return TransportError("TimeoutError", message, retryable=True)
    if isinstance(exc, aiohttp.ClientConnectorCertificateError | aiohttp.ClientSSLError):
        return TransportError(name, message, retryable=False)
    if isinstance(exc, aiohttp.ServerDisconnectedError):
        return TransportError(name, message, retryable=True, stale_connection=True)
    if isinstance(exc, aiohttp.ClientConnectorError):
        return TransportError(name, message, retryable=True, proxy_fault=via_proxy)
    if isinstance(exc, asyncio.TimeoutError | aiohttp.ServerTimeoutError):
        return TransportError("TimeoutError", message if str(exc) else "timed out", retryable=True)
    if isinstance(exc, aiohttp.ClientResponseError) and exc.status == 400:
        # aiohttp's parser rejected what the server sent (a malformed status line...)
        return TransportError("BadHttpMessage", message, retryable=True)
    if isinstance(exc, aiohttp.ClientError | OSError):
        return TransportError(name, message, retryable=True)
    log.debug("unexpected transport error", exc_info=exc)
    return TransportError(name, message, retryable=False)
