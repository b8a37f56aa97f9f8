"""Where each request goes and what happens to it there: the proxy tiers, their proxy
health and sessions, the blocks and the cost. The engine's fetch asks :class:`Routes`
which tier and proxy a request takes and reports back; everything past the fetch
itself (a block's retry, a session's retirement, the budget) is decided here.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, Protocol

from pooledcrawl.engine.slot import Slot
from pooledcrawl.engine.tiering import Tier, Tiers, TierSpec
from pooledcrawl.engine.wiring import proxy_pool
from pooledcrawl.errors import IgnoreRequest
from pooledcrawl.http.keys import slot_key
from pooledcrawl.http.request import Request
from pooledcrawl.http.response import Response
from pooledcrawl.proxy.blocks import BlockBook, BlockDecision
from pooledcrawl.proxy.cost import cost_meter
from pooledcrawl.proxy.endpoint import ProxyConfig
from pooledcrawl.proxy.guard import ProxyGuard
from pooledcrawl.proxy.pool import ProxyPool
from pooledcrawl.proxy.sessions import ProxySession
from pooledcrawl.retry.policy import RetryDecision, RetryPolicy
from pooledcrawl.settings import Settings
from pooledcrawl.spider import Spider
from pooledcrawl.stats import Stats
from pooledcrawl.throttle.base import PolicyFactory
from pooledcrawl.transport.base import Transport

__all__ = ["Routes"]

#: what a request in flight went through: tier index, session, proxy URL, proxy label
Route = tuple[int, ProxySession | None, str | None, str | None]


class _Host(Protocol):
    """What routing needs of the engine."""

    def retry_later(self, request: Request, decision: RetryDecision) -> Request: ...

    def request_stop(self, reason: str, *, grace: float | None = None) -> None: ...


class Routes:
    """The crawl's tiers (one per profile; one when a single profile is used), each
    tier's proxy health (:class:`ProxyGuard`) and sessions, the block bookkeeping
    (``blocks``: None when nothing but a proxy ban status can be a block) and the
    cost meter (``cost``: None when no price, budget or tiers are set)."""

    def __init__(
        self,
        host: _Host,
        spider: Spider,
        settings: Settings,
        stats: Stats,
        *,
        transport: Transport,
        policy_factory: PolicyFactory,
        policy_wrapper: Callable[[PolicyFactory], PolicyFactory] | None,
        proxies: ProxyConfig | ProxyPool | None,
        tiers: Sequence[TierSpec],
        requeue: Callable[[Request, RetryDecision], None],
        clock: Callable[[], float],
    ) -> None:
        self._host = host
        self._stats = stats
        self._requeue = requeue
        self._clock = clock
        #: the job's proxies (the first tier's); None connects directly
        self.proxies = proxy_pool(proxies, settings)
        #: the first tier's proxy health; None without proxies
        self.guard = self.guard_for(self.proxies, settings)
        first = Tier(
            0,
            tiers[0].name if tiers else "default",
            settings,
            proxies=self.proxies,
            transport=transport,
            policy_factory=policy_factory,
            guard=self.guard,
        )
        wrap = policy_wrapper or (lambda factory: factory)
        self.tiers = Tiers.build(tiers, first, wrap=wrap, guard_for=self.guard_for)
        self.blocks = BlockBook.create(settings, spider, self.tiers)
        #: the route of each request in flight, for the blocks (kept only with them)
        self.in_flight: dict[Request, Route] = {}
        self.cost = cost_meter(self.tiers, settings.budget)
        if self.cost is not None:
            for tier in self.tiers.tiers:
                if hasattr(tier.transport, "count_bytes"):
                    tier.transport.count_bytes = True

    def guard_for(self, pool: ProxyPool | None, settings: Settings) -> ProxyGuard | None:
        """Proxy health for one tier's pool, charging that tier's retry budget."""
        if pool is None:
            return None
        retry = RetryPolicy.from_settings(settings)
        return ProxyGuard(pool, settings, self._stats, retry, self._requeue, self._clock)

    def bind(self, dispatcher: Any) -> None:
        """The running crawl's dispatcher: static proxies re-route its slots."""
        for tier in self.tiers.tiers:
            if tier.guard is not None:
                tier.guard.dispatcher = dispatcher

    # ---- what the fetch reports ------------------------------------------------------
    def charge(self, request: Request, response: Response, slot: Slot, active: int) -> None:
        """Meter a response; stop the crawl when the budget is reached (``active``:
        requests handed out, each of which may still be paid for)."""
        cost = self.cost
        assert cost is not None
        tier = self.tiers[slot.tier]
        domain = slot_key(request.url)
        cost.charge(tier.name, f"{slot.tier}:{tier.name}", domain, response.wire_bytes)
        if cost.over_budget(active):
            self._host.request_stop(f"budget reached ({cost.total.cost:.4g} of {cost.budget:g})")

    def session_done(
        self, tier: Tier, session: ProxySession, url: str | None, now: float, *, blocked: bool
    ) -> None:
        assert tier.sessions is not None
        if tier.sessions.done(session, now, blocked=blocked):
            discard = getattr(tier.transport, "discard", None)
            if discard is not None:
                discard(url)  # its connections and cookies go with it

    def retry_policy(self, request: Request) -> RetryPolicy:
        """The retry policy of the tier ``request`` went through."""
        route = self.in_flight.get(request)
        return self.tiers[route[0] if route is not None else 0].retry

    def on_block_decision(
        self, request: Request, response: Response, decision: BlockDecision | None
    ) -> Request | None:
        """What the BlockDetection middleware's decision on ``response`` means.

        It is counted (per domain, tier, session and proxy) and fed to the tier policy.
        A block never reaches the spider: the session that got it is retired, and the
        request is retried at once on a fresh session (a new exit) or through the tier
        above, else after a backoff, up to ``max_block_retries`` without using the
        retry budget; then the budget; then it is given up as ``Blocked``. A ban
        status with no session in play stays the proxy pool's business."""
        book = self.blocks
        route = self.in_flight.get(request)
        if book is None or route is None:
            return None
        index, session, url, label = route
        tier = self.tiers[index]
        now = self._clock()
        domain = slot_key(request.url)
        self.tiers.observe(domain, index, now, blocked=decision is not None)
        if decision is None:
            return None
        book.count(decision, domain=domain, tier=tier.name, session=session, proxy=label)
        if session is not None:
            assert tier.sessions is not None
            if tier.sessions.retire(session):
                discard = getattr(tier.transport, "discard", None)
                if discard is not None:
                    discard(url)
        elif decision.kind == "status":
            return None
        blocked = request.get_meta("_blocks", 0) + 1
        request.meta["_blocks"] = blocked
        if not request.get_meta("dont_retry") and blocked <= tier.settings.max_block_retries:
            # a new session usually is a new IP, and a tier above may take over; a few
            # in a row blocked means the pool is burnt for now, so give it time
            fresh = session is not None or tier.index + 1 < len(self.tiers)
            delay = 0.0 if fresh and blocked <= 3 else tier.retry.backoff(blocked)
            book.retried += 1
            return self._host.retry_later(request, RetryDecision(delay, counts=False))
        again = tier.retry.for_error(request, True)
        if again is not None:
            return self._host.retry_later(request, again)
        raise IgnoreRequest("Blocked", response=response)

    # ---- at the end ----------------------------------------------------------------
    def snapshot(self, extra: dict[str, Any], started: float) -> None:
        """Proxies, blocks, cost and tiers into the stats' ``extra``."""
        if self.guard is not None:
            extra["proxies"] = self.guard.snapshot()
        if self.blocks is not None:
            extra["blocks"] = self.blocks.snapshot(self.tiers)
        if self.cost is not None:
            extra["cost"] = self.cost.snapshot()
        policy = self.tiers.policy
        if policy is not None:
            extra["tiers"] = {"order": list(policy.names), "domains": policy.snapshot(started)}
            for tier in self.tiers.tiers[1:]:
                if tier.guard is not None:
                    extra.setdefault("tier_proxies", {})[tier.name] = tier.guard.snapshot()
