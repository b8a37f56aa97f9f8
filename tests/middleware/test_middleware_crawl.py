"""Downloader and spider middlewares in real crawls against a local aiohttp site."""

from __future__ import annotations

import socket
from collections import Counter
from collections.abc import AsyncIterable, AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import orjson
import pytest
from aiohttp import web
from sites import serve

from pooledcrawl import Engine, Failure, Request, Response, Settings, Spider, Stats, UsageError
from pooledcrawl.items.jsonl import JsonLinesSink


def recording_app(pages: int = 5) -> tuple[web.Application, list[web.Request]]:
    """``/p/{i}`` links to ``/p/{i+1}`` up to ``pages``; every request is recorded."""
    seen: list[web.Request] = []

    async def page(request: web.Request) -> web.Response:
        seen.append(request)
        i = int(request.match_info["i"])
        link = f'<a href="/p/{i + 1}">next</a>' if i + 1 < pages else ""
        return web.Response(
            text=f"<html><title>page {i}</title><body>{link}</body></html>",
            content_type="text/html",
        )

    app = web.Application()
    app.router.add_get(r"/p/{i:\d+}", page)
    return app, seen


class ChainSpider(Spider):
    def parse(self, response: Response) -> Iterator[Any]:
        yield {"url": response.url, "title": response.css("title::text").get()}
        yield from response.follow_all(css="a")


async def crawl(
    spider: Spider, tmp_path: Path, **settings: Any
) -> tuple[Stats, list[dict[str, Any]], Engine]:
    out = tmp_path / "items.jsonl"
    options: dict[str, Any] = {"concurrency": 4, "retry_backoff_base": 0.01, **settings}
    engine = Engine(spider, Settings(**options), sinks=[JsonLinesSink(str(out), overwrite=True)])
    stats = await engine.run()
    items = [orjson.loads(line) for line in out.read_bytes().splitlines()]
    return stats, items, engine


# ---- process_request -------------------------------------------------------------------


class SignRequests:
    async def process_request(self, request: Request, spider: Spider) -> None:
        request.headers = {**(request.headers or {}), "X-Signature": f"signed:{request.url}"}


async def test_a_header_added_by_a_middleware_reaches_the_server(tmp_path: Path) -> None:
    app, seen = recording_app()
    async with serve(app) as base:
        spider = ChainSpider(start_urls=[f"{base}/p/0"])
        stats, items, _ = await crawl(spider, tmp_path, middlewares=[SignRequests])
    assert len(seen) == 5 and stats.pages == 5 and len(items) == 5
    for request in seen:
        assert request.headers["X-Signature"] == f"signed:{base}{request.path}"


class AnswerFromDict:
    """Serves pages from a dict, so nothing reaches the network."""

    pages = {
        f"/p/{i}": f'<title>cached {i}</title><a href="/p/{i + 1}">n</a>' if i < 2 else "<p/>"
        for i in range(3)
    }

    async def process_request(self, request: Request, spider: Spider) -> Response | None:
        path = "/" + request.url.split("/", 3)[3]
        body = self.pages.get(path)
        if body is None:
            return None
        headers = {"Content-Type": "text/html"}
        return Response(request.url, 200, headers, body.encode(), request)


async def test_a_middleware_answering_from_a_dict_sends_nothing_to_the_network(
    tmp_path: Path,
) -> None:
    app, seen = recording_app()
    async with serve(app) as base:
        spider = ChainSpider(start_urls=[f"{base}/p/0"])
        stats, items, _ = await crawl(spider, tmp_path, middlewares=[AnswerFromDict])
    assert seen == []  # the server got no request at all
    assert sorted(item["title"] or "" for item in items) == ["", "cached 0", "cached 1"]
    assert stats.pages == 3 and stats.requests == 0


class Redirector:
    """Sends /p/1 to /p/4 instead, before the network."""

    async def process_request(self, request: Request, spider: Spider) -> Request | None:
        if request.url.endswith("/p/1"):
            return request.replace(url=request.url[:-1] + "4")
        return None


