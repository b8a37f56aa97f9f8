"""A caching resolver for the crawl's connections: answers kept for their TTL, failures for a while.

A broad crawl meets thousands of host names. aiohttp's default resolver runs
``getaddrinfo`` in a thread pool (a handful of lookups at a time) and its own cache
gives every answer the same fixed lifetime and forgets failures, so a dead name is
looked up again for each of its URLs. This one asks c-ares (through ``aiodns``)
when it is installed, concurrently and without threads, keeps each answer for the
TTL the DNS server gave (clamped), keeps failures for ``negative_ttl`` seconds
(RFC 2308's negative caching), shares one lookup among concurrent askers of a name,
and counts what it did. ``servers`` picks the DNS servers (``"127.0.0.1:5353"``).

Every transport connects through it (aiohttp as its resolver, httpx through a
network backend, curl by pinning the answer with ``CURLOPT_RESOLVE``). Only names the
crawler itself connects to are looked up: through an HTTP proxy or a ``socks5h://``
proxy the proxy resolves the target, and no transport asks.
"""

from __future__ import annotations

import asyncio
import socket
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from aiohttp.abc import AbstractResolver, ResolveResult

if TYPE_CHECKING:
    from pooledcrawl.settings import Settings

__all__ = ["CachingResolver", "DnsCache", "DnsCounts"]

try:  # c-ares: optional, as aiohttp has it
    import aiodns
except ImportError:  # pragma: no cover - the test extra installs it
    aiodns = None  # type: ignore[assignment]


@dataclass(slots=True)
class DnsCounts:
    """What the resolver did; the crawl's stats show it under ``dns``."""

    lookups: int = 0
    cache_hits: int = 0
    errors: int = 0
    negative_hits: int = 0
    backend: str = "threaded"

    def to_dict(self) -> dict[str, Any]:
        return {
            "backend": self.backend,
            "lookups": self.lookups,
            "cache_hits": self.cache_hits,
            "dns_errors": self.errors,
            "negative_cache_hits": self.negative_hits,
        }


#: a name's answers as cached: (address, family) each. The port is the asker's, and
#: aiohttp's result dicts are built per ask: a dict per answer kept for every name
#: of a broad crawl would cost more than the rest of what it keeps per host
Addresses = tuple[tuple[str, int], ...]

#: cache key: (host name, address family)
Key = tuple[str, int]


@dataclass(slots=True)
class _Entry:
    expires: float
    addresses: Addresses | None  # None: the name failed
    error: str = ""


