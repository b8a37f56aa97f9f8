"""Pipelines: loading, order, drops and failures counted, back-pressure, built-ins."""

from __future__ import annotations

import asyncio
import dataclasses
import logging
from typing import Any

import pytest
from itemkit import DropOdd, GraphSpider, ListSink, Upper
from sites import link_graph_app, serve

from pooledcrawl import DropItem, Engine, Settings, Spider, UsageError
from pooledcrawl.engine.stats import Stats
from pooledcrawl.items.pipelines import Dedupe, RequireFields, Validate, build_pipelines
from pooledcrawl.items.processor import ItemProcessor


def spider_with(*pipelines: Any) -> Spider:
    spider = Spider()
    spider.pipelines = list(pipelines)  # type: ignore[misc]
    return spider


async def processor(
    *pipelines: Any, sink: ListSink | None = None, **settings: Any
) -> tuple[ItemProcessor, ListSink, Stats]:
    sink = sink or ListSink()
    stats = Stats()
    proc = ItemProcessor(
        [sink], stats, settings.pop("max_items", None), settings=Settings(**settings)
    )
    await proc.open(spider_with(*pipelines))
    return proc, sink, stats


# ---- counts ---------------------------------------------------------------------------


class Flaky:
    """Fails on every 5th item (ValueError) and every 7th (KeyError), keeps the rest."""

    async def process_item(self, item: dict[str, Any], spider: Spider) -> dict[str, Any]:
        await asyncio.sleep(0)
        if item["i"] % 5 == 0:
            raise ValueError(f"bad item {item['i']}")
        if item["i"] % 7 == 0:
            raise KeyError("missing")
        return item


async def test_dropped_and_failed_items_are_counted_and_the_rest_written(
    caplog: pytest.LogCaptureFixture,
) -> None:
    proc, sink, stats = await processor(DropOdd, Flaky())
    for start in range(0, 100, 10):  # ten callbacks of ten items
        assert await proc.process([{"i": i} for i in range(start, start + 10)])
    await proc.close()

    odd = {i for i in range(100) if i % 2}
    fives = {i for i in range(100) if i % 5 == 0} - odd
    sevens = {i for i in range(100) if i % 7 == 0} - odd - fives
    kept = set(range(100)) - odd - fives - sevens
    assert sorted(item["i"] for item in sink.items) == sorted(kept)
    assert stats.items == len(kept)
    section = stats.to_dict()["pipelines"]
    assert section["dropped"] == 50 and section["drop_reasons"] == {"odd": 50}
    assert section["failed"] == len(fives) + len(sevens)
    assert section["failed_kinds"] == {
        "Flaky:ValueError": len(fives),
        "Flaky:KeyError": len(sevens),
    }
    assert stats.errors["pipeline Flaky:ValueError"] == len(fives)
    # Logged once per kind, however many items failed.
    logged = [r for r in caplog.records if r.levelno == logging.ERROR]
    assert len(logged) == 2
    assert set(section["time_s"]) == {"DropOdd", "Flaky"}


async def test_status_lines_show_sinks_with_state_and_pipeline_trouble() -> None:
    class PoolSink(ListSink):
        def status(self) -> str:
            return f"pool sink: rows {len(self.items)}"

    sink = PoolSink()
    proc, _, _ = await processor(DropOdd, sink=sink)
    assert proc.status_lines() == ["pool sink: rows 0"]
    await proc.process([{"i": i} for i in range(5)])
    lines = proc.status_lines()
    assert lines[0] == "pool sink: rows 3"
    assert lines[1].startswith("pipelines: dropped 2  failed 0")


async def test_dropped_items_do_not_use_up_max_items() -> None:
    proc, sink, stats = await processor(DropOdd, max_items=5)
    assert await proc.process([{"i": i} for i in range(8)])  # 4 kept
    assert not await proc.process([{"i": i} for i in range(8, 20)])  # 1 more: the limit
    assert [item["i"] for item in sink.items] == [0, 2, 4, 6, 8]
    assert stats.items == 5


