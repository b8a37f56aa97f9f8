"""Shutdown on signals, with real ``pooledcrawl crawl`` subprocesses against a local
endless site: SIGTERM with its grace period (kept or cut short), and a second signal
that exits at once. The single-SIGINT path is tested in tests/cli."""

from __future__ import annotations

import asyncio
import contextlib
import signal
import sys
import time
from collections import defaultdict
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson
import pytest
from aiohttp import web
from sites import serve

pytestmark = pytest.mark.timeout(90)

SPIDER = '''
from pooledcrawl import Request, Spider


class Endless(Spider):
    """An endless binary tree of pages, 50 items each; ``first`` is fetched first."""

    base = ""
    first = ""

    async def start(self):
        yield Request(self.base + self.first, callback=self.parse_first)
        yield Request(self.base + "/page/0")

    def parse(self, response):
        i = int(response.url.rsplit("/", 1)[1])
        for k in range(50):
            yield {"page": i, "k": k, "pad": "x" * 200}
        for j in (2 * i + 1, 2 * i + 2):
            yield Request(f"{self.base}/page/{j}")

    def parse_first(self, response):
        yield {"first": self.first}
'''

CONCURRENCY = 4


@dataclass
class Site:
    url: str = ""
    pages: list[float] = field(default_factory=list)
    first_started: asyncio.Event = field(default_factory=asyncio.Event)
    slow_done: float | None = None


@contextlib.asynccontextmanager
async def endless_site() -> AsyncIterator[Site]:
    site = Site()

    async def page(request: web.Request) -> web.Response:
        site.pages.append(time.monotonic())
        await asyncio.sleep(0.02)
        return web.Response(text="<html>page</html>", content_type="text/html")

    async def slow(request: web.Request) -> web.Response:
        site.first_started.set()
        await asyncio.sleep(3.0)
        site.slow_done = time.monotonic()
        return web.Response(text="<html>slow</html>", content_type="text/html")

    async def hang(request: web.Request) -> web.Response:
        site.first_started.set()
        await asyncio.sleep(3600)  # until the client goes away or the server stops
        raise AssertionError("unreachable")

    app = web.Application()
    app.router.add_get(r"/page/{i:\d+}", page)
    app.router.add_get("/slow", slow)
    app.router.add_get("/hang", hang)
    async with serve(app) as url:
        site.url = url
        yield site


@dataclass
class Crawl:
    proc: asyncio.subprocess.Process
    out: Path
    stats: Path
    stderr: list[str] = field(default_factory=list)
    lines_seen: defaultdict[str, asyncio.Event] = field(
        default_factory=lambda: defaultdict(asyncio.Event)
    )

    async def read_stderr(self) -> None:
        assert self.proc.stderr is not None
        async for raw in self.proc.stderr:
            line = raw.decode(errors="replace")
            self.stderr.append(line)
            for marker, event in self.lines_seen.items():
                if marker in line:
                    event.set()

    def items(self) -> list[dict[str, Any]]:
        data = self.out.read_bytes()
        assert not data or data.endswith(b"\n"), "the feed ends mid-line"
        return [orjson.loads(line) for line in data.splitlines()]  # each line parses

    def stats_json(self) -> dict[str, Any]:
        result: dict[str, Any] = orjson.loads(self.stats.read_bytes())
        return result


async def start_crawl(tmp_path: Path, site: Site, first: str, grace: float) -> Crawl:
    spider = tmp_path / "endless.py"
    spider.write_text(SPIDER)
    out, stats = tmp_path / "items.jsonl", tmp_path / "stats.json"
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "pooledcrawl",
        "crawl",
        str(spider),
        "-a",
        f"base={site.url}",
        "-a",
        f"first={first}",
        "-O",
        str(out),
        "--stats",
        str(stats),
        "--concurrency",
        str(CONCURRENCY),
        "-s",
        f"shutdown_grace={grace}",
        "-s",
        "autothrottle=false",
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.PIPE,
    )
    return Crawl(proc, out, stats)


async def running(crawl: Crawl, site: Site) -> None:
    """Until the first request is in flight and items are on disk."""
    async with asyncio.timeout(30):
        await site.first_started.wait()
        for _ in range(600):
            if len(site.pages) >= 20 and crawl.out.exists() and crawl.out.stat().st_size:
                return
            await asyncio.sleep(0.05)


async def finish(crawl: Crawl, reader: asyncio.Task[None]) -> int:
    try:
        async with asyncio.timeout(30):  # a guard: without it a hung crawl hangs the test
            code = await crawl.proc.wait()
            await reader
    except TimeoutError:
        crawl.proc.kill()
        await crawl.proc.wait()
        raise
    return code


async def test_sigterm_lets_in_flight_requests_finish_then_exits_143(tmp_path: Path) -> None:
    async with endless_site() as site:
        crawl = await start_crawl(tmp_path, site, "/slow", grace=30.0)
        reader = asyncio.create_task(crawl.read_stderr())
        await running(crawl, site)
        crawl.proc.send_signal(signal.SIGTERM)
        signalled, pages_then = time.monotonic(), len(site.pages)
        code = await finish(crawl, reader)
    assert code == 143, "".join(crawl.stderr)
    # the slow request was in flight at the signal, and it was waited for
    assert site.slow_done is not None and site.slow_done > signalled
    items = crawl.items()
    assert {"first": "/slow"} in items
    # no new work after the signal: only what was already in flight
    assert len(site.pages) - pages_then <= CONCURRENCY
    stats = crawl.stats_json()
    assert stats["finish_reason"] == "shutdown (SIGTERM)"
    assert stats["items"] == len(items)  # every item counted was flushed


async def test_in_flight_requests_past_the_grace_period_are_cut_off(tmp_path: Path) -> None:
    async with endless_site() as site:
        crawl = await start_crawl(tmp_path, site, "/slow", grace=0.5)
        reader = asyncio.create_task(crawl.read_stderr())
        await running(crawl, site)
        crawl.proc.send_signal(signal.SIGTERM)
        code = await finish(crawl, reader)
    assert code == 143, "".join(crawl.stderr)
    items = crawl.items()
    # /slow answers 3 s after it started: the 0.5 s grace ended its wait (with a 30 s
    # grace, the test above sees its item)
    assert items and {"first": "/slow"} not in items
    stats = crawl.stats_json()
    assert stats["finish_reason"] == "shutdown (SIGTERM)"
    assert stats["items"] == len(items)


async def test_a_second_signal_exits_at_once_with_a_valid_feed(tmp_path: Path) -> None:
    async with endless_site() as site:
        crawl = await start_crawl(tmp_path, site, "/hang", grace=600.0)
        warned = crawl.lines_seen["press Ctrl-C again"]
        reader = asyncio.create_task(crawl.read_stderr())
        await running(crawl, site)
        crawl.proc.send_signal(signal.SIGINT)
        async with asyncio.timeout(20):
            await warned.wait()
        crawl.proc.send_signal(signal.SIGINT)
        code = await finish(crawl, reader)  # long before the 600 s grace
    assert code == 130, "".join(crawl.stderr)
    items = crawl.items()
    assert len(items) >= 20 * 50 // 2  # plenty were in the buffer and on disk
    stats = crawl.stats_json()
    assert stats["finish_reason"] == "shutdown (SIGINT)"
    assert stats["items"] == len(items)  # the buffer was flushed before exiting