async def test_a_request_returned_by_process_request_is_scheduled_instead(
    tmp_path: Path,
) -> None:
    app, seen = recording_app()
    async with serve(app) as base:
        spider = ChainSpider(start_urls=[f"{base}/p/0"])
        _, items, _ = await crawl(spider, tmp_path, middlewares=[Redirector])
    assert sorted(r.path for r in seen) == ["/p/0", "/p/4"]
    assert sorted(item["url"] for item in items) == [f"{base}/p/0", f"{base}/p/4"]


# ---- process_response and ordering ---------------------------------------------------------


class RetryOnceOnTitle:
    """Sends the same request again the first time it sees page 2 (a block page, say)."""

    def __init__(self) -> None:
        self.retried = False

    async def process_response(
        self, request: Request, response: Response, spider: Spider
    ) -> Request | Response:
        if request.url.endswith("/p/2") and not self.retried:
            self.retried = True
            return request
        return response


async def test_the_same_request_from_process_response_goes_back_without_dedup(
    tmp_path: Path,
) -> None:
    app, seen = recording_app()
    async with serve(app) as base:
        spider = ChainSpider(start_urls=[f"{base}/p/0"])
        stats, items, _ = await crawl(spider, tmp_path, middlewares=[RetryOnceOnTitle])
    assert Counter(r.path for r in seen)["/p/2"] == 2
    assert len(items) == 5 and stats.pages == 5


def ordering_middlewares(calls: list[str]) -> list[Any]:
    class Outer:
        async def process_request(self, request: Request, spider: Spider) -> None:
            calls.append("outer.request")

        async def process_response(
            self, request: Request, response: Response, spider: Spider
        ) -> Response:
            calls.append("outer.response")
            return response

    class Inner:
        async def process_request(self, request: Request, spider: Spider) -> None:
            calls.append("inner.request")

        async def process_response(
            self, request: Request, response: Response, spider: Spider
        ) -> None:
            calls.append("inner.response")

    return [Outer, Inner]


async def test_requests_go_in_listed_order_and_responses_come_back_reversed(
    tmp_path: Path,
) -> None:
    app, _ = recording_app(pages=1)
    calls: list[str] = []
    async with serve(app) as base:
        spider = ChainSpider(start_urls=[f"{base}/p/0"])
        await crawl(spider, tmp_path, middlewares=ordering_middlewares(calls))
    assert calls == ["outer.request", "inner.request", "inner.response", "outer.response"]


async def test_a_mapping_orders_middlewares_and_none_disables_one(tmp_path: Path) -> None:
    app, _ = recording_app(pages=1)
    calls: list[str] = []
    outer, inner = ordering_middlewares(calls)
    async with serve(app) as base:
        spider = ChainSpider(start_urls=[f"{base}/p/0"])
        await crawl(spider, tmp_path, middlewares={inner: 100, outer: 200})
        assert calls == ["inner.request", "outer.request", "outer.response", "inner.response"]
        calls.clear()
        await crawl(spider, tmp_path, middlewares={inner: 100, outer: None})
    assert calls == ["inner.request", "inner.response"]


# ---- process_exception and failures -----------------------------------------------------------


