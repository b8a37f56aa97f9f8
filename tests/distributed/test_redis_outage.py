"""Redis stopped and started again in the middle of a crawl (a redis-server of the
test's own, with an append-only file): the workers pause, reconnect and finish."""

from __future__ import annotations

import asyncio
from pathlib import Path

from dist_helpers import (
    Procs,
    RedisServer,
    all_pages,
    feed_urls,
    line_count,
    slow_graph,
    wait_for,
    worker_argv,
)
from sites import serve


async def test_crawl_survives_a_redis_restart(
    redis_server: RedisServer, procs: Procs, tmp_path: Path
) -> None:
    pages = 1500
    feeds = [tmp_path / "a.jsonl", tmp_path / "b.jsonl"]
    async with serve(slow_graph(pages, 0.01)) as base:
        for feed in feeds:
            argv = worker_argv(base, redis_server.url, "outage", feed, "--concurrency", "16")
            await procs.start(argv)
        await wait_for(lambda: line_count(feeds) >= 300, 60, "300 items")
        await asyncio.to_thread(redis_server.shutdown)  # SHUTDOWN writes the AOF
        assert all(p.returncode is None for p in procs.procs), "the crawl ended too soon"
        done_before = line_count(feeds)
        await asyncio.sleep(2.0)  # longer than a shared-limit grant lives (2 s)
        assert all(p.returncode is None for p in procs.procs), "a worker gave up"
        await asyncio.to_thread(redis_server.start)
        codes = await procs.wait(60)
    logs = [procs.log(0), procs.log(1)]
    assert codes == [0, 0], "\n".join(logs)
    assert done_before < pages
    urls = [u for feed in feeds for u in feed_urls(feed)]
    assert set(urls) == all_pages(base, pages)
    assert all("Redis unreachable" in log for log in logs), logs
    assert all("Redis is back" in log for log in logs), logs
    assert not any("Traceback" in log for log in logs), logs
