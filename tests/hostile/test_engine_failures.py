"""The engine's side of failure handling, against real servers on 127.0.0.1:
giving up, retries that wait without holding a worker, overrides, stale connections."""

from __future__ import annotations

import asyncio
import contextlib
import socket
import time
from collections import defaultdict
from collections.abc import AsyncIterator
from typing import Any

import pytest
from aiohttp import web
from needs import require_transport
from sites import serve

from pooledcrawl import Failure, Request, Response, Settings, Spider
from pooledcrawl.engine.engine import Engine
from pooledcrawl.runner import build_settings
from pooledcrawl.transport.base import TransportError

pytestmark = pytest.mark.timeout(60)

#: the HTTP/1.1-capable transports these failure modes are checked against
TRANSPORTS = ["aiohttp", "curl"]

FAST = {
    "retry_backoff_base": 0.01,
    "retry_backoff_cap": 0.05,
    "progress_interval": 60.0,
    "autothrottle": False,  # the retry mechanics alone, without the controller pausing
}


class Recorder(Spider):
    """Fetches ``urls`` (with ``meta``/``method``), recording callbacks and errbacks."""

    urls: list[str]
    meta: dict[str, Any] | None = None
    method: str = "GET"

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.pages: list[Response] = []
        self.failures: list[Failure] = []

    async def start(self) -> AsyncIterator[Request]:
        for url in self.urls:
            yield Request(
                url,
                method=self.method,
                body=b"x=1" if self.method == "POST" else None,
                meta=dict(self.meta) if self.meta else None,
                errback=self.failures.append,
                dont_filter=True,
            )

    def parse(self, response: Response) -> None:
        self.pages.append(response)


def hits_app() -> tuple[web.Application, dict[str, list[float]]]:
    hits: defaultdict[str, list[float]] = defaultdict(list)

    async def always_503(request: web.Request) -> web.Response:
        hits[request.path].append(time.monotonic())
        return web.Response(status=503)

    async def wait_then_ok(request: web.Request) -> web.Response:
        hits[request.path].append(time.monotonic())
        if len(hits[request.path]) == 1:
            return web.Response(status=503, headers={"Retry-After": "2"})
        return web.Response(text="finally")

    async def ok(request: web.Request) -> web.Response:
        hits[request.path].append(time.monotonic())
        return web.Response(text="ok")

    app = web.Application()
    app.router.add_get("/always-503", always_503)
    app.router.add_get("/wait-then-ok", wait_then_ok)
    app.router.add_get("/ok/{i}", ok)
    return app, hits


async def crawl(spider: Spider, settings: Settings) -> Engine:
    engine = Engine(spider, settings)
    async with asyncio.timeout(30):  # a guard only
        await engine.run()
    return engine


# ---- giving up ---------------------------------------------------------------------


async def test_giving_up_on_a_status_calls_the_errback_with_the_response() -> None:
    app, hits = hits_app()
    async with serve(app) as base:
        spider = Recorder(urls=[base + "/always-503"])
        engine = await crawl(spider, Settings(max_retries=2, **FAST))
    assert len(hits["/always-503"]) == 3
    (failure,) = spider.failures
    assert failure.request.url == base + "/always-503"
    assert failure.response is not None and failure.response.status == 503
    assert failure.exception is None
    assert failure.attempts == 3
    assert failure.reason == "HTTP 503"
    assert engine.stats.failed == 1
    assert engine.stats.errors["HTTP 503"] == 1
    assert engine.stats.retries == 2
    assert not spider.pages


@pytest.mark.parametrize("transport", TRANSPORTS)
async def test_giving_up_on_an_error_calls_the_errback_with_the_exception(transport: str) -> None:
    require_transport(transport)
    with socket.socket() as sock:  # a port nobody listens on
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    spider = Recorder(urls=[f"http://127.0.0.1:{port}/"])
    engine = await crawl(spider, Settings(max_retries=1, transport=transport, **FAST))
    (failure,) = spider.failures
    assert isinstance(failure.exception, TransportError)
    assert failure.exception.name == "ClientConnectorError"
    assert failure.response is None
    assert failure.attempts == 2
    assert engine.stats.failed == 1
    assert engine.stats.errors["ClientConnectorError"] == 1


# ---- a waiting retry holds nothing -------------------------------------------------


async def test_other_requests_flow_while_a_retry_waits() -> None:
    """One worker only: if the retry slept in place, nothing could pass it."""
    app, hits = hits_app()
    async with serve(app) as base:
        urls = [base + "/wait-then-ok"] + [f"{base}/ok/{i}" for i in range(10)]
        spider = Recorder(urls=urls)
        engine = await crawl(spider, Settings(concurrency=1, **FAST))
    first, second = hits["/wait-then-ok"]
    passed = [t for i in range(10) for t in hits[f"/ok/{i}"] if first < t < second]
    assert passed, "no request was fetched while the retry waited"
    assert second - first >= 2.0  # Retry-After honoured
    assert len(spider.pages) == 11
    assert engine.stats.failed == 0


