"""What a spider controls: CloseSpider, handle_httpstatus_list and
meta["handle_httpstatus_all"] (Scrapy's names and meaning)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from typing import Any

from aiohttp import web
from sites import link_graph_app, serve

from pooledcrawl import CloseSpider, Engine, Failure, Request, Response, Settings, Spider


async def test_close_spider_stops_the_crawl_with_its_reason() -> None:
    class Enough(Spider):
        def parse(self, response: Response) -> Iterator[Any]:
            yield {"url": response.url}
            if self.crawler_pages() >= 3:
                raise CloseSpider("enough pages")
            yield from response.follow_all(css="a")

        def crawler_pages(self) -> int:
            return engine.stats.pages

    async with serve(link_graph_app(300)) as base:
        engine = Engine(Enough(start_urls=[f"{base}/p/0.html"]), Settings(concurrency=1))
        stats = await engine.run()
    assert stats.finish_reason == "closed by spider: enough pages"
    assert 3 <= stats.pages < 300


def status_app() -> web.Application:
    async def status(request: web.Request) -> web.Response:
        code = int(request.match_info["code"])
        return web.Response(status=code, text=f"status {code}")

    app = web.Application()
    app.router.add_get(r"/s/{code:\d+}", status)
    return app


class StatusSpider(Spider):
    base = ""
    codes: tuple[int, ...] = (404, 410)
    meta: dict[str, Any] | None = None

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.parsed: list[int] = []
        self.failed: list[int] = []

    async def start(self) -> AsyncIterator[Request]:
        for code in self.codes:
            yield Request(f"{self.base}/s/{code}", meta=self.meta, errback=self.on_error)

    def parse(self, response: Response) -> None:
        self.parsed.append(response.status)

    def on_error(self, failure: Failure) -> None:
        assert failure.response is not None
        self.failed.append(failure.response.status)


async def test_an_error_status_goes_to_the_errback_by_default() -> None:
    async with serve(status_app()) as base:
        spider = StatusSpider(base=base)
        await Engine(spider, Settings(concurrency=2)).run()
    assert spider.parsed == [] and sorted(spider.failed) == [404, 410]


async def test_handle_httpstatus_list_sends_those_statuses_to_the_callback() -> None:
    class Handles404(StatusSpider):
        handle_httpstatus_list = [404]

    async with serve(status_app()) as base:
        spider = Handles404(base=base)
        await Engine(spider, Settings(concurrency=2)).run()
    assert spider.parsed == [404] and spider.failed == [410]


async def test_meta_handle_httpstatus_all_sends_every_status_to_the_callback() -> None:
    async with serve(status_app()) as base:
        spider = StatusSpider(base=base, meta={"handle_httpstatus_all": True})
        await Engine(spider, Settings(concurrency=2)).run()
    assert sorted(spider.parsed) == [404, 410] and spider.failed == []
