"""robots.txt at scale: many hosts, one fetch each; slow robots.txt servers do not
hold up the others; the per-host cache stays bounded."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Iterator
from typing import Any

import pytest
from aiohttp import web
from sites import serve

from pooledcrawl import Engine, Request, Response, Settings, Spider
from pooledcrawl.hygiene import robots as robots_module
from pooledcrawl.hygiene.robots import RobotsFrontier

pytestmark = pytest.mark.timeout(120)

SLOW_HOSTS = 20
PAGES = 5


class _Hosts(Spider):
    name = "hosts"

    def __init__(self, bases: list[str]) -> None:
        super().__init__()
        self.bases = bases

    async def start(self) -> AsyncIterator[Request]:
        for base in self.bases:
            for i in range(PAGES):
                yield Request(f"{base}/p/{i}", self.parse)

    def parse(self, response: Response) -> Iterator[Any]:
        return iter(())


async def test_slow_robots_txt_does_not_hold_up_other_hosts() -> None:
    fast_done = asyncio.Event()
    hits: dict[str, int] = {}
    fast_pages = 0
    gave_up_waiting = 0

    def app(slow: bool) -> web.Application:
        async def robots(request: web.Request) -> web.Response:
            hits[request.host] = hits.get(request.host, 0) + 1
            if slow:
                # answers only once the fast host is crawled, or after 8 s
                try:
                    await asyncio.wait_for(fast_done.wait(), 8.0)
                except TimeoutError:
                    nonlocal gave_up_waiting
                    gave_up_waiting += 1
            return web.Response(text="User-agent: *\nDisallow: /private\n")

        async def page(request: web.Request) -> web.Response:
            nonlocal fast_pages
            if not slow:
                fast_pages += 1
                if fast_pages == PAGES:
                    fast_done.set()
            return web.Response(text="<html></html>", content_type="text/html")

        application = web.Application()
        application.router.add_get("/robots.txt", robots)
        application.router.add_get("/p/{n}", page)
        return application

    async with contextlib.AsyncExitStack() as stack:
        # each loopback address is its own host (127.0.0.0/8 all reaches lo on Linux)
        slow = [
            await stack.enter_async_context(serve(app(True), host=f"127.0.1.{n + 1}"))
            for n in range(SLOW_HOSTS)
        ]
        fast = await stack.enter_async_context(serve(app(False), host="127.0.2.1"))
        settings = Settings(concurrency=8, obey_robots=True, robots_timeout=30.0)
        started = asyncio.get_running_loop().time()
        stats = await Engine(_Hosts([fast, *slow]), settings).run()
    # the fast host was crawled while every slow robots.txt answer was still pending:
    # those fetches never took the connections its pages needed
    assert gave_up_waiting == 0
    assert fast_pages == PAGES
    assert stats.pages == PAGES * (SLOW_HOSTS + 1)
    # one robots.txt fetch per host
    assert sorted(hits.values()) == [1] * (SLOW_HOSTS + 1)
    assert asyncio.get_running_loop().time() - started < 60


class _Chain(Spider):
    """Host n's first page links to host n+1: hosts are met one after another."""

    name = "chain"

    def __init__(self, bases: list[str]) -> None:
        super().__init__()
        self.bases = bases

    async def start(self) -> AsyncIterator[Request]:
        yield Request(f"{self.bases[0]}/p/0", self.parse, cb_kwargs={"n": 0})

    def parse(self, response: Response, n: int) -> Iterator[Any]:
        if response.url.endswith("/p/0"):
            for i in range(1, PAGES):
                yield Request(f"{self.bases[n]}/p/{i}", self.parse, cb_kwargs={"n": n})
            if n + 1 < len(self.bases):
                yield Request(f"{self.bases[n + 1]}/p/0", self.parse, cb_kwargs={"n": n + 1})


async def test_the_robots_cache_is_bounded(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(robots_module, "MAX_HOSTS", 4)
    hits: dict[str, int] = {}

    async def robots(request: web.Request) -> web.Response:
        hits[request.host] = hits.get(request.host, 0) + 1
        return web.Response(text="User-agent: *\nAllow: /\n")

    async def page(request: web.Request) -> web.Response:
        return web.Response(text="<html></html>", content_type="text/html")

    application = web.Application()
    application.router.add_get("/robots.txt", robots)
    application.router.add_get("/p/{n}", page)
    async with contextlib.AsyncExitStack() as stack:
        bases = [
            await stack.enter_async_context(serve(application, host=f"127.0.3.{n + 1}"))
            for n in range(12)
        ]
        engine = Engine(_Chain(bases), Settings(concurrency=4, obey_robots=True))
        stats = await engine.run()
    assert stats.pages == 12 * PAGES
    assert isinstance(engine.queue, RobotsFrontier)  # the RobotsTxt middleware's filter
    assert len(engine.queue._hosts) <= 4
    assert sorted(hits.values()) == [1] * 12
