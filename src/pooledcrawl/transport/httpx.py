"""HTTP/2 over httpx, for targets that reward it; HTTP/1.1 on aiohttp stays the default.

What to know about HTTP/2 here (see also the README's HTTP/2 section):

* **Streams per connection.** httpx (httpcore) opens one HTTP/2 connection per
  origin and multiplexes at most min(server ``MAX_CONCURRENT_STREAMS``, 100)
  streams over it; it does not open a second connection when the streams run
  out. Requests above that wait for a free stream. The wait is measured (it is
  part of the pool wait in the stats), and a domain cap above 100 is warned
  about once.
* **Fallback.** HTTP/2 is offered through TLS ALPN. A server that does not
  select ``h2`` (and every plain ``http://`` URL: there is no cleartext h2c)
  gets HTTP/1.1 on the same client; ``response.http_version`` says which.
* **Proxies.** One ``AsyncClient`` per proxy. ``https://`` targets go through
  an HTTP proxy in a CONNECT tunnel and negotiate h2 with the target inside it;
  ``http://`` targets are forwarded as HTTP/1.1. All streams of a connection
  share one tunnel, so a rotating gateway gives them all the same exit IP.
  SOCKS proxies need the ``socksio`` package (``pip install 'httpx[socks]'``).
* **DNS.** Direct connections resolve names through the crawl's resolver (c-ares,
  cached, ``dns_servers``; see :mod:`pooledcrawl.transport.httpx_dns`), as over
  aiohttp; through a proxy, the proxy resolves them.
"""

from __future__ import annotations

import asyncio
import logging
import ssl
import time
from collections.abc import Mapping
from http.cookiejar import CookieJar, DefaultCookiePolicy
from typing import Any, TypeVar

import httpx
from multidict import CIMultiDict, CIMultiDictProxy

from pooledcrawl.dns.resolver import CachingResolver
from pooledcrawl.http.request import Request
from pooledcrawl.http.response import Response
from pooledcrawl.metrics.timing import Timing
from pooledcrawl.proxy.cost import request_head_bytes
from pooledcrawl.settings import Settings
from pooledcrawl.transport.base import TransportError, dns_failure, settings_headers
from pooledcrawl.transport.capped import CappedBody, check_length, read_capped
from pooledcrawl.transport.decoding import decoder_for
from pooledcrawl.transport.httpx_dns import DnsLookupError, ResolvingBackend, ResolvingTransport

__all__ = ["MAX_STREAMS", "HttpxTransport", "httpx_limits"]

log = logging.getLogger("pooledcrawl.transport")

_E = TypeVar("_E", bound=BaseException)

#: httpcore's own cap on concurrent streams per HTTP/2 connection.
MAX_STREAMS = 100


