"""Hands requests to the engine's workers when their slot (domain) may take one.

The frontier holds requests; this decides *when* each may go. A request whose
slot is full or paced is parked on that slot instead of blocking a worker, so
one saturated domain never starves the others.

Slots are kept only while they have work: one idle for ``idle_timeout`` seconds
(or the oldest idle ones, past ``max_idle`` of them) is folded into the crawl's
per-host aggregates and dropped, keeping what its controller learned in a few
floats; new work for that host builds it again from them. A broad crawl then
holds live state for the hosts it is crawling now, not for every host it met.

Politeness keys live in ``engine.politeness``, the slot in ``engine.slot``, routing
and eviction in ``engine.slot_table``; their names are re-exported here.
"""

from __future__ import annotations

import asyncio
import heapq
import itertools
from collections import deque
from collections.abc import Callable
from typing import TYPE_CHECKING

from pooledcrawl.engine.crowding import CrowdCap
from pooledcrawl.engine.politeness import POLITENESS_KEYS, key_function, registered_domain
from pooledcrawl.engine.slot import Slot, TierRoute, TierRouter
from pooledcrawl.engine.slot_table import SlotTable
from pooledcrawl.frontier.base import Frontier
from pooledcrawl.http.keys import slot_key
from pooledcrawl.http.request import Request
from pooledcrawl.proxy.pool import PoolProxy, ProxyPool
from pooledcrawl.throttle.base import PolicyFactory

if TYPE_CHECKING:
    from pooledcrawl.metrics.domain import CrawlMetrics

__all__ = [
    "POLITENESS_KEYS",
    "Dispatcher",
    "Slot",
    "SlotTable",
    "TierRoute",
    "TierRouter",
    "key_function",
    "registered_domain",
    "slot_key",
]


