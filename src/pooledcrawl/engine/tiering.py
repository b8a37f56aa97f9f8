"""What the engine needs per proxy tier.

A crawl has one tier (its profile) or several (``--profile a,b,c``). Each tier
brings its own proxies, sessions, transport (timeouts), retry policy and
per-domain concurrency range; the pure :class:`~pooledcrawl.proxy.tiers.TierPolicy`
says which tier each domain uses. The engine asks :class:`Tiers` and reports
what happened; the policies decide. The block and cost bookkeeping is proxy
policy: :class:`~pooledcrawl.proxy.blocks.BlockBook`, :func:`~pooledcrawl.proxy.cost.cost_meter`.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Callable, Sequence

from pooledcrawl.engine.wiring import choose_policies, choose_transport, proxy_pool
from pooledcrawl.proxy.blocks import BlockBook
from pooledcrawl.proxy.cost import cost_meter
from pooledcrawl.proxy.endpoint import ProxyConfig
from pooledcrawl.proxy.guard import ProxyGuard
from pooledcrawl.proxy.pool import ProxyPool
from pooledcrawl.proxy.sessions import SessionPool
from pooledcrawl.proxy.tiers import TierPolicy
from pooledcrawl.retry.policy import RetryPolicy
from pooledcrawl.settings import Settings
from pooledcrawl.throttle.base import PolicyFactory
from pooledcrawl.transport.base import Transport

# BlockBook and cost_meter are re-exported: they lived here before they moved to proxy/
__all__ = ["BlockBook", "Tier", "TierSpec", "Tiers", "cost_meter"]

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
