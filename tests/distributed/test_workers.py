"""Worker processes sharing one job on the real Redis: every page crawled across their
feeds, a worker killed with -9 whose leases the others take over, seeds enqueued once
per job, and ``crawl --workers N`` merging feeds and stats."""

from __future__ import annotations

import os
import signal
import sys
from collections import Counter
from pathlib import Path

import orjson
import redis.asyncio as aioredis
from aiohttp import web
from dist_helpers import (
    SPIDER,
    Procs,
    all_pages,
    feed_urls,
    line_count,
    read_stats,
    slow_graph,
    wait_for,
    worker_argv,
)
from sites import link_graph_app, link_graph_page, serve

from pooledcrawl.distributed.keys import GROUP, JobKeys
from pooledcrawl.distributed.worker import job_status, worker_command

CONCURRENCY = "64"


async def test_two_workers_crawl_every_page(
    redis_url: str, job: str, procs: Procs, tmp_path: Path
) -> None:
    pages = 3000
    feeds = [tmp_path / "a.jsonl", tmp_path / "b.jsonl"]
    async with serve(link_graph_app(pages)) as base:
        for feed in feeds:
            await procs.start(worker_argv(base, redis_url, job, feed, "--concurrency", CONCURRENCY))
        assert await procs.wait(60) == [0, 0], procs.log(0) + procs.log(1)
    urls = [feed_urls(feed) for feed in feeds]
    assert set(urls[0]) | set(urls[1]) == all_pages(base, pages)
    assert urls[0] and urls[1], "both workers took part"
    stats = [read_stats(feed) for feed in feeds]
    duplicates = len(urls[0]) + len(urls[1]) - pages
    # at-least-once: a page is crawled twice only if its lease moved to another
    # worker, so never more than were in flight at once
    assert duplicates <= sum(s["max_inflight"] for s in stats)
    assert sum(s["pages"] for s in stats) == pages + duplicates
    status = await job_status(redis_url, job)
    assert status["pending"] == status["leased"] == status["delayed"] == 0
    assert status["done"] == pages + duplicates
    assert status["workers_alive"] == 0  # each one left the job on exit


async def test_killed_worker_leases_are_reclaimed(
    redis_url: str, job: str, procs: Procs, tmp_path: Path
) -> None:
    pages = 3000
    feeds = [tmp_path / f"w{i}.jsonl" for i in range(3)]
    async with serve(link_graph_app(pages)) as base:
        for feed in feeds:
            argv = worker_argv(base, redis_url, job, feed, "--concurrency", CONCURRENCY)
            await procs.start([*argv, "-s", "lease_timeout=3"])
        await wait_for(lambda: line_count(feeds) >= 600, 60, "600 items")
        # kill the busiest worker: it certainly holds leases
        victim = max(range(3), key=lambda i: line_count([feeds[i]]))
        assert procs.procs[victim].returncode is None, "the crawl ended too soon"
        leases = await leases_by_worker(redis_url, job)
        os.kill(procs.procs[victim].pid, signal.SIGKILL)
        survivors = [i for i in range(3) if i != victim]
        codes = await procs.wait(60, survivors)
        assert codes == [0, 0], "\n".join(procs.log(i) for i in survivors)
    assert await procs.procs[victim].wait() == -signal.SIGKILL
    urls = [u for feed in feeds for u in feed_urls(feed)]
    assert set(urls) == all_pages(base, pages)  # every page, in some worker's feed
    stats = [read_stats(feeds[i]) for i in survivors]
    reclaimed = sum(s["leases_reclaimed"] for s in stats)
    assert reclaimed > 0, f"leases before the kill: {leases}, victim {victim}"
    # a page in two feeds was written by the dead worker, whose ack never came
    duplicates = len(urls) - len(set(urls))
    assert duplicates <= reclaimed
    status = await job_status(redis_url, job)
    assert status["pending"] == status["leased"] == 0


async def leases_by_worker(redis_url: str, job: str) -> dict[str, int]:
    client = aioredis.from_url(redis_url)
    try:
        info = await client.xpending(JobKeys(job).stream(0), GROUP)
        return {c["name"].decode(): c["pending"] for c in info["consumers"]}
    finally:
        await client.aclose()


def counting_graph(pages: int, hits: Counter[int]) -> web.Application:
    async def page(request: web.Request) -> web.Response:
        i = int(request.match_info["i"])
        hits[i] += 1
        return web.Response(text=link_graph_page(i, pages), content_type="text/html")

    app = web.Application()
    app.router.add_get(r"/p/{i:\d+}.html", page)
    return app


