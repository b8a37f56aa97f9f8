"""One domain's share of the crawl (:class:`Slot`), and what routing a request to a
slot needs of the proxy tiers (:class:`TierRoute`, :class:`TierRouter`).

The protocols live here, not in ``engine.tiering``, so the dispatcher depends on
what it uses of a tier and not on the tiers' transports and sessions.
"""

from __future__ import annotations

from collections import deque
from typing import Protocol

from pooledcrawl.http.request import Request
from pooledcrawl.proxy.pool import PoolProxy, ProxyPool
from pooledcrawl.throttle.base import ConcurrencyPolicy, PolicyFactory

__all__ = ["Slot", "TierRoute", "TierRouter"]


class TierRoute(Protocol):
    """What routing needs of one proxy tier (``engine.tiering.Tier``)."""

    name: str
    proxies: ProxyPool | None
    policy_factory: PolicyFactory


class TierRouter(Protocol):
    """The crawl's tiers and the choice among them (``engine.tiering.Tiers``)."""

    def __len__(self) -> int: ...

    def __getitem__(self, index: int) -> TierRoute: ...

    def choose(self, domain: str, now: float) -> int: ...


class Slot:
    """One domain's share: its policy, requests in flight, and requests parked on it.

    With proxies, ``gate`` is what must also have room: the pool (a rotating gateway:
    the slot is the domain) or one proxy (static IPs: the slot is domain x proxy, and
    ``proxy`` is that proxy).
    """

    __slots__ = (
        "backlog",
        "gate",
        "idle_at",
        "inflight",
        "key",
        "peak",
        "policy",
        "proxy",
        "queued",
        "tier",
    )

    def __init__(
        self,
        key: str,
        policy: ConcurrencyPolicy,
        gate: ProxyPool | PoolProxy | None = None,
        tier: int = 0,
    ) -> None:
        self.key = key
        self.policy = policy
        self.inflight = 0
        self.peak = 0
        self.backlog: deque[Request] = deque()
        self.gate = gate
        self.proxy = gate if isinstance(gate, PoolProxy) else None
        #: the proxy tier (``--profile a,b,c``) its requests go through
        self.tier = tier
        self.idle_at = 0.0
        self.queued = False  # in the dispatcher's ready queue

    def can_send(self, now: float) -> bool:
        return (
            self.inflight < self.policy.limit()
            and self.policy.ready_at() <= now
            and (self.gate is None or self.gate.available(now))
        )