def refused_url() -> str:
    """A loopback port nothing listens on: connecting is refused at once."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    sock.close()
    return f"http://127.0.0.1:{port}/gone"


class Fallback:
    async def process_exception(
        self, request: Request, exception: BaseException, spider: Spider
    ) -> Response:
        return Response(request.url, 200, {}, b"<title>fallback</title>", request)


async def test_process_exception_can_recover_with_a_response(tmp_path: Path) -> None:
    spider = ChainSpider(start_urls=[refused_url()])
    stats, items, _ = await crawl(spider, tmp_path, middlewares=[Fallback], max_retries=0)
    assert [item["title"] for item in items] == ["fallback"]
    assert stats.failed == 0  # recovered: nothing was given up on


class Broken:
    async def process_request(self, request: Request, spider: Spider) -> None:
        raise RuntimeError("bug in a middleware")


async def test_an_error_in_a_middleware_is_counted_and_reaches_the_errback(
    tmp_path: Path,
) -> None:
    failures: list[Failure] = []

    class ErrbackSpider(ChainSpider):
        async def start(self) -> AsyncIterator[Request]:
            for url in self.start_urls:
                yield Request(url, errback=failures.append)

    app, seen = recording_app()
    async with serve(app) as base:
        spider = ErrbackSpider(start_urls=[f"{base}/p/0", f"{base}/p/1"])
        stats, items, _ = await crawl(spider, tmp_path, middlewares=[Broken])
    assert seen == [] and items == []
    assert stats.errors["RuntimeError"] == 2
    assert sorted(str(f.exception) for f in failures) == ["bug in a middleware"] * 2


# ---- spider middlewares --------------------------------------------------------------------------


class OnlyEven:
    """Drops items of odd pages; adds page 3 to the start requests."""

    def __init__(self, base: str) -> None:
        self.base = base

    async def process_start(self, start: AsyncIterator[Any], spider: Spider) -> AsyncIterator[Any]:
        async for request in start:
            yield request
        yield Request(f"{self.base}/p/3")

    async def process_spider_output(
        self, response: Response, result: AsyncIterable[Any], spider: Spider
    ) -> AsyncIterator[Any]:
        async for output in result:
            if isinstance(output, dict) and int(output["url"].rsplit("/", 1)[1]) % 2:
                continue
            yield output


async def test_spider_middlewares_filter_outputs_and_extend_the_start(tmp_path: Path) -> None:
    app, seen = recording_app(pages=5)
    async with serve(app) as base:
        spider = ChainSpider(start_urls=[f"{base}/p/2"])
        _, items, _ = await crawl(spider, tmp_path, middlewares=[OnlyEven(base)])
    assert sorted(r.path for r in seen) == ["/p/2", "/p/3", "/p/4"]
    assert sorted(item["url"] for item in items) == [f"{base}/p/2", f"{base}/p/4"]


# ---- building ---------------------------------------------------------------------------------


class Configured:
    def __init__(self, header: str) -> None:
        self.header = header

    @classmethod
    def from_crawler(cls, crawler: Engine) -> Configured:
        return cls(crawler.settings.default_headers.get("X-Which", "none"))

    async def process_request(self, request: Request, spider: Spider) -> None:
        request.headers = {"X-From-Crawler": self.header}


async def test_from_crawler_builds_middlewares_by_dotted_path(tmp_path: Path) -> None:
    app, seen = recording_app(pages=1)
    async with serve(app) as base:
        spider = ChainSpider(start_urls=[f"{base}/p/0"])
        await crawl(
            spider,
            tmp_path,
            middlewares=[f"{__name__}.Configured"],
            default_headers={"X-Which": "settings"},
        )
    assert seen[0].headers["X-From-Crawler"] == "settings"


class SyncHook:
    def process_request(self, request: Request, spider: Spider) -> None: ...


class NoHooks:
    pass


@pytest.mark.parametrize(
    ("entry", "message"),
    [
        (SyncHook, "SyncHook.process_request must be async"),
        (NoHooks, "NoHooks defines none of"),
        ("nowhere.Mw", "cannot import 'nowhere'"),
    ],
)
def test_bad_middlewares_are_one_line_usage_errors(entry: Any, message: str) -> None:
    with pytest.raises(UsageError, match=message):
        Engine(ChainSpider(), Settings(middlewares=[entry]))


def test_hooks_nobody_implements_are_skipped() -> None:
    default = Engine(ChainSpider(), Settings()).middleware
    # OffsiteDepth declines without allowed_domains or max_depth, RobotsTxt without
    # obey_robots, ProxyBan without proxies, HttpCache and BlockDetection unconfigured;
    # the header middlewares act once, when the crawl starts, not per request
    names = [type(m).__name__ for m in default.middlewares]
    assert names == ["DefaultHeaders", "UserAgent", "Retry"]
    assert not (default.on_request or default.on_start or default.on_output)
    assert default.schedule_hooks == [] and default.ban_hooks == []
    assert default.frontier_hooks == [] and default.policy_hooks == []
    off = {"Retry": None, "DefaultHeaders": None, "UserAgent": None}
    bare = Engine(ChainSpider(), Settings(middlewares=off)).middleware
    assert bare.middlewares == []
    assert not (bare.on_response or bare.on_exception)
