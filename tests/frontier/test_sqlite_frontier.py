"""The SQLite frontier on its own: order, dedup, leases, retries, durability, resume."""

from __future__ import annotations

import asyncio
import sqlite3
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import orjson
import pytest
from aiohttp import web
from sites import serve

from pooledcrawl import Engine, Request, Response, Settings, Spider, Stats, UsageError
from pooledcrawl.frontier import sqlite as sqlite_module
from pooledcrawl.frontier.sqlite import DB_NAME, SQLiteFrontier, job_exists, restore_stats
from pooledcrawl.items.jsonl import JsonLinesSink


class Shop(Spider):
    name = "shop"

    def parse(self, response: Response) -> Iterator[Any]:
        yield from ()

    def parse_item(self, response: Response) -> Iterator[Any]:
        yield from ()

    def on_error(self, failure: Any) -> None:
        return None


class OtherShop(Shop):
    name = "other"


def url(i: int) -> str:
    return f"http://example.com/p/{i}.html"


async def opened(path: Path, spider: Spider | None = None, **kw: Any) -> SQLiteFrontier:
    frontier = SQLiteFrontier(path, spider or Shop(), **kw)
    await frontier.open()
    return frontier


def drain(frontier: SQLiteFrontier, now: float = 0.0) -> list[Request]:
    out = []
    while (request := frontier.pop(now)) is not None:
        out.append(request)
    return out


def rows_on_disk(path: Path) -> int:
    with sqlite3.connect(path / DB_NAME) as db:
        (count,) = db.execute("SELECT count(*) FROM requests").fetchone()
    return int(count)


# ---- order and dedup ----------------------------------------------------------------


async def test_priority_order_fifo_within_a_level_across_the_window(tmp_path: Path) -> None:
    frontier = await opened(tmp_path, window=4)
    for i in range(30):
        assert frontier.push(Request(url(i), priority=i % 3), url(i))
    assert len(frontier) == 30
    got = [(r.priority, int(r.url.rsplit("/", 1)[1].split(".")[0])) for r in drain(frontier)]
    expected = sorted(((i % 3, i) for i in range(30)), key=lambda p: (-p[0], p[1]))
    assert got == expected
    assert frontier.exhausted() and len(frontier) == 0
    await frontier.close()


async def test_higher_priority_pushed_later_is_served_next(tmp_path: Path) -> None:
    frontier = await opened(tmp_path, window=2)
    for i in range(10):
        frontier.push(Request(url(i)), url(i))
    first = frontier.pop(0)
    assert first is not None and first.url == url(0)
    frontier.push(Request(url(99), priority=5), url(99))
    second = frontier.pop(0)
    assert second is not None and second.url == url(99)
    await frontier.close()


async def test_duplicates_filtered_and_dont_filter_marks_seen(tmp_path: Path) -> None:
    frontier = await opened(tmp_path)
    assert frontier.push(Request(url(1)), url(1))
    assert not frontier.push(Request(url(1)), url(1))
    assert frontier.push(Request(url(1), dont_filter=True), url(1))
    assert frontier.push(Request(url(2), dont_filter=True), url(2))
    assert not frontier.push(Request(url(2)), url(2))  # a start URL found again later
    assert frontier.push(Request(url(1), method="POST", body=b"x"), url(1))
    assert not frontier.push(Request(url(1), method="POST", body=b"x"), url(1))
    assert len(frontier) == 4
    await frontier.close()


