"""``politeness_key=ip``: hosts that resolve to one address share one slot.

Scrapy's ``CONCURRENT_REQUESTS_PER_IP`` gives this: a server behind many names (a
shared host, a CDN edge, a shop platform) sees one limit, not one per name. The
dispatcher picks a request's slot synchronously as it routes it, so the address must
be known by then. :class:`AddressFrontier` stands between the frontier and the
dispatcher: a request whose host is not in the resolver's cache waits in that host's
list while one lookup runs (through the crawl's resolver, so the fetch that follows
finds the answer cached); then the host's requests are handed out together. Routing
never blocks the event loop, and the ``host`` mode does not go through here at all.

A name that fails to resolve is cached as failed by the resolver: its requests are
handed out under their host key, and the transport fails them as it fails any DNS
error (counted, retried, negative-cached), so no second failure path exists.
"""

from __future__ import annotations

import asyncio
import logging
import socket
from collections.abc import Iterable
from typing import Any, Protocol

from pooledcrawl.dns.names import is_literal, lookup_target
from pooledcrawl.dns.resolver import CachingResolver
from pooledcrawl.frontier.base import Frontier
from pooledcrawl.frontier.holding import HoldingFrontier
from pooledcrawl.http.request import Request
from pooledcrawl.proxy.pool import ProxyPool
from pooledcrawl.settings import Settings

__all__ = [
    "AddressFrontier",
    "AddressResolver",
    "address_key",
    "ip_routing",
    "lookup_target",
    "proxied",
]

log = logging.getLogger("pooledcrawl.engine")

#: requests held at most while their hosts are looked up (memory stays bounded)
MAX_HELD = 10_000
#: lookups in flight at most (c-ares takes many; the DNS server should not be flooded)
MAX_LOOKUPS = 256
#: aiohttp's connector asks for this family: the same cache entry serves both
FAMILY = socket.AF_UNSPEC


class AddressResolver(Protocol):
    """What routing by address needs of a resolver (:class:`CachingResolver`)."""

    def peek(self, host: str, port: int = 0, family: int = ...) -> tuple[str, ...] | None: ...

    async def resolve(self, host: str, port: int = 0, family: Any = ...) -> Any: ...


def address_key(host_key: str, address: str) -> str:
    """The slot key for ``host_key`` (``host[:port]``) once its host resolved to
    ``address``: the address, with the port when the host key had one (as ``domain``
    mode keeps it), an IPv6 address bracketed before a port."""
    name, sep, port = host_key.rpartition(":")
    if sep and "]" not in port and port.isdigit() and name:
        literal = f"[{address}]" if ":" in address else address
        return f"{literal}:{port}"
    return address


def proxied(pools: Iterable[ProxyPool | None]) -> bool:
    """Whether any request may go through a proxy. Then the target's address is the
    proxy's business: an HTTP proxy (CONNECT or forward) and ``socks5h://`` resolve the
    name themselves, and so does aiohttp-socks for ``socks5://``; a local lookup would
    be a lookup the crawl does not otherwise make, perhaps of a name only the proxy's
    network can resolve."""
    return any(pool is not None for pool in pools)


class AddressFrontier(HoldingFrontier):
    """The crawl's frontier as the dispatcher sees it with ``politeness_key=ip``."""

    def __init__(self, inner: Frontier, resolver: AddressResolver) -> None:
        super().__init__(inner)
        self._resolver = resolver
        #: (name, port) -> requests waiting for that lookup
        self._waiting: dict[tuple[str, int], list[Request]] = {}
        self._lookups = asyncio.Semaphore(MAX_LOOKUPS)

    # ---- the slot key ----------------------------------------------------------------
    def key(self, url: str) -> str:
        """URL -> slot key: the address its host resolved to (``[:port]`` kept), or
        the host key for an IP literal, a failed name, or one not looked up (a request
        that never came through :meth:`pop`: a parked one rerouted after its answer
        expired)."""
        host_key, name, port = lookup_target(url)
        found = self._resolver.peek(name, port, FAMILY)
        if found:
            return address_key(host_key, found[0])
        return host_key

    # ---- what the dispatcher reads ----------------------------------------------------
    def _take(self, now: float) -> Request | None:
        inner = self._inner
        peek = self._resolver.peek
        while self._held < MAX_HELD:
            request = inner.pop(now)
            if request is None:
                return None
            _, name, port = lookup_target(request.url)
            if peek(name, port, FAMILY) is not None or is_literal(name):
                return request  # known (or known to fail): key() finds it
            target = (name, port)
            waiting = self._waiting.get(target)
            if waiting is None:
                self._waiting[target] = [request]
                self._spawn(f"resolve {name}", self._lookup, target)
            else:
                waiting.append(request)
            self._held += 1
        return None

    # ---- internals -------------------------------------------------------------------
    async def _lookup(self, target: tuple[str, int]) -> None:
        try:
            async with self._lookups:
                await self._resolver.resolve(target[0], target[1], FAMILY)
        except OSError as exc:
            # cached as failed: the requests go out by host key and fail in the transport
            log.debug("%s did not resolve: %s", target[0], exc)
        finally:
            self._ready.extend(self._waiting.pop(target))
            self._on_ready()


def ip_routing(
    frontier: Frontier,
    settings: Settings,
    transport: object,
    pools: Iterable[ProxyPool | None],
) -> tuple[AddressFrontier, CachingResolver | None] | None:
    """The frontier wrapper for ``politeness_key=ip``, and the resolver it made (to be
    closed, and whose counts go to the stats) when the transport has none to share
    (every built-in one has: a transport of the user's may not); None when requests
    may go through a proxy: slots are then keyed by host (logged once, here)."""
    if proxied(pools):
        log.warning(
            "politeness_key=ip: requests go through proxies, which resolve names "
            "themselves; slots are keyed by host instead"
        )
        return None
    shared = getattr(transport, "resolver", None)
    if callable(shared):
        return AddressFrontier(frontier, shared()), None
    # a transport that resolves names its own way: a lookup of our own for the key,
    # and the transport's lookup of the same name follows
    own = CachingResolver.from_settings(settings)
    return AddressFrontier(frontier, own), own