@dataclass(slots=True)
class DnsCache:
    """Answers by ``(host, family)``, each until it expires; pure (a clock is passed)."""

    max_entries: int = 100_000
    _entries: dict[Key, _Entry] = field(default_factory=dict)

    def get(self, key: Key, now: float) -> _Entry | None:
        entry = self._entries.get(key)
        if entry is None:
            return None
        if entry.expires <= now:
            del self._entries[key]
            return None
        return entry

    def put(self, key: Key, entry: _Entry, now: float) -> None:
        entries = self._entries
        if key not in entries and len(entries) >= self.max_entries:
            # full: drop what has expired, else the oldest tenth (one pass, rarely)
            dead = [k for k, e in entries.items() if e.expires <= now]
            if not dead:
                dead = list(entries)[: max(1, self.max_entries // 10)]
            for k in dead:
                del entries[k]
        entries[key] = entry

    def __len__(self) -> int:
        return len(self._entries)


class CachingResolver(AbstractResolver):
    """aiohttp resolver: c-ares (``aiodns``) if installed, else the threaded
    ``getaddrinfo``; answers cached for their TTL, failures for ``negative_ttl``."""

    def __init__(
        self,
        *,
        servers: Sequence[str] = (),
        min_ttl: float = 5.0,
        max_ttl: float = 3600.0,
        default_ttl: float = 300.0,
        negative_ttl: float = 30.0,
        max_entries: int = 100_000,
        timeout: float = 5.0,
        channel_lookups: int = 128,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.counts = DnsCounts()
        self._min_ttl, self._max_ttl = min_ttl, max_ttl
        self._default_ttl = default_ttl
        self._negative_ttl = negative_ttl
        self._cache = DnsCache(max_entries)
        self._clock = clock
        self._pending: dict[Key, asyncio.Future[_Entry]] = {}
        self._aiodns: Any = None
        self._options: dict[str, Any] = {"timeout": timeout, "tries": 2}
        if servers:
            self._options["nameservers"] = list(servers)
        #: lookups per c-ares channel (see _new_channel), asked of the current one,
        #: lookups in flight per channel, and channels made
        self._channel_lookups = max(channel_lookups, 1)
        self._channel_asked = 0
        self._busy: dict[Any, int] = {}
        self._channels = 0
        if aiodns is not None:
            self._aiodns = aiodns.DNSResolver(**self._options)
            self._channels = 1
            self.counts.backend = "c-ares"
        elif servers:
            raise RuntimeError("dns_servers needs aiodns (pip install aiodns)")

    @classmethod
    def from_settings(cls, settings: Settings) -> CachingResolver:
        """The crawl's resolver as the settings ask for it (``dns_servers``,
        ``ttl_dns_cache``, ``dns_negative_ttl``); to be made in the running loop."""
        return cls(
            servers=settings.dns_servers,
            max_ttl=float(settings.ttl_dns_cache),
            negative_ttl=settings.dns_negative_ttl,
            timeout=settings.timeout_connect,
        )

    def peek(
        self, host: str, port: int = 0, family: int = socket.AF_INET
    ) -> tuple[str, ...] | None:
        """The cached addresses of a name, without a lookup and without counting: None
        when not cached (or expired), ``()`` when it is cached as failed. For callers
        that must decide synchronously (routing by address, ``politeness_key=ip``)."""
        del port  # answers are cached per name and family: the port is not asked of DNS
        entry = self._cache.get((host.lower(), int(family)), self._clock())
        if entry is None:
            return None
        return () if entry.addresses is None else tuple(address for address, _ in entry.addresses)

    async def resolve(
        self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET
    ) -> list[ResolveResult]:
        return _results(host, port, await self.addresses(host, family))

    async def addresses(self, host: str, family: int = socket.AF_INET) -> Addresses:
        """A name's ``(address, family)`` answers, looked up, cached and counted as
        :meth:`resolve` does, without the result dicts aiohttp wants (the transports
        that ask per request need only the addresses). OSError: it did not resolve."""
        key = (host.lower(), int(family))
        now = self._clock()
        entry = self._cache.get(key, now)
        if entry is not None:
            self.counts.cache_hits += 1
            if entry.addresses is None:
                self.counts.negative_hits += 1
                raise OSError(None, entry.error)
            return entry.addresses
        pending = self._pending.get(key)
        if pending is None:
            pending = asyncio.get_running_loop().create_future()
            self._pending[key] = pending
            try:
                entry = await self._lookup(host, family)
                self._cache.put(key, entry, self._clock())
                pending.set_result(entry)
            except BaseException as exc:
                pending.set_exception(exc)
                pending.exception()  # retrieved: no "never retrieved" warning
                raise
            finally:
                del self._pending[key]
        else:
            entry = await asyncio.shield(pending)
        if entry.addresses is None:
            raise OSError(None, entry.error)
        return entry.addresses

    async def _lookup(self, host: str, family: int) -> _Entry:
        self.counts.lookups += 1
        try:
            if self._aiodns is not None:
                results, ttl = await self._ask_cares(host, family)
            else:
                results, ttl = await self._ask_threaded(host, family), self._default_ttl
        except (OSError, _dns_error()) as exc:
            self.counts.errors += 1
            message = _message(exc) or f"could not resolve {host}"
            return _Entry(self._clock() + self._negative_ttl, None, message)
        if not results:
            self.counts.errors += 1
            return _Entry(self._clock() + self._negative_ttl, None, f"no address for {host}")
        ttl = min(max(ttl, self._min_ttl), self._max_ttl)
        return _Entry(self._clock() + ttl, results)

    async def _ask_cares(self, host: str, family: int) -> tuple[Addresses, float]:
        channel = self._aiodns
        if self._channel_asked >= self._channel_lookups:
            channel = await self._new_channel()
        self._channel_asked += 1
        busy = self._busy
        busy[channel] = busy.get(channel, 0) + 1
        try:
            reply = await channel.getaddrinfo(host, family=family, type=socket.SOCK_STREAM)
        finally:
            left = busy[channel] - 1
            if left or channel is self._aiodns:
                busy[channel] = left
            else:  # a retired channel's last lookup: close it now
                del busy[channel]
                await _close_channel(channel)
        addresses: list[tuple[str, int]] = []
        ttl = float("inf")
        for node in reply.nodes:
            address = node.addr
            raw = address[0]
            text = raw.decode() if isinstance(raw, bytes) else str(raw)
            if node.family == socket.AF_INET6 and len(address) > 3 and address[3]:
                text = f"{text}%{address[3]}"
            # many names share an address (virtual hosting, CDNs): one string for all
            addresses.append((sys.intern(text), int(node.family)))
            ttl = min(ttl, float(getattr(node, "ttl", 0) or 0) or self._default_ttl)
        return tuple(addresses), ttl if addresses else self._default_ttl

    async def _new_channel(self) -> Any:
        """A fresh c-ares channel for the next lookups. c-ares (1.23 and later) caches
        every answer itself until its TTL, about 1.6 KB a name, and pycares offers no
        way to turn that off: a copy of what this class keeps in a tenth of the space,
        growing with every host of a broad crawl. Dropping the channel every
        ``channel_lookups`` lookups frees it; the old one closes when its last lookup
        is answered."""
        old = self._aiodns
        self._aiodns = aiodns.DNSResolver(**self._options)
        self._channel_asked = 0
        self._channels += 1
        if not self._busy.get(old):
            self._busy.pop(old, None)
            await _close_channel(old)  # else by the last of its lookups
        return self._aiodns

    async def _ask_threaded(self, host: str, family: int) -> Addresses:
        infos = await asyncio.get_running_loop().getaddrinfo(
            host, 0, type=socket.SOCK_STREAM, family=family
        )
        return tuple((sys.intern(str(sockaddr[0])), int(fam)) for fam, _, _, _, sockaddr in infos)

    async def close(self) -> None:
        channels = [*self._busy, *([self._aiodns] if self._aiodns is not None else [])]
        self._busy.clear()
        self._aiodns = None
        for channel in dict.fromkeys(channels):
            await _close_channel(channel)


async def _close_channel(channel: Any) -> None:
    close = getattr(channel, "close", None)
    if close is not None:
        await close()
    else:  # pragma: no cover - aiodns < 4
        channel.cancel()


def _results(host: str, port: int, addresses: Addresses) -> list[ResolveResult]:
    flags = socket.AI_NUMERICHOST | socket.AI_NUMERICSERV
    return [
        {
            "hostname": host,
            "host": address,
            "port": port,
            "family": family,
            "proto": 0,
            "flags": flags,
        }
        for address, family in addresses
    ]


def _dns_error() -> type[BaseException]:
    return aiodns.error.DNSError if aiodns is not None else OSError


def _message(exc: BaseException) -> str:
    args = exc.args
    if len(args) >= 2 and isinstance(args[1], str):
        return args[1]
    return str(exc)
