"""What the engine needs per proxy tier, and the block and cost bookkeeping.

A crawl has one tier (its profile) or several (``--profile a,b,c``). Each tier
brings its own proxies, sessions, transport (timeouts), retry policy and
per-domain concurrency range; the pure :class:`~pooledcrawl.proxy.tiers.TierPolicy`
says which tier each domain uses. The engine asks :class:`Tiers` and reports
what happened; the policies decide.
"""

from __future__ import annotations

import dataclasses
import logging
from collections import Counter, defaultdict
from collections.abc import Callable, Sequence
from typing import Any

from pooledcrawl.engine.wiring import choose_policies, choose_transport, proxy_pool
from pooledcrawl.proxy.blocks import BlockDecision, BlockDetector
from pooledcrawl.proxy.cost import CostMeter, Price
from pooledcrawl.proxy.endpoint import ProxyConfig
from pooledcrawl.proxy.guard import ProxyGuard
from pooledcrawl.proxy.pool import ProxyPool
from pooledcrawl.proxy.sessions import ProxySession, SessionPool
from pooledcrawl.proxy.tiers import TierPolicy
from pooledcrawl.retry.policy import RetryPolicy
from pooledcrawl.settings import Settings
from pooledcrawl.spider import Spider
from pooledcrawl.throttle.base import PolicyFactory
from pooledcrawl.transport.base import Transport

__all__ = ["BlockBook", "Tier", "TierSpec", "Tiers"]

log = logging.getLogger("pooledcrawl.engine")


@dataclasses.dataclass(frozen=True, slots=True)
class TierSpec:
    """One tier as the command line gives it: a profile's name, settings and proxies."""

    name: str
    settings: Settings
    proxies: ProxyConfig | None = None


class Tier:
    """A tier at run time: what a request routed to it is sent with."""

    def __init__(
        self,
        index: int,
        name: str,
        settings: Settings,
        *,
        proxies: ProxyPool | None,
        transport: Transport,
        policy_factory: PolicyFactory,
        guard: ProxyGuard | None = None,
    ) -> None:
        self.index = index
        self.name = name
        self.settings = settings
        self.proxies = proxies
        session = proxies.session if proxies is not None else None
        self.sessions = SessionPool(session) if session is not None else None
        self.transport = transport
        self.retry = RetryPolicy.from_settings(settings)
        self.policy_factory = policy_factory
        self.ban_statuses = frozenset(settings.ban_statuses)
        #: the tier's proxy health (benching, retries through another proxy)
        self.guard = guard


class Tiers:
    """The crawl's tiers and the policy choosing among them per domain."""

    def __init__(self, tiers: Sequence[Tier], policy: TierPolicy | None) -> None:
        self.tiers = tuple(tiers)
        self.policy = policy

    @classmethod
    def build(
        cls,
        specs: Sequence[TierSpec],
        first: Tier,
        *,
        wrap: Callable[[PolicyFactory], PolicyFactory],
        guard_for: Callable[[ProxyPool | None, Settings], ProxyGuard | None],
    ) -> Tiers:
        """``first`` is the engine's own tier (built from its settings); the others
        come from ``specs[1:]``, each with its own transport and policies."""
        tiers = [first]
        for index, spec in enumerate(specs[1:], 1):
            pool = proxy_pool(spec.proxies, spec.settings)
            tiers.append(
                Tier(
                    index,
                    spec.name,
                    spec.settings,
                    proxies=pool,
                    transport=choose_transport(spec.settings),
                    policy_factory=wrap(choose_policies(spec.settings)),
                    guard=guard_for(pool, spec.settings),
                )
            )
        policy = TierPolicy([t.name for t in tiers]) if len(tiers) > 1 else None
        return cls(tiers, policy)

    def __getitem__(self, index: int) -> Tier:
        return self.tiers[index]

    def __len__(self) -> int:
        return len(self.tiers)

    def choose(self, domain: str, now: float) -> int:
        return 0 if self.policy is None else self.policy.choose(domain, now)

    def observe(self, domain: str, tier: int, now: float, *, blocked: bool) -> None:
        if self.policy is None:
            return
        moved = self.policy.observe(domain, tier, now, blocked=blocked)
        if moved is not None:
            log.info(
                "%s: %s to tier %s (%s)",
                domain,
                "escalated" if moved > tier else "back",
                moved,
                self.tiers[moved].name,
            )

    def dropped(self, domain: str, tier: int, now: float) -> None:
        if self.policy is not None:
            self.policy.dropped(domain, tier, now)

    async def close(self) -> None:
        for tier in self.tiers[1:]:
            await tier.transport.close()


class BlockBook:
    """Detects blocks and counts them per domain, tier, session and proxy."""

    def __init__(self, detector: BlockDetector) -> None:
        self.detector = detector
        self.total = 0
        self.kinds: Counter[str] = Counter()
        self._by: dict[str, Counter[str]] = defaultdict(Counter)
        self.retried = 0

    @classmethod
    def create(cls, settings: Settings, spider: Spider, tiers: Tiers) -> BlockBook | None:
        """None when nothing can be a block beyond today's proxy ban statuses: a crawl
        that configures none of this pays nothing for it."""
        hook = getattr(spider, "is_blocked", None)
        patterns = [*settings.ban_patterns, *getattr(spider, "ban_patterns", ())]
        sessions = any(t.sessions is not None for t in tiers.tiers)
        if not (
            patterns
            or settings.ban_challenge_paths
            or settings.ban_empty_body
            or hook is not None
            or sessions
            or len(tiers) > 1
        ):
            return None
        where = f"{type(spider).__name__}.ban_patterns / setting ban_patterns"
        detector = BlockDetector(
            ban_statuses=settings.ban_statuses,
            ban_patterns=patterns,
            challenge_paths=settings.ban_challenge_paths,
            empty_body=settings.ban_empty_body,
            scan_bytes=settings.ban_scan_bytes,
            hook=hook,
            where=where,
        )
        return cls(detector)

    def count(
        self,
        decision: BlockDecision,
        *,
        domain: str,
        tier: str,
        session: ProxySession | None,
        proxy: str | None,
    ) -> None:
        self.total += 1
        self.kinds[decision.kind] += 1
        self._by["domain"][domain] += 1
        self._by["tier"][tier] += 1
        if proxy is not None:
            self._by["proxy"][proxy] += 1
        if session is not None:
            self._by["session"][session.id] += 1

    def snapshot(self, tiers: Tiers) -> dict[str, Any]:
        sessions = {t.name: t.sessions.snapshot() for t in tiers.tiers if t.sessions is not None}
        by_session = self._by["session"]
        return {
            "total": self.total,
            "retried": self.retried,
            "kinds": dict(self.kinds.most_common()),
            "domain": dict(self._by["domain"].most_common()),
            "tier": dict(self._by["tier"].most_common()),
            "proxy": dict(self._by["proxy"].most_common()),
            # the most blocked sessions only: a long crawl retires thousands
            "session": dict(by_session.most_common(20)),
            "sessions_blocked": len(by_session),
            "sessions": sessions,
        }


def cost_meter(tiers: Tiers, budget: float | None) -> CostMeter | None:
    """A meter when any tier has a price or the crawl a budget; else None (no counting)."""
    prices = {
        t.name: Price(t.settings.price_per_gb, t.settings.price_per_request) for t in tiers.tiers
    }
    priced = any(p.per_gb or p.per_request for p in prices.values())
    if budget is None and not priced and len(tiers) == 1:
        return None
    return CostMeter(prices, budget=budget)
