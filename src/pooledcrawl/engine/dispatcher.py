"""Hands requests to the engine's workers when their slot (domain) may take one.

The frontier holds requests; this decides *when* each may go. A request whose
slot is full or paced is parked on that slot instead of blocking a worker, so
one saturated domain never starves the others.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from pooledcrawl.frontier.base import Frontier
from pooledcrawl.http.request import Request
from pooledcrawl.proxy.pool import PoolProxy, ProxyPool
from pooledcrawl.throttle.base import ConcurrencyPolicy, PolicyFactory

if TYPE_CHECKING:
    from pooledcrawl.engine.tiering import Tiers

__all__ = ["Dispatcher", "Slot", "slot_key"]


def slot_key(url: str) -> str:
    """``host[:port]`` of an http(s) URL (URLs reaching here are already validated)."""
    start = url.find("//") + 2
    end = url.find("/", start)
    host = url[start:] if end == -1 else url[start:end]
    return host.rsplit("@", 1)[-1].lower()


class Slot:
    """One domain's share: its policy, requests in flight, and requests parked on it.

    With proxies, ``gate`` is what must also have room: the pool (a rotating gateway:
    the slot is the domain) or one proxy (static IPs: the slot is domain x proxy, and
    ``proxy`` is that proxy).
    """

    __slots__ = ("backlog", "gate", "inflight", "key", "peak", "policy", "proxy", "tier")

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

    def can_send(self, now: float) -> bool:
        return (
            self.inflight < self.policy.limit()
            and self.policy.ready_at() <= now
            and (self.gate is None or self.gate.available(now))
        )


class Dispatcher:
    def __init__(
        self,
        frontier: Frontier,
        policy_factory: PolicyFactory,
        clock: Callable[[], float],
        *,
        max_parked: int = 10_000,
        proxies: ProxyPool | None = None,
        tiers: Tiers | None = None,
    ) -> None:
        self._frontier = frontier
        #: several proxy tiers: each domain's requests wait on its current tier's slot
        self._tiers = tiers if tiers is not None and len(tiers) > 1 else None
        self._proxies = proxies
        self._policy_factory = policy_factory
        self._clock = clock
        self._max_parked = max_parked
        self.slots: dict[str, Slot] = {}
        self._backlogged: dict[str, Slot] = {}  # insertion-ordered set
        self._parked = 0
        #: when each parked request was parked: its pool wait (see waited())
        self._parked_at: dict[Request, float] = {}
        self._waiters: deque[asyncio.Future[None]] = deque()
        #: one timer for the earliest time-based wake-up (a paced slot, a retry), not
        #: one per waiting worker: hundreds of workers re-arming on every paced send
        #: would cost more CPU than the crawl itself
        self._timer: asyncio.TimerHandle | None = None
        self._timer_at = 0.0
        #: requests handed out and not yet finished (fetching or in their callback)
        self.active = 0
        self.inflight = 0
        #: producers that may still push (the seeding of start requests)
        self.producers = 0
        self.closed = False
        #: called when the crawl looks over; True when more may come (the engine's
        #: ``engine_idle`` receivers run as a producer), False to close
        self.on_idle: Callable[[], bool] | None = None
        self._closed_event = asyncio.Event()
        frontier.on_ready = self.notify

    # ---- handing out ---------------------------------------------------------------
    async def next(self) -> tuple[Request, Slot] | None:
        """The next request that may be sent now, or None once the crawl is over."""
        while not self.closed:
            now = self._clock()
            got = self._take(now)
            if got is not None:
                self.active += 1
                if self._waiters:
                    if len(self._frontier):
                        self.notify()  # pass the baton: there may be more for another worker
                    else:
                        self._arm(self._next_timer(now), now)  # e.g. a slot's next paced send
                return got
            if self._idle() and (self.on_idle is None or not self.on_idle()):
                self.close()
                break
            await self._wait(self._next_timer(now), now)
        return None

    def _take(self, now: float) -> tuple[Request, Slot] | None:
        if self._backlogged:
            for slot in self._backlogged.values():
                if slot.can_send(now):
                    parked = slot.backlog.popleft()
                    self._parked -= 1
                    if not slot.backlog:
                        del self._backlogged[slot.key]
                    return parked, self._start(slot, now)
        while self._parked < self._max_parked:
            request = self._frontier.pop(now)
            if request is None:
                return None
            slot = self._route(request, now)
            if not slot.backlog and slot.can_send(now):
                return request, self._start(slot, now)
            slot.backlog.append(request)
            self._parked_at[request] = now
            self._parked += 1
            self._backlogged[slot.key] = slot
        return None

    def _start(self, slot: Slot, now: float) -> Slot:
        slot.inflight += 1
        if slot.inflight > slot.peak:
            slot.peak = slot.inflight
        slot.policy.on_send(now)
        self.inflight += 1
        return slot

    def slot_for(self, url: str) -> Slot:
        key = slot_key(url)
        slot = self.slots.get(key)
        if slot is None:
            slot = self.slots[key] = Slot(key, self._policy_factory(key), self._proxies)
        return slot

    def _route(self, request: Request, now: float) -> Slot:
        """The slot a request waits on. Static proxies: the proxy is picked here (the
        least-loaded healthy one whose domain x proxy slot may send, else the one that
        frees up first), so each IP keeps its own per-domain limits."""
        if self._tiers is not None:
            return self._tier_slot(request, now)
        pool = self._proxies
        if pool is None or not pool.per_proxy_slots:
            return self.slot_for(request.url)
        host = slot_key(request.url)
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
        host = slot_key(request.url)
        index = tiers.choose(host, now)
        tier = tiers[index]
        key = host if index == 0 else f"{host} [{tier.name}]"
        slot = self.slots.get(key)
        if slot is None:
            slot = Slot(key, tier.policy_factory(key), tier.proxies, tier=index)
            self.slots[key] = slot
        return slot

    def _proxy_slot(self, host: str, entry: PoolProxy) -> Slot:
        key = f"{host} via {entry.label}"
        slot = self.slots.get(key)
        if slot is None:
            slot = self.slots[key] = Slot(key, self._policy_factory(key), entry)
        return slot

    def reroute(self, proxy: PoolProxy) -> None:
        """A proxy was benched: requests parked behind it look for another proxy."""
        now = self._clock()
        stuck = [slot for slot in self._backlogged.values() if slot.proxy is proxy]
        for slot in stuck:
            moved, slot.backlog = slot.backlog, deque()
            del self._backlogged[slot.key]
            for request in moved:
                target = self._route(request, now)
                target.backlog.append(request)
                self._backlogged[target.key] = target
        if stuck:
            self.notify()

    def _idle(self) -> bool:
        return (
            not self.active
            and not self.producers
            and not self._parked
            and self._frontier.exhausted()
        )

    def _next_timer(self, now: float) -> float | None:
        """When something that is waiting on time (a retry, a paced slot) becomes due."""
        due = self._frontier.next_due()
        for slot in self._backlogged.values():
            if slot.inflight < slot.policy.limit():
                ready = slot.policy.ready_at()
                if slot.gate is not None:
                    # a proxy that is full waits for a release, not for a time
                    gate_at = slot.gate.wake_at(now)
                    if gate_at is None:
                        continue
                    ready = max(ready, gate_at)
                if due is None or ready < due:
                    due = ready
        return due

    async def _wait(self, until: float | None, now: float) -> None:
        waiter: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._waiters.append(waiter)
        self._arm(until, now)
        try:
            await waiter
        finally:
            if not waiter.done():
                waiter.cancel()

    def _arm(self, until: float | None, now: float) -> None:
        """Wake one waiter at ``until``, unless a timer already fires by then."""
        if until is None:
            return
        timer = self._timer
        if timer is not None:
            if self._timer_at <= until:
                return
            timer.cancel()
        self._timer_at = until
        self._timer = asyncio.get_running_loop().call_later(max(until - now, 0.0), self._ring)

    def _ring(self) -> None:
        self._timer = None
        self.notify()

    # ---- events --------------------------------------------------------------------
    def notify(self) -> None:
        """Something may have become ready: wake one waiting worker."""
        waiters = self._waiters
        while waiters:
            waiter = waiters.popleft()
            if not waiter.done():
                waiter.set_result(None)
                return

    def _notify_all(self) -> None:
        waiters, self._waiters = self._waiters, deque()
        for waiter in waiters:
            if not waiter.done():
                waiter.set_result(None)

    def release(self, slot: Slot) -> None:
        """The request's network exchange is over; its slot has room again."""
        slot.inflight -= 1
        self.inflight -= 1
        if self._waiters:
            self.notify()

    def finish(self, request: Request, *, ack: bool = True) -> None:
        """The request's callback is done and its outputs are stored; ``ack=False``
        when it was cancelled midway, so a persistent frontier hands it out again."""
        if ack:
            self._frontier.ack(request)
        self.active -= 1
        if not self.active and self._waiters:
            self._notify_all()  # the crawl may be over; let them check

    def producer_done(self) -> None:
        self.producers -= 1
        self._notify_all()

    def close(self) -> None:
        """Hand out nothing more; workers finish what they hold and exit."""
        if not self.closed:
            self.closed = True
            if self._timer is not None:
                self._timer.cancel()
                self._timer = None
            self._closed_event.set()
            self._notify_all()

    async def wait_closed(self, seconds: float) -> bool:
        try:
            async with asyncio.timeout(seconds):
                await self._closed_event.wait()
        except TimeoutError:
            return False
        return True

    def waited(self, request: Request, now: float) -> float:
        """Seconds ``request`` was parked on its slot before it was handed out (0 if it
        never was). Call once, as it is sent: the pool-wait metric."""
        parked_at = self._parked_at.pop(request, None)
        return 0.0 if parked_at is None else max(now - parked_at, 0.0)

    @property
    def parked(self) -> int:
        return self._parked

    def snapshot(self) -> dict[str, dict[str, Any]]:
        return {
            key: {
                **slot.policy.snapshot(),
                "inflight": slot.inflight,
                "peak_concurrency": slot.peak,
            }
            for key, slot in self.slots.items()
        }
