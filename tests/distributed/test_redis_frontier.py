"""The Redis frontier in one process, against the real Redis: dedup shared between
workers, leases (reclaimed from a dead worker, kept by a live one), acks only after
the sinks flush, retries that wait, priorities, and a clean hand-back at close."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest
import redis.asyncio as aioredis

from pooledcrawl import Spider
from pooledcrawl.distributed.keys import GROUP, JobKeys
from pooledcrawl.frontier.codec import RequestCodec
from pooledcrawl.frontier.redis import RedisFrontier
from pooledcrawl.http.request import Request


class PageSpider(Spider):
    name = "pages"

    def parse(self, response: Any) -> None:
        return None


@pytest.fixture
async def make(redis_url: str, job: str) -> AsyncIterator[Any]:
    """Opens frontiers (workers) of ``job``; closes those still open at the end."""
    opened: list[RedisFrontier] = []
    spider = PageSpider()

    async def factory(worker: str, **options: Any) -> RedisFrontier:
        client = aioredis.from_url(redis_url)
        frontier = RedisFrontier(
            client, job, RequestCodec(spider), spider_name="pages", worker_id=worker, **options
        )
        await frontier.open()
        opened.append(frontier)
        return frontier

    factory.spider = spider  # type: ignore[attr-defined]
    yield factory
    for frontier in opened:
        if frontier._task is not None:
            await frontier.close()


def request(i: int, priority: int = 0, **kwargs: Any) -> Request:
    return Request(f"http://127.0.0.1:9/p/{i}.html", priority=priority, **kwargs)


def push(frontier: RedisFrontier, *requests: Request) -> list[bool]:
    return [frontier.push(r, r.url) for r in requests]


async def pop_n(frontier: RedisFrontier, count: int, within: float = 5.0) -> list[Request]:
    got: list[Request] = []
    deadline = time.monotonic() + within
    while len(got) < count:
        r = frontier.pop(time.monotonic())
        if r is not None:
            got.append(r)
            continue
        if time.monotonic() > deadline:
            pytest.fail(f"popped {len(got)} of {count} requests in {within}s")
        await asyncio.sleep(0.01)
    return got


async def settle(frontier: RedisFrontier) -> None:
    """Until the background loop has sent everything buffered."""
    deadline = time.monotonic() + 5
    while frontier._outbox or frontier._acks or frontier._delayed_out:
        assert time.monotonic() < deadline, "the frontier did not flush"
        await asyncio.sleep(0.01)
    await asyncio.sleep(0.1)  # the round trip in progress


async def die(frontier: RedisFrontier) -> None:
    """Stop a worker's frontier the way a kill -9 would: no flush, no goodbye."""
    assert frontier._task is not None
    frontier._stopping = True  # a cancellation can be lost on Python 3.11 (wait_for)
    frontier._task.cancel()
    await asyncio.wait((frontier._task,), timeout=5)
    frontier._task = None
    await frontier._redis.aclose()


async def stream_len(redis_url: str, job: str, priority: int = 0) -> int:
    client = aioredis.from_url(redis_url)
    try:
        return int(await client.xlen(JobKeys(job).stream(priority)))
    finally:
        await client.aclose()


@pytest.mark.parametrize("bits", [0, 1 << 20], ids=["exact", "bloom"])
async def test_two_workers_enqueue_each_url_once(
    make: Any, redis_url: str, job: str, bits: int
) -> None:
    a = await make("a", dedup_bits=bits)
    b = await make("b", dedup_bits=bits)
    # both find the same 1,500 links, in different orders, at the same time
    push(a, *(request(i) for i in range(1500)))
    push(b, *(request(i) for i in reversed(range(1500))))
    await asyncio.gather(settle(a), settle(b))
    assert await stream_len(redis_url, job) == 1500
    assert a.duplicates + b.duplicates == 1500
    # in a worker's own memory too: pushing again is refused without a round trip
    assert push(a, request(7)) == [False]
    client = aioredis.from_url(redis_url)
    try:
        kind = (await client.type(JobKeys(job).seen)).decode()
    finally:
        await client.aclose()
    assert kind == ("set" if bits == 0 else "string")


@pytest.mark.parametrize("bits", [0, 1 << 20], ids=["exact", "bloom"])
async def test_a_redirect_target_is_seen_once_by_the_job(
    make: Any, redis_url: str, job: str, bits: int
) -> None:
    a = await make("a", dedup_bits=bits)
    b = await make("b", dedup_bits=bits)
    push(a, request(1))
    await settle(a)
    target = request(2).url
    assert not await b.add_seen(request(1).url)  # queued by a under its own URL
    assert await a.add_seen(target)
    assert not await b.add_seen(target)  # another worker asks Redis
    assert push(a, request(2)) == push(b, request(2)) == [False]  # known locally now
    c = await make("c", dedup_bits=bits)
    assert push(c, request(2)) == [True]  # c's own memory did not know it: Redis does
    await settle(c)
    assert await stream_len(redis_url, job) == 1
    assert c.duplicates == 1


async def test_dont_filter_is_enqueued_again(make: Any, redis_url: str, job: str) -> None:
    a = await make("a")
    push(a, request(1), request(1, dont_filter=True), request(1, dont_filter=True))
    await settle(a)
    assert await stream_len(redis_url, job) == 3


