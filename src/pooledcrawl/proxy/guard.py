"""Proxy health during a crawl: which proxy each request takes, what a proxy's
failure or ban does (bench it, send the request through another), and stopping when
every proxy has been down too long. The pool's own bookkeeping is ``proxy.pool``.

No sockets here and no import of the engine or the transports (they sit above this
package): the dispatcher, slots and transport errors are seen through the small
protocols below."""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any, Protocol, TypeVar

from pooledcrawl.proxy.masking import SecretMasker
from pooledcrawl.proxy.pool import PoolProxy, ProxyPool
from pooledcrawl.retry.policy import RetryDecision, RetryPolicy

if TYPE_CHECKING:
    from pooledcrawl.http.request import Request
    from pooledcrawl.settings import Settings
    from pooledcrawl.stats import Stats

__all__ = ["ProxyGuard"]

log = logging.getLogger("pooledcrawl.engine")


class _Router(Protocol):
    """What the guard needs of the dispatcher (``engine.dispatcher.Dispatcher``)."""

    def reroute(self, proxy: PoolProxy) -> None: ...

    async def wait_closed(self, seconds: float) -> bool: ...


class _Slot(Protocol):
    """A dispatcher slot: with static proxies, the one proxy it goes through."""

    proxy: PoolProxy | None


class _FetchError(Protocol):
    """A ``transport.base.TransportError``, as far as proxy health reads it."""

    name: str
    proxy_fault: bool
    args: tuple[Any, ...]
    __cause__: BaseException | None
    __suppress_context__: bool


_E = TypeVar("_E", bound=_FetchError)


