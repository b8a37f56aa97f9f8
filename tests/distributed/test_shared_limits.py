"""Per-domain limits that hold for the whole job: three worker processes against a
server that counts requests in flight, and the Redis-side token and rate scripts
driven directly (fair shares, a dead worker's tokens, lowest vote, job-wide cap)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
import redis.asyncio as aioredis
from aiohttp import web
from dist_helpers import Procs, all_pages, feed_urls, read_stats, worker_argv
from sites import link_graph_page, serve

from pooledcrawl.distributed.limits import SharedLimits, SharedPolicy
from pooledcrawl.distributed.worker import job_status
from pooledcrawl.throttle.fixed import FixedPolicy


class PeakCounter:
    def __init__(self) -> None:
        self.inflight = 0
        self.peak = 0
        self.requests = 0


def counting_site(pages: int, counter: PeakCounter, delay: float) -> web.Application:
    """The link graph, each response held ``delay`` s, counting requests in flight."""

    async def page(request: web.Request) -> web.Response:
        counter.inflight += 1
        counter.requests += 1
        counter.peak = max(counter.peak, counter.inflight)
        try:
            await asyncio.sleep(delay)
            i = int(request.match_info["i"])
            return web.Response(text=link_graph_page(i, pages), content_type="text/html")
        finally:
            counter.inflight -= 1

    app = web.Application()
    app.router.add_get(r"/p/{i:\d+}.html", page)
    return app


async def test_three_workers_stay_within_the_domain_limit_together(
    redis_url: str, job: str, procs: Procs, tmp_path: Path
) -> None:
    pages = 600
    counter = PeakCounter()
    feeds = [tmp_path / f"w{i}.jsonl" for i in range(3)]
    async with serve(counting_site(pages, counter, 0.02)) as base:
        for feed in feeds:
            argv = worker_argv(base, redis_url, job, feed, "--concurrency", "8")
            await procs.start([*argv, "-s", "domain_concurrency=5", "--autothrottle", "off"])
        assert await procs.wait(60) == [0, 0, 0], "\n".join(procs.log(i) for i in range(3))
    # each worker alone would send 5 at once: 15 together without the shared limit
    assert counter.peak <= 5
    assert counter.peak > 1
    assert set().union(*(feed_urls(f) for f in feeds)) == all_pages(base, pages)
    # fair shares: no worker held the whole limit while the others waited. One of
    # the three may fetch nothing: the other two's read-ahead can hold every queued
    # request of this small job (the README's "Limits and throughput").
    pages_by_worker = [read_stats(feed)["pages"] for feed in feeds]
    assert sum(n > 0 for n in pages_by_worker) >= 2, pages_by_worker


class FakePolicy(FixedPolicy):
    """A fixed cap that also reports a learned rate (as the adaptive controller does)."""

    def __init__(self, limit: int, rate: float | None = None) -> None:
        super().__init__(limit)
        self.rate = rate

    def snapshot(self) -> dict[str, Any]:
        return {"concurrency": self.limit(), "rate": self.rate}


@pytest.fixture
async def workers(redis_url: str, job: str) -> AsyncIterator[Any]:
    """Makes SharedLimits for ``job`` (one per simulated worker) with one domain each."""
    clients: list[aioredis.Redis] = []

    def make(
        name: str, local: FixedPolicy, demand: int = 100, **options: Any
    ) -> tuple[SharedLimits, SharedPolicy]:
        client = aioredis.from_url(redis_url)
        clients.append(client)
        shared = SharedLimits(client, job, name, **options)
        shared.demand = lambda key: demand
        policy = shared.factory(lambda key: local)("example.com")
        assert isinstance(policy, SharedPolicy)
        return shared, policy

    yield make
    for client in clients:
        await client.aclose()


async def test_grants_add_up_to_the_limit_and_are_shared_fairly(workers: Any) -> None:
    members = [workers(f"w{i}", FixedPolicy(5)) for i in range(3)]
    for _ in range(4):  # a few ticks: shares settle as each sees the others asking
        for shared, _policy in members:
            await shared.sync()
            assert sum(p.granted for _, p in members) <= 5
    grants = sorted(p.granted for _, p in members)
    assert grants == [1, 2, 2]
    assert all(p.limit() == p.granted for _, p in members)


async def test_first_worker_gives_back_what_it_does_not_need(workers: Any) -> None:
    first, first_policy = workers("first", FixedPolicy(5))
    await first.sync()
    assert first_policy.granted == 5  # alone: the whole limit
    second, second_policy = workers("second", FixedPolicy(5))
    await second.sync()
    assert second_policy.granted == 0  # nothing is free yet
    first_policy.inflight = 5  # its 5 are still in flight
    await first.sync()
    assert first_policy.granted == 3  # its fair share: it sends no more for now...
    await second.sync()
    assert second_policy.granted == 0  # ...but its 5 requests still hold the domain
    first_policy.inflight = 3  # two completed
    await first.sync()
    await second.sync()
    assert (first_policy.granted, second_policy.granted) == (3, 2)


async def test_a_dead_workers_tokens_expire(workers: Any) -> None:
    # the holding lives 2 s on Redis's clock (the default ttl): the heir's first sync
    # comes well within it even when this process stalls on a busy machine
    dead, dead_policy = workers("dead", FixedPolicy(4), ttl=2.0)
    await dead.sync()
    assert dead_policy.granted == 4
    heir, heir_policy = workers("heir", FixedPolicy(4), ttl=2.0)
    await heir.sync()
    assert heir_policy.granted == 0
    # no more syncs from "dead": its holding runs out after ttl
    await asyncio.sleep(2.2)
    await heir.sync()
    assert heir_policy.granted == 4


async def test_the_lowest_vote_holds_for_every_worker(workers: Any) -> None:
    careful, _ = workers("careful", FakePolicy(2, rate=5.0))
    bold, bold_policy = workers("bold", FakePolicy(10))
    await careful.sync()
    await bold.sync()
    # the bold worker learns what the careful one saw (e.g. its 429s)
    assert (bold_policy.shared_limit, bold_policy.shared_rate) == (2, 5.0)
    assert bold_policy.limit() <= 2


async def test_the_shared_rate_is_a_job_wide_budget(workers: Any) -> None:
    members = [workers(f"w{i}", FakePolicy(10, rate=20.0)) for i in range(3)]
    permits = 0
    started = time.monotonic()
    while time.monotonic() - started < 1.0:
        for shared, policy in members:
            await shared.sync()
            permits += len(policy._permits)
        await asyncio.sleep(0.05)
    elapsed = time.monotonic() - started
    # 20/s for the job (plus the bucket's burst), not 20/s for each of three workers
    assert permits <= 20 * elapsed + 2 + 3
    assert permits > 0


async def test_a_cap_above_one_workers_concurrency_is_job_wide(workers: Any) -> None:
    # each worker runs 4 at most (its concurrency); the user allows 10 for the job
    members = [workers(f"w{i}", FixedPolicy(4), job_cap=10, ceiling=4) for i in range(3)]
    for _ in range(4):
        for shared, _policy in members:
            await shared.sync()
    assert sum(p.granted for _, p in members) == 10
    assert all(p.limit() <= 4 for _, p in members)


async def test_jobs_status_shows_the_domain(workers: Any, redis_url: str, job: str) -> None:
    shared, _ = workers("w0", FixedPolicy(3), demand=2)
    await shared.sync()
    client = aioredis.from_url(redis_url)
    try:
        await client.hset(f"pcrawl:{job}:meta", mapping={"spider": "s", "seeded": "1"})
    finally:
        await client.aclose()
    status = await job_status(redis_url, job)
    assert status["domains"] == {"example.com": {"limit": "3", "rate": None, "granted": 2}}


def test_policy_is_closed_until_the_first_grant() -> None:
    policy = SharedPolicy("example.com", FixedPolicy(5))
    assert policy.limit() == 0  # before any sync: the job may be full already
    policy.granted, policy.grant_valid_until = 3, time.monotonic() + 1
    assert policy.limit() == 3
    policy.grant_valid_until = time.monotonic() - 0.01  # Redis away too long
    assert policy.limit() == 0


async def test_a_renewed_grant_wakes_the_dispatcher(workers: Any) -> None:
    shared, policy = workers("w0", FixedPolicy(3))
    woken: list[int] = []
    shared.notify = lambda: woken.append(policy.limit())
    await shared.sync()
    assert woken == [3]
    await shared.sync()
    assert woken == [3]  # nothing new: no wake-up
    # a sync came late (a busy event loop, a slow Redis): the grant ran out, and the
    # requests parked on the domain wait for the same grant to come back
    policy.grant_valid_until = time.monotonic() - 0.01
    assert policy.limit() == 0
    await shared.sync()
    assert woken == [3, 3]