async def test_too_many_distinct_drop_reasons_fold_into_other() -> None:
    class DropAll:
        def process_item(self, item: dict[str, Any], spider: Spider) -> None:
            raise DropItem(f"reason {item['i']}")

    proc, _, _ = await processor(DropAll)
    await proc.process([{"i": i} for i in range(80)])
    reasons = proc.snapshot()["drop_reasons"]
    assert len(reasons) == 51 and reasons["other"] == 30
    assert proc.snapshot()["dropped"] == 80


# ---- loading and order ----------------------------------------------------------------


async def test_spider_pipelines_run_before_settings_pipelines_and_open_close_are_called() -> None:
    Upper.events.clear()
    seen: list[str] = []

    class Record:
        async def process_item(self, item: dict[str, Any], spider: Spider) -> None:
            seen.append(item["name"])  # None: keep the item as it is

    class Rename:
        def process_item(self, item: dict[str, Any], spider: Spider) -> dict[str, Any]:
            return {**item, "name": item["name"] + "!"}

    sink = ListSink()
    stats = Stats()
    proc = ItemProcessor(
        [sink],
        stats,
        None,
        settings=Settings(pipelines=["itemkit.Upper", "itemkit:DropOdd"]),
    )
    await proc.open(spider_with(Rename, Record()))
    await proc.process([{"i": 0, "name": "a"}, {"i": 1, "name": "b"}])
    await proc.close()
    # Rename then Record (spider's), then Upper, then DropOdd (settings')
    assert seen == ["a!", "b!"]
    assert sink.items == [{"i": 0, "name": "A!"}]
    assert Upper.events == ["open", "close"]
    assert proc.snapshot()["names"] == ["Rename", "Record", "Upper", "DropOdd"]


@pytest.mark.parametrize(
    ("entry", "message"),
    [
        ("nosuchmodule.Thing", "cannot import 'nosuchmodule'"),
        ("itemkit.NoSuchClass", "has no 'NoSuchClass'"),
        ("Thing", "expected pkg.module.Name"),
        ("itemkit.ListSink", "no process_item"),
    ],
)
def test_bad_pipeline_names_are_one_line_usage_errors(entry: str, message: str) -> None:
    with pytest.raises(UsageError, match=message):
        build_pipelines([entry], Settings())


def test_a_class_named_twice_is_built_once() -> None:
    built = build_pipelines([DropOdd, "itemkit.DropOdd", "Dedupe"], Settings())
    assert [type(p).__name__ for p in built] == ["DropOdd", "Dedupe"]


async def test_a_failing_open_closes_what_was_opened() -> None:
    class Boom:
        def open(self, spider: Spider) -> None:
            raise RuntimeError("no database")

        def process_item(self, item: Any, spider: Spider) -> Any:
            return item

    Upper.events.clear()
    sink = ListSink()
    proc = ItemProcessor([sink], Stats(), None, settings=Settings())
    with pytest.raises(RuntimeError, match="no database"):
        await proc.open(spider_with(Upper, Boom))
    assert Upper.events == ["open", "close"]
    assert not sink.opened  # sinks open after the pipelines


# ---- back-pressure --------------------------------------------------------------------


async def test_a_slow_pipeline_slows_the_crawl_instead_of_buffering() -> None:
    concurrency = 4
    behind: list[int] = []
    engine: Engine

    class Slow:
        done = 0

        async def process_item(self, item: dict[str, Any], spider: Spider) -> dict[str, Any]:
            # pages handed to callbacks minus items through: what is held in memory
            behind.append(engine.stats.pages - Slow.done)
            await asyncio.sleep(0.002)
            Slow.done += 1
            return item

    async with serve(link_graph_app(120)) as base:
        spider = GraphSpider(start_urls=[f"{base}/p/0.html"])
        spider.pipelines = [Slow]  # type: ignore[misc]
        sink = ListSink()
        engine = Engine(spider, Settings(concurrency=concurrency), sinks=[sink])
        stats = await engine.run()
    assert len(sink.items) == 120
    # Each worker holds at most the one page whose item it is processing.
    assert max(behind) <= concurrency
    assert stats.to_dict()["pipelines"]["time_s"]["Slow"] > 0


