"""The signal bus, extensions, and the life-cycle signals of real crawls."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson
import pytest
from sites import link_graph_app, serve

from pooledcrawl import DropItem, Engine, Request, Response, Settings, Spider
from pooledcrawl import signals as sig
from pooledcrawl.items.jsonl import JsonLinesSink
from pooledcrawl.signals import SignalBus


class LinkSpider(Spider):
    def parse(self, response: Response) -> Iterator[Any]:
        yield {"url": response.url}
        yield from response.follow_all(css="a")


class Recorder:
    """Counts every signal it receives; kept on the class so tests can read it."""

    last: Recorder | None = None

    def __init__(self, crawler: Engine) -> None:
        self.counts: Counter[str] = Counter()
        self.reasons: list[str] = []
        self.dropped: Counter[str] = Counter()
        for signal in sig.ALL_SIGNALS:
            crawler.signals.connect(self._receiver(signal.name), signal)
        crawler.signals.connect(self.on_closed, sig.spider_closed)
        crawler.signals.connect(self.on_request_dropped, sig.request_dropped)
        Recorder.last = self

    @classmethod
    def from_crawler(cls, crawler: Engine) -> Recorder:
        return cls(crawler)

    def _receiver(self, name: str) -> Any:
        async def receive(**kwargs: Any) -> None:
            self.counts[name] += 1

        return receive

    def on_closed(self, spider: Spider, reason: str) -> None:
        self.reasons.append(reason)

    def on_request_dropped(self, request: Request, spider: Spider, reason: str) -> None:
        self.dropped[reason] += 1


async def test_an_extension_counting_item_scraped_matches_the_items_written(
    tmp_path: Path,
) -> None:
    out = tmp_path / "items.jsonl"
    async with serve(link_graph_app(60)) as base:
        spider = LinkSpider(start_urls=[f"{base}/p/0.html"])
        settings = Settings(concurrency=8, extensions=[Recorder])
        engine = Engine(spider, settings, sinks=[JsonLinesSink(str(out), overwrite=True)])
        stats = await engine.run()
    written = out.read_bytes().splitlines()
    rec = Recorder.last
    assert rec is not None
    assert rec.counts["item_scraped"] == len(written) == stats.items == 60
    assert rec.counts["response_received"] == 60
    assert rec.counts["request_scheduled"] == 60
    assert rec.dropped == {"duplicate": stats.duplicates_filtered}
    assert rec.counts["spider_opened"] == rec.counts["spider_closed"] == 1
    assert rec.counts["engine_idle"] == 1
    assert rec.reasons == ["finished"]


async def test_spider_closed_gets_the_reason_and_spider_closed_method_is_called(
    tmp_path: Path,
) -> None:
    reasons: list[str] = []

    class Closing(LinkSpider):
        async def closed(self, reason: str) -> None:
            reasons.append(reason)

    async with serve(link_graph_app(50)) as base:
        spider = Closing(start_urls=[f"{base}/p/0.html"])
        await Engine(spider, Settings(concurrency=2, max_pages=5, extensions=[Recorder])).run()
    assert reasons == ["max_pages reached"]
    assert Recorder.last is not None and Recorder.last.reasons == ["max_pages reached"]


class DropOdd:
    def process_item(self, item: dict[str, Any], spider: Spider) -> dict[str, Any]:
        if int(item["url"].rsplit("/", 1)[1].split(".")[0]) % 2:
            raise DropItem("odd page")
        return item


async def test_item_dropped_carries_the_pipeline_reason(tmp_path: Path) -> None:
    dropped: list[str] = []
    scraped: list[Any] = []

    class Watch:
        @classmethod
        def from_crawler(cls, crawler: Engine) -> Watch:
            crawler.signals.connect(
                lambda item, spider, reason: dropped.append(reason), sig.item_dropped
            )
            crawler.signals.connect(lambda item, spider: scraped.append(item), sig.item_scraped)
            return cls()

    class Piped(LinkSpider):
        pipelines = [DropOdd]

    async with serve(link_graph_app(20)) as base:
        spider = Piped(start_urls=[f"{base}/p/0.html"])
        stats = await Engine(spider, Settings(concurrency=4, extensions=[Watch])).run()
    assert dropped == ["odd page"] * 10
    assert len(scraped) == stats.items == 10


async def test_engine_idle_receivers_can_schedule_more_work(tmp_path: Path) -> None:
    rounds: list[int] = []

    class TwoBatches(Spider):
        def parse(self, response: Response) -> Iterator[Any]:
            yield {"url": response.url}

    async with serve(link_graph_app(10)) as base:

        class MoreOnIdle:
            def __init__(self, crawler: Engine) -> None:
                self.crawler = crawler
                crawler.signals.connect(self.idle, sig.engine_idle)

            @classmethod
            def from_crawler(cls, crawler: Engine) -> MoreOnIdle:
                return cls(crawler)

            def idle(self, spider: Spider) -> None:
                rounds.append(self.crawler.stats.pages)
                if len(rounds) == 1:
                    for i in range(5, 10):
                        self.crawler.schedule(Request(f"{base}/p/{i}.html"), None)

        urls = [f"{base}/p/{i}.html" for i in range(5)]
        spider = TwoBatches(start_urls=urls)
        stats = await Engine(spider, Settings(concurrency=4, extensions=[MoreOnIdle])).run()
    assert rounds == [5, 10]  # the second round scheduled nothing: the crawl ended
    assert stats.pages == stats.items == 10


async def test_a_failing_receiver_is_logged_and_counted_not_raised(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    class Faulty:
        @classmethod
        def from_crawler(cls, crawler: Engine) -> Faulty:
            def boom(**kwargs: Any) -> None:
                raise ValueError("receiver bug")

            crawler.signals.connect(boom, sig.response_received)
            return cls()

    async with serve(link_graph_app(10)) as base:
        spider = LinkSpider(start_urls=[f"{base}/p/0.html"])
        stats = await Engine(spider, Settings(concurrency=4, extensions=[Faulty])).run()
    assert stats.pages == 10
    assert stats.errors["signal response_received:ValueError"] == 10
    assert len([r for r in caplog.records if r.name == "pooledcrawl.signals"]) == 1


# ---- the bus alone ---------------------------------------------------------------------


async def test_send_awaits_async_receivers_in_order_and_returns_results() -> None:
    bus = SignalBus()
    order: list[str] = []

    async def first(**kwargs: Any) -> int:
        order.append("first")
        return 1

    def second(**kwargs: Any) -> int:
        order.append("second")
        return 2

    bus.connect(first, sig.spider_opened)
    bus.connect(second, sig.spider_opened)
    bus.connect(second, sig.spider_opened)  # connected once only
    assert await bus.send(sig.spider_opened, spider=None) == [1, 2]
    bus.disconnect(first, sig.spider_opened)
    assert await bus.send(sig.spider_opened, spider=None) == [2]
    assert order == ["first", "second", "second"]


async def test_send_nowait_runs_async_receivers_until_drained() -> None:
    bus = SignalBus()
    got: list[int] = []

    async def receive(n: int) -> None:
        got.append(n)

    bus.connect(receive, sig.request_scheduled)
    for n in range(3):
        bus.send_nowait(sig.request_scheduled, n=n)
    await bus.drain()
    assert got == [0, 1, 2]


def test_receivers_is_a_live_list() -> None:
    bus = SignalBus()
    live = bus.receivers(sig.item_scraped)
    assert not live
    bus.connect(print, sig.item_scraped)
    assert live == [print]


async def test_items_are_unchanged_by_an_unwatched_bus(tmp_path: Path) -> None:
    out = tmp_path / "items.jsonl"
    async with serve(link_graph_app(10)) as base:
        engine = Engine(
            LinkSpider(start_urls=[f"{base}/p/0.html"]),
            Settings(concurrency=2),
            sinks=[JsonLinesSink(str(out), overwrite=True)],
        )
        await engine.run()
    assert len([orjson.loads(line) for line in out.read_bytes().splitlines()]) == 10


def test_progress_is_a_default_extension_that_can_be_disabled() -> None:
    default = Engine(LinkSpider(), Settings())
    assert [type(e).__name__ for e in default.extensions] == ["ShowProgress"]
    assert len(default.signals.receivers(sig.spider_opened)) == 1
    quiet = Engine(LinkSpider(), Settings(extensions={"ShowProgress": None}))
    assert quiet.extensions == [] and not quiet.signals.receivers(sig.spider_opened)
