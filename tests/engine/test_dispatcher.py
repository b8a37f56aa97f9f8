"""Dispatcher unit tests: a fake clock, a fake frontier, fake policies; no network."""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Callable, Mapping
from typing import Any

import pytest

from pooledcrawl import Request
from pooledcrawl.engine.dispatcher import Dispatcher, Slot, slot_key
from pooledcrawl.throttle.fixed import FixedPolicy


class FakeClock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


class FakeFrontier:
    """FIFO, no dedup; records acks."""

    def __init__(self, urls: list[str] = ()) -> None:  # type: ignore[assignment]
        self.on_ready: Callable[[], None] = lambda: None
        self.queue: deque[Request] = deque(Request(u) for u in urls)
        self.delayed: list[tuple[float, Request]] = []
        self.acked: list[str] = []

    async def open(self) -> None: ...

    async def close(self) -> None: ...

    def push(self, request: Request, canonical_url: str) -> bool:
        self.queue.append(request)
        return True

    def push_later(self, request: Request, not_before: float) -> None:
        self.delayed.append((not_before, request))
        self.delayed.sort(key=lambda pair: pair[0])

    def pop(self, now: float) -> Request | None:
        while self.delayed and self.delayed[0][0] <= now:
            self.queue.append(self.delayed.pop(0)[1])
        return self.queue.popleft() if self.queue else None

    def ack(self, request: Request) -> None:
        self.acked.append(request.url)

    def next_due(self) -> float | None:
        return self.delayed[0][0] if self.delayed else None

    def exhausted(self) -> bool:
        return not self.queue and not self.delayed

    def __len__(self) -> int:
        return len(self.queue) + len(self.delayed)


class PacedPolicy(FixedPolicy):
    """A fixed cap, and a time before which nothing may be sent."""

    def __init__(self, limit: int, not_before: float) -> None:
        super().__init__(limit)
        self.not_before = not_before

    def ready_at(self) -> float:
        return self.not_before

    def on_response(
        self, now: float, status: int, latency: float, headers: Mapping[str, str]
    ) -> None:
        return None


def make(
    urls: list[str], limit: int = 1, **kwargs: Any
) -> tuple[Dispatcher, FakeFrontier, FakeClock]:
    frontier, clock = FakeFrontier(urls), FakeClock()
    dispatcher = Dispatcher(frontier, lambda _key: FixedPolicy(limit), clock, **kwargs)
    return dispatcher, frontier, clock


async def take(dispatcher: Dispatcher) -> tuple[str, Slot]:
    got = await asyncio.wait_for(dispatcher.next(), 5)
    assert got is not None
    return got[0].url, got[1]


async def pending(dispatcher: Dispatcher) -> asyncio.Task[tuple[Request, Slot] | None]:
    """A next() call that is waiting: it has run as far as it can without blocking."""
    task = asyncio.create_task(dispatcher.next())
    for _ in range(5):
        await asyncio.sleep(0)
    assert not task.done()
    return task


def test_slot_key() -> None:
    assert slot_key("http://Example.COM/a/b") == "example.com"
    assert slot_key("http://127.0.0.1:8080/x") == "127.0.0.1:8080"
    assert slot_key("https://user:pw@host.test/") == "host.test"
    assert slot_key("http://host.test") == "host.test"


async def test_a_full_slot_parks_its_requests_without_blocking_another_domain() -> None:
    dispatcher, frontier, _ = make(["http://a/1", "http://a/2", "http://a/3", "http://b/1"])
    url, slot_a = await take(dispatcher)
    assert url == "http://a/1"
    # a is full: its next two requests are parked and b's request goes out.
    url, slot_b = await take(dispatcher)
    assert url == "http://b/1"
    assert dispatcher.parked == 2 and len(frontier) == 0
    assert dispatcher.inflight == 2 and slot_a.inflight == 1 and slot_b.inflight == 1
    # When a has room again, its parked requests go first, in order.
    waiting = await pending(dispatcher)
    dispatcher.release(slot_a)
    got = await asyncio.wait_for(waiting, 5)
    assert got is not None and got[0].url == "http://a/2"
    assert dispatcher.parked == 1
    assert slot_a.peak == 1