class ProxyGuard:
    """Proxy health for one crawl. ``requeue`` sends a request back to the frontier;
    ``dispatcher`` is set once the crawl runs (static proxies re-route their slots)."""

    def __init__(
        self,
        pool: ProxyPool,
        settings: Settings,
        stats: Stats,
        retry: RetryPolicy,
        requeue: Callable[[Request, RetryDecision], None],
        clock: Callable[[], float],
    ) -> None:
        self.pool = pool
        self.settings = settings
        self.stats = stats
        self.retry = retry
        self._requeue = requeue
        self._clock = clock
        self.dispatcher: _Router | None = None
        self._masker = SecretMasker([s for e in pool.entries for s in e.proxy.secrets])
        self._auth_warned: set[str] = set()

    @contextlib.contextmanager
    def aside(self) -> Iterator[str]:
        """The proxy URL for a fetch outside the crawl's slots and stats (robots.txt),
        so it comes from the same addresses as the crawl; held while the block runs."""
        pool = self.pool
        now = self._clock()
        entry = pool.choose(now, ()) or pool.ranked(now)[0]
        pool.acquire(entry)
        try:
            yield entry.proxy.url
        finally:
            pool.release(entry)

    def take(self, request: Request, slot: _Slot, now: float) -> PoolProxy:
        """The proxy this request goes through: the slot's own (static IPs) or the
        least-loaded available one (a rotating gateway), avoiding those it failed on."""
        pool = self.pool
        entry = slot.proxy or pool.choose(now, request.get_meta("_proxies_failed") or ())
        if entry is None:  # the dispatcher saw room a moment ago; never go direct
            entry = pool.ranked(now)[0]
        pool.acquire(entry)
        return entry

    def errored(self, request: Request, proxy: PoolProxy, sent_at: float, exc: _E) -> _E | None:
        """A fetch through ``proxy`` failed: the error scrubbed of credentials, or None
        when it was the proxy's fault and the request went back for another proxy."""
        exc = self._scrub(exc)
        if not exc.proxy_fault:
            self.pool.release(proxy)  # the target's doing: says nothing of the proxy
            return exc
        if exc.name == "ProxyAuthenticationRequired":
            self._warn_auth(proxy)
        return None if self._proxy_failed(request, proxy, sent_at, exc.name) else exc

    def _scrub(self, exc: _E) -> _E:
        """No credential in what errbacks, logs and stats may show of a proxy error."""
        if self._masker:
            exc.args = (self._masker.mask(str(exc.args[0])),)
            cause = exc.__cause__
            if cause is not None and self._masker.contains_secret(f"{cause!s} {cause!r}"):
                exc.__cause__ = None
                exc.__suppress_context__ = True
        return exc

    def answered(
        self, request: Request, proxy: PoolProxy, sent_at: float, status: int, *, banned: bool
    ) -> bool:
        """A response came through ``proxy``. A 407 or a ban (``banned``: the ProxyBan
        middleware's judgement) benches it; True when the request went back to the
        frontier for another proxy."""
        if status != 407 and not banned:
            if self.pool.succeeded(proxy, sent_at):
                log.warning("proxy %s works again: crawl resumed", proxy.label)
            return False
        if status == 407:
            self._warn_auth(proxy)
        ban = status != 407
        if ban:
            bans = request.get_meta("_proxy_bans", 0) + 1
            request.meta["_proxy_bans"] = bans
            # a page that is forbidden whichever IP asks is the page, not the proxy
            limit = min(len(self.pool), 3) if self.pool.per_proxy_slots else 3
            if bans > limit:
                self._bench(proxy, sent_at, f"HTTP {status}", ban=True)
                return False
        return self._proxy_failed(request, proxy, sent_at, f"HTTP {status}", ban=ban)

    def _proxy_failed(
        self, request: Request, proxy: PoolProxy, sent_at: float, reason: str, *, ban: bool = False
    ) -> bool:
        """The request failed because of its proxy: bench the proxy and send the request
        again through another, charging its retry budget once at most. False when the
        request has failed on proxies too often while others worked (then the error is
        handled as the target's)."""
        pool = self.pool
        self._bench(proxy, sent_at, reason, ban=ban)
        tried = request.meta.setdefault("_proxies_failed", [])
        if proxy.label not in tried:
            tried.append(proxy.label)
        if pool.down_since is None:  # failures while every proxy is down are the pool's
            faults = request.get_meta("_proxy_faults", 0) + 1
            request.meta["_proxy_faults"] = faults
            if faults > max(3, 2 * len(pool)):
                return False
        counts = False
        if not request.get_meta("_proxy_charged"):
            request.meta["_proxy_charged"] = True
            counts = self.retry.for_error(request, True) is not None
        self.stats.extra["proxy_retries"] = self.stats.extra.get("proxy_retries", 0) + 1
        self._requeue(request, RetryDecision(0.0, counts=counts))
        if pool.per_proxy_slots and self.dispatcher is not None:
            self.dispatcher.reroute(proxy)
        return True

    def _warn_auth(self, proxy: PoolProxy) -> None:
        if proxy.label not in self._auth_warned:
            self._auth_warned.add(proxy.label)
            log.warning(
                "proxy %s refused the credentials (407 or SOCKS auth failure): check them",
                proxy.label,
            )

    def _bench(self, proxy: PoolProxy, sent_at: float, reason: str, *, ban: bool) -> None:
        pool = self.pool
        was_healthy = proxy.healthy
        if pool.failed(proxy, sent_at, self._clock(), ban=ban):
            log.warning(
                "%s down: crawl paused; it stops if none works again within %gs",
                f"all {len(pool)} proxies are" if len(pool) > 1 else "the only proxy is",
                self.settings.proxy_down_timeout,
            )
        elif was_healthy and not proxy.healthy:
            log.info("proxy %s benched after %s", proxy.label, reason)

    async def watch(self, pending: Callable[[], int], on_down: Callable[[str], Any]) -> None:
        """Every proxy down for ``proxy_down_timeout``: call ``on_down`` with a clear
        message. Nothing queued is given up (``pending`` counts it): it stays in the
        frontier, and a persistent one resumes it."""
        assert self.dispatcher is not None
        pool, limit = self.pool, self.settings.proxy_down_timeout
        while True:
            wait = min(1.0, limit / 4)
            since = pool.down_since
            if since is not None:
                left = since + limit - self._clock()
                if left <= 0:
                    on_down(
                        f"every proxy has been down for {limit:g}s "
                        f"({', '.join(e.label for e in pool.entries)}); "
                        f"stopped with {pending()} requests still queued, none given up"
                    )
                    return
                wait = min(wait, left)
            if await self.dispatcher.wait_closed(wait):
                return

    def snapshot(self) -> dict[str, Any]:
        return self.pool.snapshot(self._clock())