class Dispatcher(SlotTable):
    """Parks requests on their slots and hands each out when its slot may send."""

    def __init__(
        self,
        frontier: Frontier,
        policy_factory: PolicyFactory,
        clock: Callable[[], float],
        *,
        max_parked: int = 10_000,
        proxies: ProxyPool | None = None,
        tiers: TierRouter | None = None,
        metrics: CrawlMetrics | None = None,
        key: Callable[[str], str] = slot_key,
        idle_timeout: float = 5.0,
        max_idle: int = 256,
        workers: int = 0,
        crowded_cap: int | None = None,
    ) -> None:
        super().__init__(
            policy_factory,
            clock,
            proxies=proxies,
            tiers=tiers,
            metrics=metrics,
            key=key,
            idle_timeout=idle_timeout,
            max_idle=max_idle,
        )
        self._frontier = frontier
        self._max_parked = max_parked
        #: a host's in-flight cap while at least ``workers`` hosts have work (see crowding)
        self._crowd = CrowdCap(workers, crowded_cap)
        #: slots with requests in flight
        self._sending = 0
        self._backlogged: dict[str, Slot] = {}  # insertion-ordered set
        # Slots with parked requests wait in one of three places, so handing out never
        # scans them all (a broad crawl has thousands): ``_ready`` (may send; served
        # round robin), ``_timed`` (paced or paused: a heap by the time they may send),
        # or nowhere while full (``release`` puts them back in ``_ready``). A slot
        # behind a full proxy, or whose limit is 0 (shared limits), waits in
        # ``_gated``, which is scanned: such slots are few.
        self._ready: deque[Slot] = deque()
        self._timed: list[tuple[float, int, Slot]] = []
        self._gated: dict[str, Slot] = {}
        self._seq = itertools.count()
        self._parked = 0
        #: when each parked request was parked: its pool wait (see handed_out())
        self._parked_at: dict[Request, float] = {}
        self._handed_out_at: dict[Request, float] = {}  # what the slot's policy was told
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
        if self._crowd.crowded:
            self._crowd_limit()  # hosts may have gone paced or idle: lift the cap now if so
        if self._backlogged:
            got = self._take_parked(now)
            if got is not None:
                return got
        while self._parked < self._max_parked:
            request = self._frontier.pop(now)
            if request is None:
                return None
            slot = self._route(request, now)
            if not slot.backlog and slot.inflight < self._crowd_limit() and slot.can_send(now):
                return request, self._start(request, slot, now)
            slot.backlog.append(request)
            self._parked_at[request] = now
            self._parked += 1
            if len(slot.backlog) == 1:
                self._backlogged[slot.key] = slot
                self._wait_for_room(slot, now)
                if not slot.inflight and self._idle_slots:
                    self._idle_slots.pop(slot.key, None)
        return None

    def _take_parked(self, now: float) -> tuple[Request, Slot] | None:
        """A parked request whose slot may send now, slots served round robin."""
        timed = self._timed
        while timed and timed[0][0] <= now:
            self._queue(heapq.heappop(timed)[2])
        ready = self._ready
        while ready:
            slot = ready.popleft()
            slot.queued = False
            if not slot.backlog:
                continue  # stale: its requests were rerouted
            if slot.inflight < self._crowd_limit() and slot.can_send(now):
                return self._unpark(slot, now)
            self._wait_for_room(slot, now)
        if self._gated:
            for slot in list(self._gated.values()):
                if not slot.backlog:
                    del self._gated[slot.key]
                elif slot.inflight < self._crowd_limit() and slot.can_send(now):
                    del self._gated[slot.key]
                    return self._unpark(slot, now)
        return None

    def _unpark(self, slot: Slot, now: float) -> tuple[Request, Slot]:
        parked = slot.backlog.popleft()
        self._parked -= 1
        if slot.backlog:
            self._queue(slot)  # to the back of the queue: the next slot goes first
        else:
            del self._backlogged[slot.key]
        return parked, self._start(parked, slot, now)

    def _queue(self, slot: Slot) -> None:
        if not slot.queued:
            slot.queued = True
            self._ready.append(slot)

    def _crowd_limit(self) -> int:
        """In flight a slot may have for the number of slots with work now: requests
        in flight or parked, less those that only wait for their time or a proxy (a
        paced or paused slot fills no worker; counted from the queues, which may hold
        stale entries, so this errs towards fewer, towards no cap)."""
        crowd = self._crowd
        busy = len(self.slots) - len(self._idle_slots)
        waiting = len(self._timed) + len(self._gated)
        if waiting:
            busy = max(busy - waiting, self._sending)
        limit = crowd.limit(busy)
        if crowd.lifted:
            crowd.lifted = False
            # the slots it held wait for a release that may be a round trip away:
            # let them fill the workers now
            for slot in self._backlogged.values():
                if slot.inflight and slot.key not in self._gated:
                    self._queue(slot)
        return limit

    def _wait_for_room(self, slot: Slot, now: float) -> None:
        """File a slot that has parked requests but may not send now by what it waits for."""
        if slot.inflight >= self._crowd_limit():
            return  # held while the crawl is crowded (inflight >= 1): release() queues it
        if slot.inflight >= slot.policy.limit():
            if slot.inflight:
                return  # full: release() queues it again
            # a limit of 0 (a job-wide grant ran out): no release will come, so it is
            # looked at again on the next wake-up, as a slot behind a full proxy is
            self._gated[slot.key] = slot
            return
        ready_at = slot.policy.ready_at()
        if ready_at > now:
            heapq.heappush(self._timed, (ready_at, next(self._seq), slot))
        elif slot.gate is not None and not slot.gate.available(now):
            self._gated[slot.key] = slot
        else:
            self._queue(slot)

    def _start(self, request: Request, slot: Slot, now: float) -> Slot:
        if not slot.inflight:
            self._sending += 1
            if self._idle_slots:
                self._idle_slots.pop(slot.key, None)
        slot.inflight += 1
        if slot.inflight > slot.peak:
            slot.peak = slot.inflight
        policy = slot.policy
        policy.on_send(now)
        self._handed_out_at[request] = now
        sent = getattr(policy, "on_sent", None)
        if sent is not None:
            # Runs once this worker yields, that is once the request is written (or
            # waits for a connection): a stall before the write (a garbage collection,
            # a connection to open) then delays the slot's next send too, rather than
            # bunching it right behind this one.
            asyncio.get_running_loop().call_soon(self._sent, sent)
        self.inflight += 1
        return slot

    def _sent(self, sent: Callable[[float], None]) -> None:
        sent(self._clock())

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
                if len(target.backlog) == 1:
                    self._backlogged[target.key] = target
                    self._wait_for_room(target, now)
                self._idle_slots.pop(target.key, None)
            if not slot.inflight:
                self._went_idle(slot, now)
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
        timed = self._timed
        if timed and (due is None or timed[0][0] < due):
            due = timed[0][0]
        if self._ready:
            due = now  # a slot may send already: wake a worker at once
        for slot in self._gated.values():
            if slot.backlog and slot.inflight < slot.policy.limit():
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
        if not slot.inflight:
            self._sending -= 1
        if slot.backlog:
            self._queue(slot)  # room again for what is parked on it
        elif not slot.inflight:
            self._went_idle(slot, self._clock())
            if self._crowd.crowded:
                self._crowd_limit()  # one host fewer: the crawl may not be crowded any more
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

    def handed_out(self, request: Request, now: float) -> tuple[float, float]:
        """When ``request`` was handed out, on the clock its slot's policy was told
        of the send by (``now`` if unknown), and the seconds it was parked on its
        slot before (the pool-wait metric). Call once, as it is sent: the policy
        then gets the same send time back (``now - latency``) with the response,
        and can tell which of its sends it is."""
        sent = self._handed_out_at.pop(request, now)
        parked_at = self._parked_at.pop(request, None)
        return sent, 0.0 if parked_at is None else max(sent - parked_at, 0.0)

    @property
    def parked(self) -> int:
        return self._parked
