"""The dispatcher's live slots: which slot a request waits on, and when an idle one goes.

:class:`SlotTable` is the base of :class:`~pooledcrawl.engine.dispatcher.Dispatcher`:
it builds slots (per domain; per domain x proxy with static proxies; per domain x
tier with several proxy tiers) and evicts the idle ones, folding what their
controllers learned into the crawl's per-host aggregates. The dispatcher adds the
queues that decide *when* a slot's requests go. A base class rather than a member,
so routing and eviction cost the hot path no extra call.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from pooledcrawl.engine.slot import Slot, TierRouter
from pooledcrawl.http.keys import slot_key
from pooledcrawl.http.request import Request
from pooledcrawl.proxy.pool import PoolProxy, ProxyPool
from pooledcrawl.throttle.base import ConcurrencyPolicy, PolicyFactory

if TYPE_CHECKING:
    from pooledcrawl.metrics.domain import CrawlMetrics

__all__ = ["SlotTable"]


class SlotTable:
    """Live slots by key, built on demand and evicted once idle."""

    def __init__(
        self,
        policy_factory: PolicyFactory,
        clock: Callable[[], float],
        *,
        proxies: ProxyPool | None = None,
        tiers: TierRouter | None = None,
        metrics: CrawlMetrics | None = None,
        key: Callable[[str], str] = slot_key,
        idle_timeout: float = 5.0,
        max_idle: int = 256,
    ) -> None:
        self._metrics = metrics
        self._key = key
        self._idle_timeout = idle_timeout
        self._max_idle = max_idle
        #: live slots with nothing parked or in flight, longest idle first
        self._idle_slots: OrderedDict[str, Slot] = OrderedDict()
        #: several proxy tiers: each domain's requests wait on its current tier's slot
        self._tiers = tiers if tiers is not None and len(tiers) > 1 else None
        self._proxies = proxies
        self._policy_factory = policy_factory
        self._clock = clock
        self.slots: dict[str, Slot] = {}

    def slot_for(self, url: str) -> Slot:
        key = self._key(url)
        slot = self.slots.get(key)
        if slot is None:
            slot = self.slots[key] = Slot(key, self._policy(key), self._proxies)
        return slot

    def _policy(self, key: str) -> ConcurrencyPolicy:
        """A new slot's policy; for a host folded earlier, from what it had learned."""
        policy = self._policy_factory(key)
        if self._metrics is not None:
            memo = self._metrics.hosts.learned(key)
            if memo is not None:
                restore = getattr(policy, "restore", None)
                if restore is not None:
                    restore(memo)
        return policy

    # ---- eviction ------------------------------------------------------------------
    def _went_idle(self, slot: Slot, now: float) -> None:
        slot.idle_at = now
        idle = self._idle_slots
        idle[slot.key] = slot
        idle.move_to_end(slot.key)
        # the oldest idle slots go: O(1) per call, whatever the number of hosts
        while idle:
            oldest = next(iter(idle.values()))
            if oldest.inflight or oldest.backlog:
                del idle[oldest.key]  # busy again: not idle after all
            elif len(idle) > self._max_idle or now - oldest.idle_at >= self._idle_timeout:
                self._evict(oldest)
            else:
                break

    def _evict(self, slot: Slot) -> None:
        del self._idle_slots[slot.key]
        del self.slots[slot.key]
        if self._metrics is not None:
            policy = slot.policy
            memo_of = getattr(policy, "memo", None)

            def controller() -> dict[str, Any]:
                return {**policy.snapshot(), "inflight": 0, "peak_concurrency": slot.peak}

            self._metrics.retire(slot.key, memo_of() if memo_of else None, controller)

    def retire_all(self) -> int:
        """Fold every live slot into the metrics (the crawl is over); how many were
        still busy (requests parked or in flight)."""
        busy = 0
        for slot in list(self.slots.values()):
            if slot.inflight or slot.backlog:
                busy += 1
            self._idle_slots[slot.key] = slot
            self._evict(slot)
        if self._metrics is not None:
            self._metrics.retire_all()
        return busy

    def _route(self, request: Request, now: float) -> Slot:
        """The slot a request waits on. Static proxies: the proxy is picked here (the
        least-loaded healthy one whose domain x proxy slot may send, else the one that
        frees up first), so each IP keeps its own per-domain limits."""
        if self._tiers is not None:
            return self._tier_slot(request, now)
        pool = self._proxies
        if pool is None or not pool.per_proxy_slots:
            return self.slot_for(request.url)
        host = self._key(request.url)
        avoid = request.get_meta("_proxies_failed") or ()
        best = pool.choose(now, avoid)  # the common case, without sorting the pool
        if best is not None:
            slot = self._proxy_slot(host, best)
            if not slot.backlog and slot.can_send(now):
                return slot
        candidates: list[tuple[bool, int, int, Slot]] = []
        for rank, entry in enumerate(pool.ranked(now, avoid)):
            slot = self._proxy_slot(host, entry)
            if not slot.backlog and slot.can_send(now):
                return slot
            candidates.append((not entry.healthy, len(slot.backlog), rank, slot))
        # none may send now: wait behind a healthy proxy with the shortest queue
        return min(candidates, key=lambda c: c[:3])[3]

    def _tier_slot(self, request: Request, now: float) -> Slot:
        """The domain's slot on the tier it uses now: each tier has its own per-domain
        concurrency range, and its proxy pool as the gate."""
        tiers = self._tiers
        assert tiers is not None
        index = tiers.choose(slot_key(request.url), now)  # the tier policy is per host
        tier = tiers[index]
        key = self._key(request.url)
        if index:
            key = f"{key} [{tier.name}]"
        slot = self.slots.get(key)
        if slot is None:
            policy = self._policy(key) if index == 0 else tier.policy_factory(key)
            slot = self.slots[key] = Slot(key, policy, tier.proxies, tier=index)
        return slot

    def _proxy_slot(self, host: str, entry: PoolProxy) -> Slot:
        key = f"{host} via {entry.label}"
        slot = self.slots.get(key)
        if slot is None:
            slot = self.slots[key] = Slot(key, self._policy(key), entry)
        return slot

    def snapshot(self) -> dict[str, dict[str, Any]]:
        return {
            key: {
                **slot.policy.snapshot(),
                "inflight": slot.inflight,
                "peak_concurrency": slot.peak,
            }
            for key, slot in self.slots.items()
        }