async def test_parking_is_bounded() -> None:
    urls = [f"http://a/{i}" for i in range(6)] + ["http://b/1"]
    dispatcher, frontier, _ = make(urls, max_parked=2)
    _, slot_a = await take(dispatcher)
    waiting = await pending(dispatcher)
    # Only two parked; the rest stay in the frontier rather than piling up in memory.
    assert dispatcher.parked == 2 and len(frontier) == 4
    dispatcher.release(slot_a)
    got = await asyncio.wait_for(waiting, 5)
    assert got is not None and got[0].url == "http://a/1"


async def test_a_paced_slot_waits_for_its_time_and_others_go_meanwhile() -> None:
    frontier, clock = FakeFrontier(["http://slow/1", "http://fast/1", "http://fast/2"]), FakeClock()
    policies = {"slow": PacedPolicy(4, not_before=10.0), "fast": FixedPolicy(4)}
    dispatcher = Dispatcher(frontier, policies.__getitem__, clock)
    assert (await take(dispatcher))[0] == "http://fast/1"
    assert (await take(dispatcher))[0] == "http://fast/2"
    waiting = await pending(dispatcher)
    assert dispatcher.parked == 1
    clock.now = 10.0
    dispatcher.notify()
    got = await asyncio.wait_for(waiting, 5)
    assert got is not None and got[0].url == "http://slow/1"


async def test_a_delayed_retry_is_handed_out_when_due() -> None:
    dispatcher, frontier, clock = make([])
    dispatcher.producers += 1  # keep the crawl open while nothing is queued
    frontier.push_later(Request("http://a/retry"), 5.0)
    waiting = await pending(dispatcher)
    clock.now = 5.0
    dispatcher.notify()
    got = await asyncio.wait_for(waiting, 5)
    assert got is not None and got[0].url == "http://a/retry"


async def test_the_crawl_ends_when_nothing_is_active_pending_or_producing() -> None:
    dispatcher, frontier, _ = make(["http://a/1"])
    dispatcher.producers += 1
    url, slot = await take(dispatcher)
    waiting = await pending(dispatcher)  # a/1 is still active: its callback may add more
    dispatcher.release(slot)
    request = Request(url)
    dispatcher.finish(request)
    assert frontier.acked == ["http://a/1"]
    for _ in range(5):
        await asyncio.sleep(0)
    assert not waiting.done()  # the producer (start()) may still push
    dispatcher.producer_done()
    assert await asyncio.wait_for(waiting, 5) is None
    assert dispatcher.closed
    assert await dispatcher.next() is None


async def test_work_added_by_a_callback_wakes_a_waiting_worker() -> None:
    dispatcher, frontier, _ = make(["http://a/1"], limit=4)
    _, slot = await take(dispatcher)
    waiting = await pending(dispatcher)
    frontier.push(Request("http://a/2"), "http://a/2")
    dispatcher.notify()
    got = await asyncio.wait_for(waiting, 5)
    assert got is not None and got[0].url == "http://a/2"
    assert slot.inflight == 2


async def test_close_stops_handing_out_and_wakes_waiters() -> None:
    dispatcher, _, _ = make(["http://a/1", "http://a/2"])
    await take(dispatcher)
    waiting = await pending(dispatcher)
    dispatcher.close()
    assert await asyncio.wait_for(waiting, 5) is None
    assert await dispatcher.wait_closed(0.1)


@pytest.mark.parametrize("limit", [1, 3])
async def test_snapshot_reports_policy_and_peak(limit: int) -> None:
    dispatcher, _, _ = make([f"http://a/{i}" for i in range(5)], limit=limit)
    for _ in range(limit):
        await take(dispatcher)
    snap = dispatcher.snapshot()["a"]
    assert snap["concurrency"] == limit
    assert snap["inflight"] == snap["peak_concurrency"] == limit


