"""Kept-alive connections held idle are capped (``max_idle_connections``): past the
cap the least recently used close, so a crawl of many hosts does not keep a few
sockets open to every host it has finished with until ``keepalive_timeout``."""

from __future__ import annotations

import asyncio
import contextlib
import gc
import weakref
from collections.abc import AsyncIterator, Iterator
from typing import Any

import pytest
from aiohttp import web
from sites import serve

from pooledcrawl import Request, Response, Settings, Spider
from pooledcrawl.engine.engine import Engine
from pooledcrawl.transport.aiohttp import AiohttpTransport
from pooledcrawl.transport.handler import AcyclicResponseHandler


def _app() -> web.Application:
    async def page(request: web.Request) -> web.Response:
        n = int(request.match_info["n"])
        links = "".join(f'<a href="/p/{i}">{i}</a>' for i in range(1, 4)) if n == 0 else ""
        return web.Response(text=f"<html><body>{links}</body></html>", content_type="text/html")

    app = web.Application()
    app.router.add_get("/p/{n}", page)
    return app


@contextlib.asynccontextmanager
async def _servers(count: int) -> AsyncIterator[list[str]]:
    """``count`` servers, one per port: as many hosts to the connection pool."""
    async with contextlib.AsyncExitStack() as stack:
        yield [await stack.enter_async_context(serve(_app())) for _ in range(count)]


async def test_idle_connections_past_the_cap_close_least_recently_used_first() -> None:
    transport = AiohttpTransport(Settings(max_idle_connections=3, keepalive_timeout=60.0))
    try:
        async with _servers(8) as bases:
            for base in bases:
                response = await transport.fetch(Request(f"{base}/p/1"))
                assert response.status == 200
            connector = transport._sessions[None].connector
            assert connector.idle_connections == 3  # type: ignore[union-attr]
            # the three hosts used last kept theirs; the first had its connection closed
            again = await transport.fetch(Request(f"{bases[-1]}/p/2"))
            assert again.timing is not None and again.timing.reused == 1
            first = await transport.fetch(Request(f"{bases[0]}/p/2"))
            assert first.timing is not None
            assert (first.timing.reused, first.timing.opened) == (0, 1)
            assert connector.idle_connections == 3  # type: ignore[union-attr]
    finally:
        await transport.close()


async def test_a_host_in_use_keeps_reusing_its_connection() -> None:
    transport = AiohttpTransport(Settings(max_idle_connections=1, keepalive_timeout=60.0))
    try:
        async with _servers(1) as (base,):
            opened = 0
            for n in range(10):
                response = await transport.fetch(Request(f"{base}/p/{n + 1}"))
                assert response.timing is not None
                opened += response.timing.opened
            assert opened == 1
    finally:
        await transport.close()


class _Sampler(Spider):
    """Crawls each host's page 0 and its links, noting the idle connections and live
    slots as it goes."""

    name = "sampler"

    def __init__(self, urls: list[str]) -> None:
        super().__init__()
        self.urls = urls
        self.engine: Engine | None = None
        self.idle: list[int] = []
        self.slots: list[int] = []

    async def start(self) -> AsyncIterator[Request]:
        for url in self.urls:
            yield Request(url, self.parse)

    def parse(self, response: Response) -> Iterator[Request]:
        assert self.engine is not None
        transport = self.engine.transport
        assert isinstance(transport, AiohttpTransport)
        self.idle.append(transport._sessions[None].connector.idle_connections)  # type: ignore[union-attr]
        self.slots.append(len(self.engine.dispatcher.slots))
        yield from response.follow_all(css="a", callback=self.parse)


async def test_a_crawl_of_many_hosts_holds_bounded_connections_and_slots() -> None:
    async with _servers(40) as bases:
        spider = _Sampler([f"{base}/p/0" for base in bases])
        settings = Settings(
            concurrency=8,
            domain_concurrency=2,
            max_idle_connections=4,
            max_idle_slots=5,
            slot_idle_timeout=3600.0,
            keepalive_timeout=60.0,
            depth_priority=-1,
        )
        engine = Engine(spider, settings)
        spider.engine = engine
        stats = await engine.run()
    assert stats.pages == 40 * 4
    # 40 hosts each left connections behind; at most the cap were ever kept idle
    assert max(spider.idle) <= 4
    # live slots: those at work (at most one per request in flight) plus the idle cap
    assert max(spider.slots) <= 8 + 5
    assert stats.extra["hosts"]["seen"] == 40


async def test_a_closed_connection_is_freed_without_the_garbage_collector(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # asyncio's socket transport (Python 3.11) keeps a bound method of itself after
    # the connection is lost: each closed connection would wait, as a reference
    # cycle, for a full collection. The transport's protocol breaks that cycle.
    opened: list[weakref.ref[Any]] = []
    made = AcyclicResponseHandler.connection_made

    def connection_made(self: AcyclicResponseHandler, transport: Any) -> None:
        opened.append(weakref.ref(transport))
        made(self, transport)

    monkeypatch.setattr(AcyclicResponseHandler, "connection_made", connection_made)
    transport = AiohttpTransport(Settings(max_idle_connections=0, keepalive_timeout=60.0))
    gc.collect()
    gc.disable()
    try:
        async with _servers(6) as bases:
            for base in bases:  # no idle connection kept: each one closes after its fetch
                response = await transport.fetch(Request(f"{base}/p/1"))
                assert response.status == 200
            await asyncio.sleep(0.05)  # connection_lost runs on the next loop turns
            assert len(opened) == 6
            assert [ref for ref in opened if ref() is not None] == []
    finally:
        gc.enable()
        await transport.close()
