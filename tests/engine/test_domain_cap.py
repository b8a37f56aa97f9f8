"""The per-domain and global caps, measured by the servers themselves."""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack

from aiohttp import web
from sites import serve

from pooledcrawl import Engine, Request, Response, Settings, Spider


class ConcurrencyMeter:
    """Counts requests being served at once, per Host header, across several servers."""

    def __init__(self) -> None:
        self.current: Counter[str] = Counter()
        self.peak: Counter[str] = Counter()
        self.total_current = 0
        self.total_peak = 0
        self.served: Counter[str] = Counter()

    def app(self, delay: float = 0.02) -> web.Application:
        async def handler(request: web.Request) -> web.Response:
            host = request.host
            self.current[host] += 1
            self.total_current += 1
            self.peak[host] = max(self.peak[host], self.current[host])
            self.total_peak = max(self.total_peak, self.total_current)
            try:
                await asyncio.sleep(delay)  # hold the request so others overlap it
            finally:
                self.current[host] -= 1
                self.total_current -= 1
            self.served[host] += 1
            return web.Response(text="<html><body>ok</body></html>", content_type="text/html")

        app = web.Application()
        app.router.add_get("/{tail:.*}", handler)
        return app


class FanOutSpider(Spider):
    """``pages`` distinct pages on each of several hosts, all queued at the start."""

    def __init__(self, bases: list[str], pages: int) -> None:
        super().__init__()
        self.bases = bases
        self.pages = pages

    async def start(self) -> AsyncIterator[Request]:
        for i in range(self.pages):
            for base in self.bases:
                yield Request(f"{base}/page/{i}")

    def parse(self, response: Response) -> dict[str, str]:
        return {"url": response.url}


async def crawl_hosts(
    meter: ConcurrencyMeter, hosts: int, pages: int, settings: Settings
) -> tuple[list[str], Engine]:
    async with AsyncExitStack() as stack:
        bases = [await stack.enter_async_context(serve(meter.app())) for _ in range(hosts)]
        engine = Engine(FanOutSpider(bases, pages), settings)
        await engine.run()
    return bases, engine


async def test_per_domain_cap_is_enforced_and_reached() -> None:
    meter = ConcurrencyMeter()
    settings = Settings(concurrency=16, domain_concurrency=3, autothrottle=False)
    bases, engine = await crawl_hosts(meter, hosts=2, pages=30, settings=settings)
    hosts = [base.removeprefix("http://") for base in bases]
    assert sorted(meter.served) == sorted(hosts)
    assert all(meter.served[h] == 30 for h in hosts)
    # Never above the cap on either host, and the cap is actually reached (so this
    # test would notice a cap that is not enforced, or one that throttles far below it).
    assert {h: meter.peak[h] for h in hosts} == {h: 3 for h in hosts}
    # Both hosts were served in parallel: one full domain does not hold up the other.
    assert meter.total_peak > 3
    assert engine.stats.max_inflight <= 6
    for host in hosts:
        assert engine.stats.domains[host]["peak_concurrency"] <= 3


async def test_global_cap_bounds_all_domains_together() -> None:
    meter = ConcurrencyMeter()
    settings = Settings(concurrency=4, domain_concurrency=3, autothrottle=False)
    _, engine = await crawl_hosts(meter, hosts=3, pages=12, settings=settings)
    assert sum(meter.served.values()) == 36
    assert meter.total_peak == 4
    assert all(peak <= 3 for peak in meter.peak.values())
    assert engine.stats.max_inflight == 4
