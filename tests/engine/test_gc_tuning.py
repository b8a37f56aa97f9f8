"""The crawl's young-generation GC threshold: raised while it runs, put back after."""

from __future__ import annotations

import gc
from collections.abc import Iterator

import pytest
from aiohttp import web
from sites import serve

from pooledcrawl import Engine, Request, Response, Settings, Spider
from pooledcrawl.engine.gc_tuning import young_gc_threshold


@pytest.fixture(autouse=True)
def _gc_threshold_kept() -> Iterator[None]:
    before = gc.get_threshold()
    yield
    gc.set_threshold(*before)


def test_raised_inside_and_put_back_after() -> None:
    gc.set_threshold(700, 10, 10)
    with young_gc_threshold(20_000):
        assert gc.get_threshold() == (20_000, 10, 10)
    assert gc.get_threshold() == (700, 10, 10)


def test_put_back_after_an_error_too() -> None:
    gc.set_threshold(700, 10, 10)
    with pytest.raises(RuntimeError), young_gc_threshold(20_000):
        raise RuntimeError("crawl failed")
    assert gc.get_threshold() == (700, 10, 10)


def test_a_higher_threshold_or_none_is_left_alone() -> None:
    gc.set_threshold(50_000, 10, 10)
    with young_gc_threshold(20_000):
        assert gc.get_threshold() == (50_000, 10, 10)
    assert gc.get_threshold() == (50_000, 10, 10)
    gc.set_threshold(700, 10, 10)
    with young_gc_threshold(None):
        assert gc.get_threshold() == (700, 10, 10)
    gc.set_threshold(0, 10, 10)  # automatic collection off: not turned back on
    with young_gc_threshold(20_000):
        assert gc.get_threshold() == (0, 10, 10)


def test_a_change_made_meanwhile_is_not_undone() -> None:
    gc.set_threshold(700, 10, 10)
    with young_gc_threshold(20_000):
        gc.set_threshold(5_000, 20, 10)  # the user's own, set during the crawl
    assert gc.get_threshold() == (5_000, 20, 10)
    # nested (two crawls in one process): the outer one puts the original back
    gc.set_threshold(700, 10, 10)
    with young_gc_threshold(20_000):
        with young_gc_threshold(20_000):
            assert gc.get_threshold() == (20_000, 10, 10)
        assert gc.get_threshold() == (20_000, 10, 10)
    assert gc.get_threshold() == (700, 10, 10)


async def test_a_crawl_runs_with_the_setting_and_puts_it_back() -> None:
    seen: list[int] = []

    class One(Spider):
        name = "one"

        def __init__(self, url: str) -> None:
            super().__init__()
            self.url = url

        async def start(self):  # type: ignore[no-untyped-def]
            yield Request(self.url, self.parse)

        def parse(self, response: Response) -> None:
            seen.append(gc.get_threshold()[0])

    async def page(request: web.Request) -> web.Response:
        return web.Response(text="<html>ok</html>", content_type="text/html")

    app = web.Application()
    app.router.add_get("/", page)
    gc.set_threshold(700, 10, 10)
    async with serve(app) as base:
        settings = Settings(gc_young_threshold=12_345, log_level="WARNING")
        await Engine(One(f"{base}/"), settings).run()
        assert seen == [12_345]
        assert gc.get_threshold() == (700, 10, 10)
        await Engine(One(f"{base}/"), Settings(gc_young_threshold=None)).run()
        assert seen == [12_345, 700]