async def test_dead_workers_leases_are_reclaimed(make: Any, redis_url: str, job: str) -> None:
    dead = await make("dead", window=8)
    assert await dead.claim_seeding()
    before_claim = time.monotonic()
    push(dead, *(request(i) for i in range(5)))
    dead.seeding_done()
    taken = await pop_n(dead, 5)
    # it dies holding the 5 leases: no ack, no heartbeat, no goodbye
    await die(dead)

    heir = await make("heir", lease_timeout=0.5)
    assert not await heir.claim_seeding()  # seeds are enqueued once per job
    got = await pop_n(heir, 5)
    assert time.monotonic() >= before_claim + 0.5  # not before the lease timed out
    assert sorted(r.url for r in got) == sorted(r.url for r in taken)
    assert heir.reclaimed == 5
    assert not heir.exhausted()  # five leases still out
    for r in got:
        heir.ack(r)
    await wait_until(heir.exhausted)
    assert await stream_len(redis_url, job) == 0


async def wait_until(predicate: Callable[[], bool], within: float = 5.0) -> None:
    deadline = time.monotonic() + within
    while not predicate():
        assert time.monotonic() < deadline, "condition not reached"
        await asyncio.sleep(0.01)


async def test_live_workers_leases_are_kept_fresh(make: Any, redis_url: str, job: str) -> None:
    # the slow worker beats every 0.2 s (a third of its lease); the other takes over
    # leases idle for 2 s: only a 1.8 s stall of this process, not a busy machine's
    # usual hiccup, could let it steal them
    slow = await make("slow", lease_timeout=0.6)
    push(slow, *(request(i) for i in range(4)))
    held = await pop_n(slow, 4)
    other = await make("other", lease_timeout=2.0)
    # past the other's lease timeout the slow worker still has them: its heartbeat
    # refreshes them, so the other worker never takes them over
    await asyncio.sleep(3.0)
    assert other.pop(time.monotonic()) is None
    assert other.reclaimed == 0
    for r in held:
        slow.ack(r)
    await settle(slow)
    assert await stream_len(redis_url, job) == 0


async def test_acks_wait_for_the_sinks(make: Any, redis_url: str, job: str) -> None:
    a = await make("a")
    flushed = asyncio.Event()
    calls = 0

    async def before_ack() -> None:
        nonlocal calls
        calls += 1
        await flushed.wait()

    a.before_ack = before_ack
    push(a, request(1), request(2))
    got = await pop_n(a, 2)
    for r in got:
        a.ack(r)
    await wait_until(lambda: calls > 0)
    await asyncio.sleep(0.2)
    assert await stream_len(redis_url, job) == 2  # items not flushed: not acknowledged
    flushed.set()
    await settle(a)
    assert await stream_len(redis_url, job) == 0


async def test_retries_wait_until_due(make: Any, job: str) -> None:
    a = await make("a")
    due = time.monotonic() + 0.5
    a.push_later(request(1), due)
    a.push_later(request(2), time.monotonic())
    first = await pop_n(a, 1)
    assert first[0].url.endswith("/p/2.html")
    later = await pop_n(a, 1)
    assert later[0].url.endswith("/p/1.html")
    # it waited in the delayed set (due times go through the wall clock: a little slack)
    assert time.monotonic() >= due - 0.05


async def test_higher_priority_first(make: Any, job: str) -> None:
    producer = await make("producer")
    push(producer, *(request(i, priority=0) for i in range(5)))
    push(producer, *(request(100 + i, priority=5) for i in range(5)))
    await settle(producer)
    await producer.close()  # what it claimed meanwhile goes back to the job
    consumer = await make("consumer")
    got = await pop_n(consumer, 10)
    assert [r.priority for r in got] == [5] * 5 + [0] * 5


async def test_close_hands_back_what_it_did_not_complete(
    make: Any, redis_url: str, job: str
) -> None:
    a = await make("a", window=16)
    push(a, *(request(i) for i in range(10)))
    started = await pop_n(a, 3)
    a.ack(started[0])  # one completed; two cut short by the stop; seven never started
    await a.close()  # all nine go back to the job at once
    b = await make("b")
    got = await pop_n(b, 9, within=20.0)  # well before any lease timeout (60 s)
    assert {r.url for r in got} == {request(i).url for i in range(10)} - {started[0].url}
    assert b.reclaimed == 0
    client = aioredis.from_url(redis_url)
    try:
        pending = await client.xpending(JobKeys(job).stream(0), GROUP)
    finally:
        await client.aclose()
    # nothing is left leased to "a"
    assert {c["name"].decode(): c["pending"] for c in pending["consumers"]} == {"b": 9}


async def test_one_seeder_per_job_and_a_dead_seeder_is_replaced(make: Any) -> None:
    # heartbeats every second, dead after 3 s without one (Redis keeps whole seconds):
    # a busy machine's stall of a second or so does not pass for a death
    seeder = await make("seeder", lease_timeout=3.0)
    assert await seeder.claim_seeding()
    other = await make("other", lease_timeout=3.0)
    waiting = asyncio.create_task(other.claim_seeding())
    await asyncio.sleep(1.5)  # the seeder is alive (heartbeats): the other one waits
    assert not waiting.done()
    # the seeder dies before its start requests are all queued
    await die(seeder)
    async with asyncio.timeout(15):
        assert await waiting  # its heartbeat went stale: the other one seeds instead
    other.seeding_done()
    third = await make("third")
    async with asyncio.timeout(5):
        assert not await third.claim_seeding()  # seeded: nobody seeds again


async def test_a_crashed_background_loop_fails_the_worker(make: Any) -> None:
    a = await make("a")
    woken: list[bool] = []
    a.on_ready = lambda: woken.append(True)

    async def broken() -> None:
        raise ValueError("a bug in the loop")

    a._tick = broken  # type: ignore[method-assign]
    a._kick.set()
    await wait_until(lambda: a._task is not None and a._task.done())
    assert woken  # the engine is woken up...
    with pytest.raises(ValueError, match="a bug in the loop"):
        a.pop(time.monotonic())  # ...and pop() raises instead of returning None forever
    a._task = None  # nothing left to close
    await a._redis.aclose()