# ---- overrides ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("meta", "expected_hits"),
    [({"max_retries": 0}, 1), ({"max_retries": 4}, 5), ({"dont_retry": True}, 1)],
)
async def test_meta_overrides_the_retry_budget(meta: dict[str, Any], expected_hits: int) -> None:
    app, hits = hits_app()
    async with serve(app) as base:
        spider = Recorder(urls=[base + "/always-503"], meta=meta)
        engine = await crawl(spider, Settings(max_retries=2, **FAST))
    assert len(hits["/always-503"]) == expected_hits
    assert engine.stats.failed == 1
    assert spider.failures[0].attempts == expected_hits


async def test_a_spider_sets_its_own_budget_through_custom_settings() -> None:
    class Stubborn(Recorder):
        custom_settings = {"max_retries": 5, **FAST}

    app, hits = hits_app()
    async with serve(app) as base:
        spider = Stubborn(urls=[base + "/always-503"])
        await crawl(spider, build_settings(Stubborn, {}))
    assert len(hits["/always-503"]) == 6


# ---- stale keep-alive connections --------------------------------------------------


class KeepAliveServer:
    """Keeps connections alive, but the first time a connection is reused it reads the
    request and hangs up without a word, as a server that timed the idle connection out
    does. ``/drop`` hangs up on every request."""

    def __init__(self) -> None:
        self.served = 0
        self.dropped = 0
        self.url = ""

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        requests = 0
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                length = 0
                for line in head.split(b"\r\n"):
                    if line.lower().startswith(b"content-length:"):
                        length = int(line.split(b":", 1)[1])
                await reader.readexactly(length)
                requests += 1
                stale = requests > 1 and not self.dropped
                if stale or head.split(b" ", 2)[1] == b"/drop":
                    self.dropped += 1
                    return
                self.served += 1
                writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
                await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            writer.close()
            with contextlib.suppress(ConnectionError):
                await writer.wait_closed()

    @contextlib.asynccontextmanager
    async def running(self) -> AsyncIterator[KeepAliveServer]:
        server = await asyncio.start_server(self.handle, "127.0.0.1", 0)
        self.url = f"http://127.0.0.1:{server.sockets[0].getsockname()[1]}"
        try:
            yield self
        finally:
            server.close()


@pytest.mark.parametrize("transport", TRANSPORTS)
@pytest.mark.parametrize("method", ["GET", "POST"])
async def test_a_stale_connection_is_retried_at_once_without_the_budget(
    method: str, transport: str
) -> None:
    require_transport(transport)
    async with KeepAliveServer().running() as server:
        urls = [f"{server.url}/{i}" for i in range(4)]
        spider = Recorder(urls=urls, method=method, meta={"max_retries": 0})
        engine = await crawl(spider, Settings(concurrency=1, transport=transport, **FAST))
    assert server.dropped == 1, "the test never hit a reused connection"
    assert len(spider.pages) == 4, [f.reason for f in spider.failures]
    assert engine.stats.failed == 0
    # GET: aiohttp retries inside the request; POST: the engine's one free retry.
    # libcurl resends any method itself when a reused connection died before a reply.
    inside = method == "GET" or transport == "curl"
    assert engine.stats.retries == (0 if inside else server.dropped)


@pytest.mark.parametrize("transport", TRANSPORTS)
@pytest.mark.parametrize("method", ["GET", "POST"])
async def test_the_free_stale_retry_happens_once_only(method: str, transport: str) -> None:
    require_transport(transport)
    async with KeepAliveServer().running() as server:
        # /first leaves a kept-alive connection for /drop to reuse
        urls = [f"{server.url}/first", f"{server.url}/drop"]
        spider = Recorder(urls=urls, method=method, meta={"max_retries": 0})
        engine = await crawl(spider, Settings(concurrency=1, transport=transport, **FAST))
    # the reused connection, then one free retry on a fresh one: whatever the method
    assert server.dropped == 2
    (failure,) = spider.failures
    assert failure.request.url.endswith("/drop")
    assert isinstance(failure.exception, TransportError)
    assert failure.exception.name == "ServerDisconnectedError"
    assert engine.stats.errors["ServerDisconnectedError"] == 1


@pytest.mark.parametrize("transport", TRANSPORTS)
async def test_a_disconnect_on_a_fresh_connection_is_not_free(transport: str) -> None:
    """POST: neither client resends it, and a fresh connection is not stale."""
    require_transport(transport)
    async with KeepAliveServer().running() as server:
        spider = Recorder(urls=[f"{server.url}/drop"], method="POST", meta={"max_retries": 0})
        engine = await crawl(spider, Settings(concurrency=1, transport=transport, **FAST))
    assert server.dropped == 1
    assert engine.stats.failed == 1
    assert engine.stats.retries == 0
