"""httpx's direct connections through the crawl's resolver.

httpx (httpcore, anyio) looks names up itself, with ``getaddrinfo`` in a thread per
lookup and no cache: ``dns_servers`` would be ignored, a dead name looked up again
for each connection, and ``politeness_key=ip`` would look each name up twice.
httpcore's connection pool takes a network backend; :class:`ResolvingBackend`
resolves the name through the :class:`~pooledcrawl.dns.CachingResolver` and connects
to the address. TLS is unchanged: httpcore hands ``start_tls`` the URL's host name
as ``server_hostname`` on its own, so SNI and the certificate check stay on the name.

Only for connections without a proxy: through one, the proxy resolves the target.
"""

from __future__ import annotations

import socket
import ssl
from collections.abc import Iterable
from typing import Any

import httpcore
import httpx

from pooledcrawl.dns.names import is_literal
from pooledcrawl.dns.resolver import CachingResolver

__all__ = ["DnsLookupError", "ResolvingBackend", "ResolvingTransport"]

#: what aiohttp's connector and politeness_key=ip ask for: one cache entry a name
FAMILY = socket.AF_UNSPEC


class DnsLookupError(httpcore.ConnectError):
    """A name that did not resolve. httpx raises it as its ``ConnectError``, with this
    as the cause, which is how the transport tells a DNS failure from a refusal."""

    def __init__(self, host: str, port: int, reason: str) -> None:
        super().__init__(f"Cannot connect to host {host}:{port} [{reason}]")
        self.host, self.port, self.reason = host, port, reason


class ResolvingBackend(httpcore.AsyncNetworkBackend):
    """Connects to what the resolver answers for a name, each address in turn."""

    def __init__(self, resolver: CachingResolver) -> None:
        self._resolver = resolver
        # what httpcore's default backend (AutoBackend, not exported) picks under
        # asyncio; given an address, anyio connects without a lookup of its own
        self._inner = httpcore.AnyIOBackend()

    async def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,  # noqa: ASYNC109 - httpcore's interface
        local_address: str | None = None,
        socket_options: Iterable[Any] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        if is_literal(host):
            addresses = [host]
        else:
            try:
                answers = await self._resolver.addresses(host, FAMILY)
            except OSError as exc:  # failed now, or cached as failed
                raise DnsLookupError(host, port, exc.strerror or str(exc)) from None
            addresses = [address for address, _ in answers]
        failure: Exception | None = None
        for address in addresses:
            try:
                return await self._inner.connect_tcp(
                    address,
                    port,
                    timeout=timeout,
                    local_address=local_address,
                    socket_options=socket_options,
                )
            except (httpcore.ConnectError, httpcore.ConnectTimeout) as exc:
                failure = exc  # the next address may answer
        assert failure is not None  # a resolved name has at least one address
        raise failure

    async def connect_unix_socket(
        self,
        path: str,
        timeout: float | None = None,  # noqa: ASYNC109 - httpcore's interface
        socket_options: Iterable[Any] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        return await self._inner.connect_unix_socket(
            path, timeout=timeout, socket_options=socket_options
        )

    async def sleep(self, seconds: float) -> None:
        await self._inner.sleep(seconds)


class ResolvingTransport(httpx.AsyncHTTPTransport):
    """httpx's own transport for direct requests, its pool connecting through ``backend``.

    ``AsyncHTTPTransport`` builds its httpcore pool itself and takes no network
    backend for it (httpx 0.28, 0.29), while the pool does. So the pool is made again
    here with one, and set as ``_pool``: the one private attribute touched, which
    httpx's request handling, exception mapping and ``aclose`` all go through. Were
    httpx to rename it, the check below fails at once rather than leaving a backend
    that is never used."""

    def __init__(
        self,
        backend: httpcore.AsyncNetworkBackend,
        *,
        verify: ssl.SSLContext | bool,
        limits: httpx.Limits,
        http2: bool = True,
    ) -> None:
        context = httpx.create_ssl_context(verify=verify, trust_env=False)
        super().__init__(verify=context, limits=limits, http2=http2, trust_env=False)
        if not isinstance(getattr(self, "_pool", None), httpcore.AsyncConnectionPool):
            raise RuntimeError("httpx.AsyncHTTPTransport keeps no _pool: update httpx_dns.py")
        self._pool = httpcore.AsyncConnectionPool(
            ssl_context=context,
            max_connections=limits.max_connections,
            max_keepalive_connections=limits.max_keepalive_connections,
            keepalive_expiry=limits.keepalive_expiry,
            http1=True,
            http2=http2,
            network_backend=backend,
        )