# ---- crowded: one request in flight per host while enough hosts have work ----------
async def test_while_crowded_another_host_goes_before_a_second_request_to_one() -> None:
    urls = ["http://a/1", "http://b/1", "http://a/2", "http://b/2", "http://c/1"]
    dispatcher, frontier, _ = make(urls, limit=4, workers=2, crowded_cap=1)
    assert (await take(dispatcher))[0] == "http://a/1"
    url, slot_b = await take(dispatcher)  # two hosts with work: crowded from here on
    assert url == "http://b/1"
    url, _ = await take(dispatcher)
    assert url == "http://c/1"  # a/2 and b/2 wait on their hosts' connections
    assert dispatcher.parked == 2 and len(frontier) == 0
    assert {slot.key: slot.inflight for slot in dispatcher.slots.values()} == {
        "a": 1,
        "b": 1,
        "c": 1,
    }
    waiting = await pending(dispatcher)
    dispatcher.release(slot_b)
    got = await asyncio.wait_for(waiting, 5)
    assert got is not None and got[0].url == "http://b/2"


async def test_a_single_host_goes_up_to_its_own_limit() -> None:
    urls = [f"http://a/{i}" for i in range(5)]
    dispatcher, frontier, _ = make(urls, limit=4, workers=2, crowded_cap=1)
    for _ in range(4):
        await take(dispatcher)
    # one host cannot crowd the crawl: nothing parked, the fifth waits for room
    assert dispatcher.slots["a"].inflight == 4
    assert dispatcher.parked == 0 and len(frontier) == 1


async def test_off_a_crowd_of_hosts_goes_to_each_limit() -> None:
    urls = ["http://a/1", "http://b/1", "http://a/2", "http://b/2"]
    dispatcher, _, _ = make(urls, limit=4, workers=2, crowded_cap=None)
    assert [(await take(dispatcher))[0] for _ in range(4)] == urls
    assert dispatcher.parked == 0


async def test_when_the_crowd_thins_out_held_hosts_fill_the_workers_at_once() -> None:
    urls = ["http://a/1", "http://b/1", "http://c/1", "http://d/1", "http://a/2", "http://a/3"]
    dispatcher, _, _ = make(urls, limit=4, workers=4, crowded_cap=1)
    slots = {}
    for _ in range(4):
        url, slot = await take(dispatcher)
        slots[url] = slot
    waiting = await pending(dispatcher)
    assert dispatcher.parked == 2  # a holds one connection while b, c and d have work
    for url in ("http://b/1", "http://c/1"):
        dispatcher.release(slots[url])
        dispatcher.finish(Request(url))
    for _ in range(5):
        await asyncio.sleep(0)
    assert not waiting.done()  # a and d have work: still crowded (it lifts below 2)
    dispatcher.release(slots["http://d/1"])
    dispatcher.finish(Request("http://d/1"))
    # one host with work, under half the workers: a's requests go without waiting
    # for a/1 to come back
    got = await asyncio.wait_for(waiting, 5)
    assert got is not None and got[0].url == "http://a/2"
    assert (await take(dispatcher))[0] == "http://a/3"
    assert slots["http://a/1"].inflight == 3


async def test_a_paced_host_does_not_crowd_the_crawl() -> None:
    # p may not send before t=10: it fills no worker, so a alone is not a crowd
    frontier, clock = FakeFrontier(["http://p/1", "http://a/1", "http://a/2"]), FakeClock()
    policies = {"p": PacedPolicy(4, not_before=10.0), "a": FixedPolicy(4)}
    dispatcher = Dispatcher(frontier, policies.__getitem__, clock, workers=2, crowded_cap=1)
    assert (await take(dispatcher))[0] == "http://a/1"
    assert (await take(dispatcher))[0] == "http://a/2"
    assert dispatcher.slots["a"].inflight == 2 and dispatcher.parked == 1