async def test_a_blocked_sink_stops_the_crawl_until_it_drains() -> None:
    gate = asyncio.Event()
    sink = ListSink(gate)
    async with serve(link_graph_app(200)) as base:
        spider = GraphSpider(start_urls=[f"{base}/p/0.html"])
        engine = Engine(spider, Settings(concurrency=4), sinks=[sink])
        crawl = asyncio.create_task(engine.run())
        for _ in range(500):  # until every worker waits on the sink
            if sink.waiting == 4:
                break
            await asyncio.sleep(0.01)
        assert sink.waiting == 4
        pages = engine.stats.pages
        await asyncio.sleep(0.1)
        assert engine.stats.pages == pages <= 4  # nothing moves while the sink is stuck
        gate.set()
        stats = await crawl
    assert stats.items == len(sink.items) == 200


# ---- built-ins ------------------------------------------------------------------------


def test_dedupe_drops_repeats_of_a_field_even_unhashable_ones() -> None:
    dedupe = Dedupe("key")
    spider = Spider()
    assert dedupe.process_item({"key": "a"}, spider)
    with pytest.raises(DropItem, match="duplicate key"):
        dedupe.process_item({"key": "a"}, spider)
    assert dedupe.process_item({"key": {"x": [1, 2]}}, spider)
    with pytest.raises(DropItem):
        dedupe.process_item({"key": {"x": [1, 2]}}, spider)
    assert dedupe.process_item({"other": 1}, spider)  # no key: passes
    assert dedupe.process_item({"other": 1}, spider)


def test_require_fields() -> None:
    pipeline = RequireFields.from_settings(Settings(required_fields=["name", "price"]))
    spider = Spider()
    assert pipeline.process_item({"name": "x", "price": 0}, spider)
    for bad, missing in [({"price": 1}, "name"), ({"name": "", "price": 1}, "name")]:
        with pytest.raises(DropItem, match=f"missing {missing}"):
            pipeline.process_item(bad, spider)
    with pytest.raises(DropItem, match="missing price"):
        pipeline.process_item({"name": "x", "price": None}, spider)
    with pytest.raises(UsageError):
        RequireFields.from_settings(Settings())


@dataclasses.dataclass
class Book:
    url: str
    title: str
    price: float
    tags: list[str] = dataclasses.field(default_factory=list)
    stock: int | None = None


def test_validate_against_a_dataclass() -> None:
    pipeline = Validate(Book)
    spider = Spider()
    pipeline.open(spider)
    book = pipeline.process_item({"url": "u", "title": "t", "price": 3}, spider)
    assert book == Book("u", "t", 3, [], None)
    cases = [
        ({"url": "u", "title": "t"}, "missing field 'price'"),
        ({"url": "u", "title": "t", "price": "3"}, "field 'price' has the wrong type"),
        ({"url": "u", "title": "t", "price": 1, "isbn": "x"}, "unexpected field 'isbn'"),
        ({"url": "u", "title": "t", "price": 1, "stock": True}, "field 'stock'"),
    ]
    for item, reason in cases:
        with pytest.raises(DropItem, match=reason):
            pipeline.process_item(item, spider)


async def test_validate_takes_the_model_from_settings_or_the_spider() -> None:
    proc, sink, _ = await processor("Validate", item_model="test_pipelines:Book")
    await proc.process([{"url": "u", "title": "t", "price": 1.5}, {"url": "u"}])
    assert sink.items == [Book("u", "t", 1.5)]
    assert proc.snapshot()["drop_reasons"] == {"invalid Book: missing field 'title'": 1}

    spider = Spider()
    spider.item_model = Book  # type: ignore[attr-defined]
    pipeline = Validate()
    pipeline.open(spider)
    assert pipeline.model is Book
    with pytest.raises(UsageError, match="needs a model"):
        Validate().open(Spider())


def test_validate_against_a_pydantic_model() -> None:
    import pydantic  # a dev dependency: missing, the test fails rather than skips

    class Product(pydantic.BaseModel):  # type: ignore[misc,name-defined]
        name: str
        price: float

    pipeline = Validate(Product)
    spider = Spider()
    pipeline.open(spider)
    assert pipeline.process_item({"name": "x", "price": "2.5"}, spider) == {
        "name": "x",
        "price": 2.5,
    }
    with pytest.raises(DropItem, match="invalid Product: field 'price'"):
        pipeline.process_item({"name": "x", "price": "cheap"}, spider)