def httpx_limits(settings: Settings) -> httpx.Limits:
    """The pool limits from the settings, aiohttp's connector limits mapped onto httpx's.

    ``connector_limit`` is ``max_connections`` (derived from ``concurrency`` plus
    a third when unset); ``connector_limit_per_host`` bounds the idle connections
    kept (``max_keepalive_connections``); ``keepalive_timeout`` is their expiry.
    """
    limit = settings.connector_limit or max(settings.concurrency + settings.concurrency // 3, 1)
    return httpx.Limits(
        max_connections=limit,
        max_keepalive_connections=settings.connector_limit_per_host or limit,
        keepalive_expiry=settings.keepalive_timeout,
    )


class HttpxTransport:
    """One ``httpx.AsyncClient(http2=True)`` per proxy (``None`` = direct), made on first use."""

    #: fill ``Response.wire_bytes`` (set by the engine when it meters cost)
    count_bytes = False

    def __init__(self, settings: Settings, *, verify: ssl.SSLContext | bool = True) -> None:
        self._settings = settings
        self._clients: dict[str | None, httpx.AsyncClient] = {}
        self._verify = verify
        self._limits = httpx_limits(settings)
        self._timeout = httpx.Timeout(
            connect=settings.timeout_connect,
            read=settings.timeout_sock_read,
            write=settings.timeout_sock_read,
            pool=settings.timeout_total,
        )
        self._cap = settings.max_response_size
        self._headers = settings_headers(settings)
        #: one resolver for the direct client, made in the running loop (c-ares needs it)
        self._resolver: CachingResolver | None = None
        if settings.domain_max > MAX_STREAMS:
            log.warning(
                "HTTP/2: httpx carries at most %d streams over its one connection per host; "
                "a domain cap of %d means requests above that wait for a stream "
                "(it shows as pool wait)",
                MAX_STREAMS,
                settings.domain_max,
            )

    def use_default_headers(self, headers: Mapping[str, str]) -> None:
        """What every client sends unless a request says otherwise (see
        ``transport.base.DefaultHeaders``); for clients made from now on."""
        self._headers = dict(headers)

    @property
    def dns(self) -> CachingResolver | None:
        """The resolver, for its counts (None before the first direct fetch)."""
        return self._resolver

    def resolver(self) -> CachingResolver:
        """The resolver direct connections use, made on first call (in the running
        loop): ``politeness_key=ip`` looks names up through it, so the connection that
        follows finds the answer in its cache."""
        if self._resolver is None:
            self._resolver = CachingResolver.from_settings(self._settings)
        return self._resolver

    def _client(self, proxy: str | None) -> httpx.AsyncClient:
        client = self._clients.get(proxy)
        if client is None:
            s = self._settings
            pool: dict[str, Any]
            if proxy is None:
                backend = ResolvingBackend(self.resolver())
                pool = {
                    "transport": ResolvingTransport(
                        backend, verify=self._verify, limits=self._limits, http2=True
                    )
                }
            else:  # the proxy resolves the target's name
                pool = {"http2": True, "verify": self._verify, "limits": self._limits}
            try:
                client = httpx.AsyncClient(
                    **pool,
                    timeout=self._timeout,
                    proxy=proxy,
                    follow_redirects=True,
                    max_redirects=s.max_redirects,
                    headers=self._headers,
                    cookies=None if s.cookies else _no_cookies(),
                    trust_env=False,
                )
            except ImportError as exc:  # SOCKS without socksio
                raise TransportError(
                    "ProxyError",
                    f"this proxy needs an extra package with --http2: {exc}",
                    retryable=False,
                    proxy_fault=True,
                ) from None
            self._clients[proxy] = client
        return client

    async def fetch(self, request: Request, proxy: str | None = None) -> Response:
        client = self._client(proxy)
        timing = Timing()
        started = time.perf_counter()
        tracer = _Tracer(timing, started)
        try:
            async with asyncio.timeout(self._settings.timeout_total):
                async with client.stream(
                    request.method,
                    request.url,
                    headers=request.headers,
                    content=request.body,
                    extensions={"trace": tracer},
                ) as resp:
                    timing.headers = time.perf_counter() - started
                    body = await self._read_capped(resp)
                    timing.body = time.perf_counter() - started
        except TransportError:
            raise
        except Exception as exc:
            raise _classify(exc, proxy is not None) from exc
        timing.reused = max(len(resp.history) + 1 - timing.opened, 0)
        headers = CIMultiDictProxy(CIMultiDict(resp.headers.multi_items()))
        response = Response(
            str(resp.url), resp.status_code, headers, body, request, resp.http_version
        )
        response.timing = timing
        if self.count_bytes:
            response.wire_bytes = _wire_bytes(resp, proxied=proxy is not None)
        return response

    async def _read_capped(self, resp: httpx.Response) -> bytes:
        """Read the body, never buffering past the size cap (decompressed size included).

        Raw bytes, decoded here a bounded step at a time: httpx's ``aiter_bytes``
        inflates a whole raw chunk (64 KiB of a gzip bomb: up to 64 MiB) before
        the cap could see it."""
        length = resp.headers.get("Content-Length", "")
        check_length(int(length) if length.isdigit() else None, self._cap)
        decoder = decoder_for(resp.headers.get_list("Content-Encoding"))
        if decoder.passthrough:
            return await read_capped(resp.aiter_raw(), self._cap)
        body = CappedBody(self._cap)
        async for raw in resp.aiter_raw():
            for piece in decoder.decode(raw):
                body.write(piece)  # raises ResponseTooLarge, which stops the decoding
        for piece in decoder.flush():
            body.write(piece)
        return body.value()

    async def close(self) -> None:
        clients, self._clients = self._clients, {}
        for client in clients.values():
            await client.aclose()
        if self._resolver is not None:
            await self._resolver.close()


def _wire_bytes(resp: httpx.Response, *, proxied: bool) -> int:
    """Bytes of the exchange as HTTP/1.1 would send them (request line and headers,
    status line and headers) plus the body as downloaded (compressed). Over HTTP/2,
    HPACK sends headers smaller: an upper bound there."""
    total = 0
    for hop in (*resp.history, resp):
        sent = hop.request
        target = str(sent.url) if proxied else sent.url.raw_path.decode("ascii", "replace")
        total += request_head_bytes(sent.method, target, dict(sent.headers.items()))
        total += 15 + len(hop.reason_phrase)
        total += sum(len(k) + len(v) + 4 for k, v in hop.headers.raw) + 2
    return total + resp.num_bytes_downloaded


class _Tracer:
    """httpcore's ``trace`` extension: when the request got a connection, and whether
    it had to open one. The first event of a fetch is either opening a connection or
    sending on one, so the time until it is the wait for the pool (or for a stream)."""

    __slots__ = ("_seen", "_started", "_timing")

    def __init__(self, timing: Timing, started: float) -> None:
        self._timing = timing
        self._started = started
        self._seen = False

    async def __call__(self, name: str, info: dict[str, Any]) -> None:
        if not self._seen:
            self._seen = True
            self._timing.conn_wait = time.perf_counter() - self._started
        if name.endswith("connect_tcp.complete"):
            self._timing.opened += 1


def _no_cookies() -> CookieJar:
    """A cookie jar whose policy accepts no domain: ``cookies = false``. (A jar, not an
    ``httpx.Cookies``: the client would copy that into a jar with the default policy.)"""
    return CookieJar(policy=DefaultCookiePolicy(allowed_domains=[]))


def _cause(exc: BaseException, kind: type[_E]) -> _E | None:
    """The first exception of type ``kind`` in ``exc``'s chain, ``exc`` included."""
    seen: BaseException | None = exc
    for _ in range(8):  # bounded: chains are short, and may loop
        if seen is None:
            return None
        if isinstance(seen, kind):
            return seen
        seen = seen.__cause__ or seen.__context__
    return None


def _caused_by(exc: BaseException, kind: type[BaseException]) -> bool:
    return _cause(exc, kind) is not None


def _classify(exc: BaseException, via_proxy: bool) -> TransportError:
    """Map httpx's exceptions onto retryable or final, target's fault or proxy's.

    Names match the aiohttp transport's where the failure is the same
    (``TimeoutError``, ``ServerDisconnectedError``...), so stats read alike.
    """
    name = type(exc).__name__
    message = str(exc) or name
    if isinstance(exc, httpx.TooManyRedirects):
        return TransportError(name, "too many redirects (or a redirect loop)", retryable=False)
    if isinstance(exc, httpx.UnsupportedProtocol):
        # the request's own URL was checked before; so this came from a redirect
        return TransportError(
            "RedirectRefused", f"redirect to a non-http(s) URL: {exc}", retryable=False
        )
    if isinstance(exc, httpx.InvalidURL):
        return TransportError("InvalidURL", message, retryable=False)
    lookup = _cause(exc, DnsLookupError)
    if lookup is not None:  # the name as aiohttp names it: the stats read alike
        return dns_failure(lookup.host, lookup.port, lookup.reason)
    if isinstance(exc, httpx.ProxyError):
        return TransportError(name, message, retryable=True, proxy_fault=True)
    if isinstance(exc, asyncio.TimeoutError | httpx.TimeoutException):
        return TransportError("TimeoutError", message if str(exc) else "timed out", retryable=True)
    if _caused_by(exc, ssl.SSLCertVerificationError):
        return TransportError("SSLCertVerificationError", message, retryable=False)
    if isinstance(exc, httpx.RemoteProtocolError) and (
        "disconnected" in message.lower() or "ConnectionTerminated" in message
    ):
        # a kept-alive connection the server had closed, or a GOAWAY: try again at once
        return TransportError(
            "ServerDisconnectedError", message, retryable=True, stale_connection=True
        )
    if isinstance(exc, httpx.ConnectError):
        return TransportError(name, message, retryable=True, proxy_fault=via_proxy)
    if isinstance(exc, httpx.TransportError | httpx.DecodingError | OSError):
        return TransportError(name, message, retryable=True)
    log.debug("unexpected transport error", exc_info=exc)
    return TransportError(name, message, retryable=False)