async def test_seeds_once_per_job_and_crawl_workers_merges(
    redis_url: str, job: str, procs: Procs, tmp_path: Path
) -> None:
    pages = 300
    hits: Counter[int] = Counter()
    out, stats_path = tmp_path / "items.jsonl", tmp_path / "stats.json"
    async with serve(counting_graph(pages, hits)) as base:
        crawl = [
            *(sys.executable, "-m", "pooledcrawl", "crawl", SPIDER),
            *("-a", f"start={base}/p/0.html", "--frontier", redis_url, "--job", job),
            *("--workers", "3", "-O", str(out), "--stats", str(stats_path)),
            *("--concurrency", "8", "--log-level", "WARNING"),
            *("--report", str(tmp_path / "report.html")),
        ]
        await procs.start(crawl)
        assert await procs.wait(60) == [0], procs.log(0)
        # the start URL is fetched once, though all three workers ran start()'s code
        # path and the seed is dont_filter (so dedup would not have stopped a second)
        assert hits[0] == 1
        assert set(hits) == set(range(pages))
        urls = feed_urls(out)
        assert set(urls) == all_pages(base, pages)
        assert len(urls) == sum(hits.values())  # one merged feed, one line per fetch
        assert not parts_left(tmp_path)  # the parts were merged
        merged = orjson.loads(stats_path.read_bytes())
        assert merged["workers"] == 3
        assert merged["pages"] == len(urls)
        # one report, from the merged stats
        report = (tmp_path / "report.html").read_text()
        assert f"{len(urls):,}" in report and "<svg" in report

        # joining a finished job: nothing to seed, nothing to do
        late = tmp_path / "late.jsonl"
        await procs.start(worker_argv(base, redis_url, job, late))
        assert await procs.wait(30, [1]) == [0], procs.log(1)
    assert hits[0] == 1
    assert feed_urls(late) == []


async def test_ctrl_c_stops_local_workers_and_the_job_resumes(
    redis_url: str, job: str, procs: Procs, tmp_path: Path
) -> None:
    pages = 300
    out = tmp_path / "items.jsonl"
    async with serve(slow_graph(pages, 0.02)) as base:
        crawl = [
            *(sys.executable, "-m", "pooledcrawl", "crawl", SPIDER),
            *("-a", f"start={base}/p/0.html", "--frontier", redis_url, "--job", job),
            *("--workers", "2", "-o", str(out), "--concurrency", "2", "--log-level", "WARNING"),
        ]
        stats_path = tmp_path / "stats.json"
        first = await procs.start([*crawl, "--stats", str(stats_path)])
        await wait_for(lambda: line_count(parts_left(tmp_path)) >= 20, 30, "20 items")
        first.send_signal(signal.SIGINT)  # as a Ctrl-C on the terminal reaches the parent
        assert await procs.wait(30, [0]) == [130], procs.log(0)
        assert "finishing in-flight requests" in procs.log(0)
        assert not parts_left(tmp_path)
        assert orjson.loads(stats_path.read_bytes())["finish_reason"] != "finished"
        stopped = feed_urls(out)
        assert 20 <= len(stopped) < pages
        status = await job_status(redis_url, job)
        # every claimed request went back to the job: none waits for a lease timeout
        assert status["leased"] == 0 and status["pending"] > 0
        assert status["workers_alive"] == 0

        await procs.start(crawl)  # the same command resumes the job
        assert await procs.wait(60, [1]) == [0], procs.log(1)
    urls = feed_urls(out)  # -o appends: both runs' items
    assert set(urls) == all_pages(base, pages)
    assert len(urls) - pages <= 4  # at most what was in flight at the stop


def parts_left(folder: Path) -> list[Path]:
    return list(folder.glob("items.w*.jsonl"))


def test_local_workers_get_their_own_feed_and_pg_workers(tmp_path: Path) -> None:
    argv = ["spider.py", "--frontier", "redis://127.0.0.1:6379/0", "--job", "j"]
    outputs = [(str(tmp_path / "items.jsonl"), True), ("postgresql://h/db?table=t", False)]
    command, parts = worker_command(argv, 1, 4, outputs)
    assert command[3:6] == ["worker", "-s", "pg_workers=4"]
    assert command[6:] == [
        *argv,
        *("-O", str(tmp_path / "items.w1.jsonl")),
        *("-o", "postgresql://h/db?table=t"),  # a database is shared, not split
    ]
    assert parts == [(str(tmp_path / "items.jsonl"), str(tmp_path / "items.w1.jsonl"), True)]
    # a pg_workers the user gave comes later on the command line, so it wins
    command, _ = worker_command([*argv, "-s", "pg_workers=9"], 0, 4, [])
    assert command.index("pg_workers=4") < command.index("pg_workers=9")


async def test_worker_without_redis_is_a_usage_error(procs: Procs, tmp_path: Path) -> None:
    base = "http://127.0.0.1:9"
    await procs.start(worker_argv(base, "redis://127.0.0.1:1/0", "nojob", tmp_path / "x.jsonl"))
    assert await procs.wait(30) == [2]
    log = procs.log(0)
    assert "cannot reach the Redis frontier" in log
    assert "Traceback" not in log