async def test_dedup_after_the_cache_evicts_asks_the_table(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(sqlite_module, "_CACHE_GENERATION", 10)
    frontier = await opened(tmp_path)
    for i in range(100):
        assert frontier.push(Request(url(i)), url(i))
    # Long evicted from both cache generations: only the table knows them now.
    assert not any(frontier.push(Request(url(i)), url(i)) for i in range(100))
    assert frontier.push(Request(url(100)), url(100))
    assert len(frontier) == 101
    await frontier.close()


async def test_a_redirect_target_is_seen_once_and_across_a_restart(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(sqlite_module, "_CACHE_GENERATION", 10)
    frontier = await opened(tmp_path)
    assert frontier.push(Request(url(1)), url(1))
    assert not await frontier.add_seen(url(1))  # queued under its own URL
    assert await frontier.add_seen(url(2))
    assert not await frontier.add_seen(url(2))
    assert not frontier.push(Request(url(2)), url(2))
    for i in range(10, 60):  # evict url(1) and url(2) from the cache: the table answers
        frontier.push(Request(url(i)), url(i))
    assert not await frontier.add_seen(url(2))
    assert await frontier.add_seen(url(3))
    await frontier.close()
    frontier = await opened(tmp_path)
    assert not frontier.push(Request(url(3)), url(3))
    assert len(frontier) == 51  # url(1) and url(10)..url(59): add_seen queues nothing
    await frontier.close()


async def test_everything_a_request_carries_survives_a_restart(tmp_path: Path) -> None:
    spider = Shop()
    frontier = await opened(tmp_path, spider)
    original = Request(
        url(7),
        spider.parse_item,
        method="POST",
        headers={"X-Token": "t"},
        body=b"a=1&b=\xff",
        meta={"page": 3, "tags": ["x"]},
        cb_kwargs={"category": "books"},
        priority=-4,
        dont_filter=True,
        errback=spider.on_error,
    )
    original.depth = 2
    original.attempts, original.retries = 2, 1
    for i in range(3):  # past the window, so the row is read back from disk
        frontier.push(Request(url(100 + i), priority=-4), url(100 + i))
    frontier.push(original, url(7))
    await frontier.close()

    spider2 = Shop()
    frontier = await opened(tmp_path, spider2, window=1)
    got = next(r for r in drain(frontier) if r.url == url(7))
    assert got is not original
    assert got.callback == spider2.parse_item and got.errback == spider2.on_error
    assert (got.method, got.headers, got.body) == ("POST", {"X-Token": "t"}, b"a=1&b=\xff")
    assert got.meta == {"page": 3, "tags": ["x"]} and got.cb_kwargs == {"category": "books"}
    assert (got.priority, got.depth, got.dont_filter) == (-4, 2, True)
    assert (got.attempts, got.retries) == (2, 1)
    await frontier.close()


# ---- leases ---------------------------------------------------------------------------


async def test_leases_not_acked_are_pending_again_after_a_restart(tmp_path: Path) -> None:
    frontier = await opened(tmp_path, window=3)
    for i in range(10):
        frontier.push(Request(url(i)), url(i))
    popped = [frontier.pop(0) for _ in range(5)]
    for request in popped[:3]:
        assert request is not None
        frontier.ack(request)
    await frontier.checkpoint()
    assert rows_on_disk(tmp_path) == 7
    # A crash: nothing more is committed (the process dies, the file stays).
    frontier._release()

    frontier = await opened(tmp_path)
    assert frontier.resumed and len(frontier) == 7
    assert [r.url for r in drain(frontier)] == [url(i) for i in (3, 4, 5, 6, 7, 8, 9)]
    await frontier.close()


async def test_acks_commit_only_after_before_ack_and_late_acks_wait(tmp_path: Path) -> None:
    frontier = await opened(tmp_path)
    for i in range(4):
        frontier.push(Request(url(i)), url(i))
    a, b, c, d = drain(frontier)
    await frontier.checkpoint()
    on_disk: list[int] = []

    async def flush() -> None:
        on_disk.append(rows_on_disk(tmp_path))  # nothing is deleted before the flush
        frontier.ack(c)  # completes while the sinks flush: its items may not be out
        await asyncio.sleep(0)

    frontier.before_ack = flush
    frontier.ack(a)
    frontier.ack(b)
    await frontier.checkpoint()
    assert on_disk == [4]
    assert rows_on_disk(tmp_path) == 2  # a and b; c waits for the next checkpoint
    await frontier.checkpoint()
    assert on_disk == [4, 2] and rows_on_disk(tmp_path) == 1
    frontier.ack(d)
    await frontier.close()
    assert rows_on_disk(tmp_path) == 0


async def test_a_failing_flush_commits_no_acks(tmp_path: Path) -> None:
    frontier = await opened(tmp_path)
    frontier.push(Request(url(1)), url(1))
    request = frontier.pop(0)
    assert request is not None

    async def broken() -> None:
        raise OSError("disk full")

    frontier.before_ack = broken
    frontier.ack(request)
    with pytest.raises(OSError):
        await frontier.checkpoint()
    await frontier.close()  # logs; the ack stays uncommitted
    assert rows_on_disk(tmp_path) == 1


async def test_ack_batch_wakes_the_checkpointer(tmp_path: Path) -> None:
    frontier = await opened(tmp_path, ack_batch=4, checkpoint_interval=60.0)
    flushed = asyncio.Event()

    async def flush() -> None:
        flushed.set()

    frontier.before_ack = flush
    for i in range(4):
        frontier.push(Request(url(i)), url(i))
    for request in drain(frontier):
        frontier.ack(request)
    async with asyncio.timeout(10):
        await flushed.wait()
    for _ in range(500):  # the commit follows the flush without awaiting
        if not rows_on_disk(tmp_path):
            break
        await asyncio.sleep(0.01)
    assert rows_on_disk(tmp_path) == 0
    await frontier.close()


# ---- retries ------------------------------------------------------------------------


async def test_retry_keeps_its_lease_and_its_delay_across_a_restart(tmp_path: Path) -> None:
    frontier = await opened(tmp_path)
    frontier.push(Request(url(1)), url(1))
    request = frontier.pop(0)
    assert request is not None
    request.attempts = 1
    now = time.monotonic()
    frontier.push_later(request, now + 30.0)
    frontier.ack(request)  # the engine acks the failed attempt: ignored
    assert frontier.pop(now) is None and not frontier.exhausted()
    assert frontier.next_due() == pytest.approx(now + 30.0)
    await frontier.close()
    assert rows_on_disk(tmp_path) == 1

    frontier = await opened(tmp_path)
    assert frontier.pop(time.monotonic()) is None  # still not due after the restart
    due = frontier.next_due()
    assert due is not None and 25.0 < due - time.monotonic() <= 30.0
    retried = frontier.pop(due)
    assert retried is not None and retried.attempts == 1
    frontier.ack(retried)
    await frontier.close()
    assert rows_on_disk(tmp_path) == 0


# ---- what cannot be stored ----------------------------------------------------------


async def test_callbacks_must_be_spider_methods(tmp_path: Path) -> None:
    spider = Shop()
    frontier = await opened(tmp_path, spider)
    with pytest.raises(UsageError, match="must be methods of Shop"):
        frontier.push(Request(url(1), lambda r: None), url(1))
    with pytest.raises(UsageError, match="errback"):
        frontier.push(Request(url(2), errback=OtherShop().on_error), url(2))
    with pytest.raises(UsageError, match="JSON"):
        frontier.push(Request(url(3), meta={"when": object()}), url(3))
    with pytest.raises(UsageError, match="priority"):
        frontier.push(Request(url(4), priority=10**9), url(4))
    # None of them was marked seen or queued.
    assert frontier.push(Request(url(1), spider.parse_item), url(1))
    assert len(frontier) == 1
    await frontier.close()


async def test_a_callback_gone_from_the_spider_is_a_usage_error(tmp_path: Path) -> None:
    spider = Shop()
    frontier = await opened(tmp_path, spider, window=1)
    frontier.push(Request(url(0)), url(0))
    frontier.push(Request(url(1), spider.parse_item), url(1))
    await frontier.close()

    class Renamed(Spider):
        name = "shop"

        def parse(self, response: Response) -> None:
            return None

    frontier = await opened(tmp_path, Renamed(), window=1)
    assert frontier.pop(0) is not None
    with pytest.raises(UsageError, match="parse_item"):
        frontier.pop(0)
    await frontier.close()


# ---- job dirs ----------------------------------------------------------------------------


async def test_another_spider_is_refused_and_fresh_starts_over(tmp_path: Path) -> None:
    frontier = await opened(tmp_path)
    frontier.push(Request(url(1)), url(1))
    await frontier.close()
    assert job_exists(tmp_path)
    with pytest.raises(UsageError, match="belongs to spider 'shop', not 'other'"):
        await opened(tmp_path, OtherShop())
    frontier = await opened(tmp_path, OtherShop(), fresh=True)
    assert not frontier.resumed and len(frontier) == 0
    assert frontier.push(Request(url(1)), url(1))
    await frontier.close()


async def test_a_job_dir_in_use_is_refused(tmp_path: Path) -> None:
    first = await opened(tmp_path)
    with pytest.raises(UsageError, match="in use by another running crawl"):
        await opened(tmp_path)
    await first.close()
    second = await opened(tmp_path)
    await second.close()


async def test_spider_state_and_stats_carry_over(tmp_path: Path) -> None:
    spider, stats = Shop(), Stats()
    frontier = SQLiteFrontier(tmp_path, spider)
    frontier.stats = stats
    await frontier.open()
    spider.state["cursor"] = "abc"
    stats.pages, stats.items, stats.requests = 10, 7, 12
    stats.status_counts[200] += 10
    stats.errors["HTTP 500"] += 2
    stats.extra["offsite_filtered"] = 3
    stats.extra["robots"] = {"fetched": 1}
    await frontier.close()

    spider2, stats2 = Shop(), Stats()
    frontier = SQLiteFrontier(tmp_path, spider2)
    frontier.stats = stats2
    await frontier.open()
    assert spider2.state == {"cursor": "abc"}
    assert (stats2.pages, stats2.items, stats2.requests) == (10, 7, 12)
    assert stats2.status_counts == {200: 10} and stats2.errors == {"HTTP 500": 2}
    assert stats2.extra["offsite_filtered"] == 3 and stats2.extra["robots"] == {"fetched": 1}
    assert stats2.extra["jobdir"]["run"] == 2 and stats2.extra["jobdir"]["resumed"]
    await frontier.close()


def test_restore_stats_adds_counters() -> None:
    stats = Stats()
    stats.pages = 2
    stats.extra["robots"] = {"fetched": 1}
    restore_stats(stats, {"pages": 3, "max_inflight": 9, "robots": {"fetched": 2, "x": 1}})
    assert stats.pages == 5 and stats.max_inflight == 9
    assert stats.extra["robots"] == {"fetched": 3, "x": 1}


async def test_reseeding_a_resumed_job_skips_start_urls_already_seen(tmp_path: Path) -> None:
    frontier = await opened(tmp_path)
    assert await frontier.claim_seeding()
    frontier.push(Request(url(0), dont_filter=True), url(0))
    frontier.seeding_done()
    await frontier.close()

    frontier = await opened(tmp_path)
    assert await frontier.claim_seeding()
    assert not frontier.push(Request(url(0), dont_filter=True), url(0))
    assert frontier.push(Request(url(1), dont_filter=True), url(1))  # new start URL
    frontier.seeding_done()
    later = Request(url(0), dont_filter=True)
    later.depth = 1  # from a callback: dont_filter means what it says
    assert frontier.push(later, url(0))
    await frontier.close()


# ---- through the engine -------------------------------------------------------------------


class SlowSite:
    """``/p/N``: pages linking on; ``/slow`` never finishes in time."""

    def __init__(self) -> None:
        self.hits: dict[str, int] = {}
        self.slow_started = asyncio.Event()

    def app(self) -> web.Application:
        async def page(request: web.Request) -> web.Response:
            self.hits[request.path] = self.hits.get(request.path, 0) + 1
            if request.path == "/slow":
                self.slow_started.set()
                await asyncio.sleep(30)
            return web.Response(
                text='<a href="/slow">slow</a> <a href="/p/2">2</a>', content_type="text/html"
            )

        app = web.Application()
        app.router.add_get("/{tail:.*}", page)
        return app


class LinkSpider(Spider):
    name = "links"

    def parse(self, response: Response) -> Iterator[Any]:
        yield {"url": response.url}
        yield from response.follow_all(css="a")


@pytest.fixture
async def slow_site() -> AsyncIterator[tuple[str, SlowSite]]:
    site = SlowSite()
    async with serve(site.app()) as base:
        yield base, site


async def test_a_request_cancelled_at_shutdown_is_not_acked(
    tmp_path: Path, slow_site: tuple[str, SlowSite]
) -> None:
    base, site = slow_site
    jobdir, out = tmp_path / "job", tmp_path / "items.jsonl"

    async def crawl() -> Stats:
        spider = LinkSpider(start_urls=[f"{base}/p/1"])
        settings = Settings(concurrency=4, shutdown_grace=0.2, timeout_total=60)
        frontier = SQLiteFrontier(jobdir, spider)
        engine = Engine(spider, settings, sinks=[JsonLinesSink(str(out))], frontier=frontier)
        assert frontier.stats is engine.stats  # bound by the engine (ext.Bound)
        task = asyncio.create_task(engine.run())
        async with asyncio.timeout(20):
            await site.slow_started.wait()
        engine.request_stop("test")
        return await task

    stats = await crawl()
    assert stats.pages == 2  # /p/1 and /p/2; /slow was cancelled by the grace period
    frontier = await opened(jobdir, LinkSpider())
    pending = drain(frontier)
    assert [r.url for r in pending] == [f"{base}/slow"]  # not acked: fetched again next run
    await frontier.close()
    items = [orjson.loads(line)["url"] for line in out.read_bytes().splitlines()]
    assert sorted(items) == [f"{base}/p/1", f"{base}/p/2"]


async def test_a_callback_that_is_not_a_method_stops_the_crawl_with_a_usage_error(
    tmp_path: Path, slow_site: tuple[str, SlowSite]
) -> None:
    base, _ = slow_site

    class Lambda(Spider):
        name = "lambda"

        def parse(self, response: Response) -> Iterator[Any]:
            yield Request(f"{base}/p/9", callback=lambda r: None)

    spider = Lambda(start_urls=[f"{base}/p/1"])
    frontier = SQLiteFrontier(tmp_path, spider)
    engine = Engine(spider, Settings(concurrency=2), frontier=frontier)
    assert frontier.stats is engine.stats  # bound by the engine (ext.Bound)
    with pytest.raises(UsageError, match="must be methods of Lambda"):
        await engine.run()
    # The page whose callback failed was not acked: fixing the spider and re-running
    # fetches it again.
    frontier = await opened(tmp_path, spider)
    assert [r.url for r in drain(frontier)] == [f"{base}/p/1"]
    await frontier.close()
