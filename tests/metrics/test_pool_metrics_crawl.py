"""Pool metrics measured in real crawls of local servers (127.0.0.1 only): keep-alive
reuse, connections closed by the server, pool wait under an undersized cap."""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from typing import Any

from aiohttp import web
from sites import link_graph_app, link_graph_page, serve

from pooledcrawl import Response, Spider
from pooledcrawl.engine.engine import Engine
from pooledcrawl.settings import Settings


class Graph(Spider):
    name = "graph"

    def parse(self, response: Response) -> Iterator[Any]:
        yield {"url": response.url}
        yield from response.follow_all(css="a")


async def _crawl(base: str, **settings: Any) -> dict[str, Any]:
    Graph.start_urls = [f"{base}/p/0.html"]
    values: dict[str, Any] = {"progress_interval": 60.0, "autothrottle": False, **settings}
    stats = await Engine(Graph(), Settings(**values)).run()
    data = stats.to_dict()
    assert data["failed"] == 0, data["errors"]
    return data


def _domain(stats: dict[str, Any]) -> dict[str, Any]:
    (domain,) = stats["domains"].values()
    return domain


async def test_keep_alive_crawl_of_1000_pages_reuses_connections() -> None:
    async with serve(link_graph_app(1000)) as base:
        stats = await _crawl(base, concurrency=16)
    domain = _domain(stats)
    assert stats["pages"] == 1000
    assert domain["reuse_ratio"] > 0.9
    assert domain["connections_opened"] <= 16 + 4  # about one per worker
    assert domain["server_disconnects"] == 0
    assert domain["pages"] == 1000
    assert domain["latency_body_p95_ms"] >= domain["latency_body_p50_ms"] > 0
    assert domain["latency_headers_p50_ms"] <= domain["latency_body_p50_ms"]


async def test_a_server_that_closes_every_connection_gives_reuse_near_zero() -> None:
    app = link_graph_app(300)

    async def close_after(request: web.Request, handler: Any) -> web.StreamResponse:
        response: web.StreamResponse = await handler(request)
        response.force_close()  # Connection: close on every response
        return response

    app.middlewares.append(web.middleware(close_after))
    async with serve(app) as base:
        stats = await _crawl(base, concurrency=8)
    domain = _domain(stats)
    assert stats["pages"] == 300
    assert domain["reuse_ratio"] < 0.05
    assert domain["connections_opened"] >= 300


@asynccontextmanager
async def _drops_kept_alive_connections(n: int) -> AsyncIterator[str]:
    """A raw HTTP/1.1 server that answers the first request of each connection and keeps
    it open, but closes it without a word when a second request comes: the stale
    keep-alive connection a client only finds out about by sending on it."""

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            head = await reader.readuntil(b"\r\n\r\n")
            match = re.match(rb"GET /p/(\d+)\.html ", head)
            body = link_graph_page(int(match.group(1)), n).encode() if match else b""
            status = b"200 OK" if match else b"404 Not Found"
            writer.write(
                b"HTTP/1.1 " + status + b"\r\nContent-Type: text/html\r\n"
                b"Content-Length: " + str(len(body)).encode() + b"\r\n\r\n" + body
            )
            await writer.drain()
            await reader.readuntil(b"\r\n\r\n")  # the reuse: drop it unanswered
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            writer.close()

    server = await asyncio.start_server(handle, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.close()
        await server.wait_closed()


async def test_server_disconnects_are_counted() -> None:
    async with _drops_kept_alive_connections(60) as base:
        stats = await _crawl(base, concurrency=4)
    domain = _domain(stats)
    assert stats["pages"] == 60  # the client resent each dropped request at once
    assert domain["server_disconnects"] > 0
    assert domain["server_disconnects"] <= domain["connections_opened"]


async def test_pool_wait_rises_when_the_cap_is_below_littles_law() -> None:
    """16 workers against a server with 40 ms of latency: a per-domain cap of 16 lets
    every ready request go at once; a cap of 2 (far below rate x latency) parks the
    rest, and the pool-wait metric says so."""
    app = link_graph_app(150)

    async def slow(request: web.Request, handler: Any) -> web.StreamResponse:
        await asyncio.sleep(0.04)
        response: web.StreamResponse = await handler(request)
        return response

    app.middlewares.append(web.middleware(slow))
    async with serve(app) as base:
        sized = _domain(await _crawl(base, concurrency=16, domain_concurrency=16))
        undersized = _domain(await _crawl(base, concurrency=16, domain_concurrency=2))
    assert undersized["peak_concurrency"] == 2
    assert undersized["pool_wait_avg_ms"] > 10 * max(sized["pool_wait_avg_ms"], 0.1)
    assert undersized["pool_wait_p95_ms"] > 10 * max(sized["pool_wait_p95_ms"], 0.1)
