"""The progress display: a plain log line off a terminal, a live table on one."""

from __future__ import annotations

import asyncio
import io
import logging
from collections.abc import Iterator
from typing import Any

import pytest
from aiohttp import web
from sites import link_graph_app, serve

from pooledcrawl import Response, Spider
from pooledcrawl.engine.dispatcher import Dispatcher
from pooledcrawl.engine.engine import Engine
from pooledcrawl.engine.progress import Progress
from pooledcrawl.metrics import Timing
from pooledcrawl.settings import Settings


class Graph(Spider):
    name = "graph"

    def parse(self, response: Response) -> Iterator[Any]:
        yield {"url": response.url}
        yield from response.follow_all(css="a")


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def _engine(clock: FakeClock, interval: float = 10.0) -> Engine:
    engine = Engine(Graph(), Settings(progress_interval=interval), clock=clock)
    engine.dispatcher = Dispatcher(engine.frontier, lambda key: _Fixed(8), clock)
    engine.metrics.started = clock()
    return engine


class _Fixed:
    def limit(self) -> int:
        return 8

    def ready_at(self) -> float:
        return 0.0

    def __init__(self, _limit: int) -> None: ...
    def on_send(self, now: float) -> None: ...
    def on_response(self, *args: Any) -> None: ...
    def on_error(self, *args: Any) -> None: ...
    def snapshot(self) -> dict[str, Any]:
        return {"concurrency": 8, "rate": None}


async def test_off_a_terminal_one_line_every_interval(caplog: pytest.LogCaptureFixture) -> None:
    clock = FakeClock()
    engine = _engine(clock, interval=10.0)
    progress = Progress(engine, live=False, clock=clock)
    assert progress.period == 1.0
    with caplog.at_level(logging.INFO, "pooledcrawl.engine"), progress:
        for second in range(1, 26):
            clock.now += 1
            engine.stats.pages = second * 30
            progress.tick()
    lines = [r.getMessage() for r in caplog.records if r.getMessage().startswith("pages ")]
    assert lines == [
        "pages 300 (30/s)  items 0  in flight 0  pending 0  429s 0  errors 0",
        "pages 600 (30/s)  items 0  in flight 0  pending 0  429s 0  errors 0",
    ]


async def test_on_a_terminal_a_live_table_with_busy_domains() -> None:
    clock = FakeClock()
    engine = _engine(clock)
    slot = engine.dispatcher.slot_for("http://busy.example/a")
    slot.inflight = 5
    engine.dispatcher.slot_for("http://idle.example/a")  # nothing in flight: no row
    for _ in range(40):
        engine.metrics.on_response(
            "busy.example", clock.now, 200, 0.002, 0.05, Timing(body=0.05, reused=1), 5, 5
        )
    engine.stats.pages, engine.stats.items = 40, 12
    engine.stats.status_counts[429] += 3
    stream = io.StringIO()
    with Progress(engine, live=True, clock=clock, stream=stream) as progress:
        assert progress.period == 0.5
        clock.now += 2
        progress.tick()
    text = stream.getvalue()
    assert "pages 40" in text and "items 12" in text and "429s 3" in text
    row = next(line for line in text.splitlines() if "busy.example" in line)
    cells = row.split()
    assert cells[:3] == ["busy.example", "5", "8"]  # domain, in flight, limit
    assert "40" in cells[3:]  # its pages
    assert "idle.example" not in text


async def test_a_crawl_logs_progress_and_samples_items(caplog: pytest.LogCaptureFixture) -> None:
    app = link_graph_app(60)

    async def slow(request: web.Request, handler: Any) -> web.StreamResponse:
        await asyncio.sleep(0.02)
        response: web.StreamResponse = await handler(request)
        return response

    app.middlewares.append(web.middleware(slow))
    async with serve(app) as base:
        Graph.start_urls = [f"{base}/p/0.html"]
        settings = Settings(concurrency=2, progress_interval=0.2, autothrottle=False)
        with caplog.at_level(logging.INFO, "pooledcrawl.engine"):
            stats = await Engine(Graph(), settings).run()
    assert stats.pages == 60
    assert any(r.getMessage().startswith("pages ") for r in caplog.records)
    timeline = stats.to_dict()["timeline"]
    items = timeline["columns"].index("items")
    assert max(row[items] for row in timeline["rows"]) == 60  # sampled at the end too
