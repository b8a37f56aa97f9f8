"""End-to-end crawls through the Engine against local aiohttp sites on 127.0.0.1."""

from __future__ import annotations

import asyncio
import dataclasses
import gc
import logging
import socket
import warnings
from collections import Counter
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import orjson
import pytest
from aiohttp import web
from sites import link_graph_app, serve

from pooledcrawl import Engine, Failure, Request, Response, Settings, Spider, Stats
from pooledcrawl.items.jsonl import JsonLinesSink


async def run_crawl(
    spider: Spider, tmp_path: Path, **settings: Any
) -> tuple[Stats, list[dict[str, Any]]]:
    """Crawl with a JsonLinesSink; returns the stats and the items read back from the file."""
    out = tmp_path / "items.jsonl"
    options: dict[str, Any] = {"concurrency": 8, "retry_backoff_base": 0.01, **settings}
    engine = Engine(spider, Settings(**options), sinks=[JsonLinesSink(str(out), overwrite=True)])
    stats = await engine.run()
    items = [orjson.loads(line) for line in out.read_bytes().splitlines()]
    return stats, items


class LinkSpider(Spider):
    """Yields one item per page and follows every link on it."""

    def parse(self, response: Response) -> Iterator[Any]:
        yield {"url": response.url, "title": response.css("title::text").get()}
        yield from response.follow_all(css="a")


# ---- the link graph ----------------------------------------------------------------------


async def test_500_page_link_graph_gives_500_items_without_duplicates(tmp_path: Path) -> None:
    async with serve(link_graph_app(500)) as base:
        spider = LinkSpider(start_urls=[f"{base}/p/0.html"])
        stats, items = await run_crawl(spider, tmp_path, concurrency=16)
    urls = [item["url"] for item in items]
    assert len(items) == 500
    assert len(set(urls)) == 500
    assert set(urls) == {f"{base}/p/{i}.html" for i in range(500)}
    assert stats.items == 500 and stats.pages == 500 and stats.requests == 500
    assert stats.status_counts == {200: 500}
    # Every page links to 10 pages; all but the first sight of each page is filtered.
    assert stats.duplicates_filtered == 500 * 10 - 499
    assert 1 < stats.max_inflight <= 16
    assert not stats.errors


async def test_no_unclosed_session_warnings(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    async with serve(link_graph_app(20)) as base:
        with warnings.catch_warnings(record=True) as warned:
            warnings.simplefilter("always")
            stats, _ = await run_crawl(LinkSpider(start_urls=[f"{base}/p/0.html"]), tmp_path)
            gc.collect()
    assert stats.pages == 20
    assert not [w for w in warned if issubclass(w.category, ResourceWarning)]
    assert "Unclosed" not in caplog.text


# ---- a small site with relative links, redirects, errors and charsets -------------------


def site_app() -> tuple[web.Application, Counter[str]]:
    """The site, and a counter of the hits on each path."""
    hits: Counter[str] = Counter()

    def html(body: str, charset: str = "utf-8") -> web.Response:
        return web.Response(
            body=f"<html><head><title>{body}</title></head><body>{body}</body></html>".encode(
                charset
            ),
            content_type="text/html",
            charset=charset,
        )

    async def handler(request: web.Request) -> web.StreamResponse:
        path = request.path
        hits[path] += 1
        if path == "/dir/a.html":
            return web.Response(
                text="<html><head><title>a</title></head><body>"
                '<a href="b.html">b</a> <a href="./b.html#x">b again</a>'
                '<a href="../top.html">top</a> <a href="sub/c.html?x=1">c</a>'
                '<a href="/old">old</a> <a href="/chain1">chain</a>'
                '<a href="/missing">404</a> <a href="/flaky">503</a>'
                '<a href="/cp1251.html">ru</a> <a href="/sjis.html">jp</a>'
                '<a href="mailto:x@y.z">mail</a> <a href="javascript:void(0)">js</a>'
                "</body></html>",
                content_type="text/html",
            )
        if path in ("/dir/b.html", "/top.html", "/dir/sub/c.html", "/new", "/final"):
            return html(path.rsplit("/", 1)[-1])
        if path == "/old":
            raise web.HTTPMovedPermanently("/new")
        if path == "/chain1":
            raise web.HTTPFound("/chain2")
        if path == "/chain2":
            raise web.HTTPFound("/final")
        if path == "/flaky":
            raise web.HTTPServiceUnavailable()
        if path == "/cp1251.html":
            return html("Привет, мир", "windows-1251")
        if path == "/sjis.html":
            body = "日本語のページ".encode("shift_jis")
            return web.Response(
                body=b'<html><head><meta charset="Shift_JIS"><title>'
                + body
                + b"</title></head></html>",
                content_type="text/html",  # no charset in the header: the meta tag says it
            )
        raise web.HTTPNotFound()

    app = web.Application()
    app.router.add_route("GET", "/{tail:.*}", handler)
    return app, hits


async def test_relative_links_redirects_errors_and_charsets(tmp_path: Path) -> None:
    app, hits = site_app()
    async with serve(app) as base:
        spider = LinkSpider(start_urls=[f"{base}/dir/a.html"])
        stats, items = await run_crawl(spider, tmp_path, max_retries=1)
    by_url = {item["url"]: item["title"] for item in items}
    assert len(by_url) == len(items)
    assert by_url == {
        f"{base}/dir/a.html": "a",
        f"{base}/dir/b.html": "b.html",
        f"{base}/top.html": "top.html",
        f"{base}/dir/sub/c.html?x=1": "c.html",
        # redirects: the item carries the final URL
        f"{base}/new": "new",
        f"{base}/final": "final",
        # non-UTF-8 pages decode right
        f"{base}/cp1251.html": "Привет, мир",
        f"{base}/sjis.html": "日本語のページ",
    }
    # The 404 is counted and not retried; the 503 is retried once, then given up on.
    assert hits["/missing"] == 1
    assert hits["/flaky"] == 2
    assert stats.status_counts[404] == 1
    assert stats.status_counts[503] == 2
    assert stats.retries == 1 and stats.failed == 1
    assert stats.errors["HTTP 503"] == 1
    # Each page once; /flaky twice; redirects are followed inside one request.
    assert (
        stats.requests
        == 8 + 1 + 2
        == sum(hits[p] for p in hits if p not in ("/old", "/chain1", "/chain2"))
    )
    assert hits["/b.html"] == 0 and hits["/dir/b.html"] == 1
    assert stats.pages == 8
    # mailto: and javascript: links are skipped and counted, not fetched, not errors
    assert stats.links_skipped == 2
    assert "InvalidURL" not in stats.errors


# ---- callbacks ---------------------------------------------------------------------------


@dataclasses.dataclass
class Book:
    url: str
    kind: str


class AllKindsSpider(Spider):
    """One callback of each kind; each yields items and requests."""

    async def start(self) -> AsyncIterator[Request]:
        yield Request(f"{self.base}/p/0.html", self.as_list)  # type: ignore[attr-defined]

    def as_list(self, response: Response) -> list[Any]:
        return [
            {"url": response.url, "kind": "list"},
            response.follow("/p/1.html", self.as_generator),
        ]

    def as_generator(self, response: Response) -> Iterator[Any]:
        yield Book(response.url, "generator")
        yield response.follow("/p/2.html", self.as_coroutine, cb_kwargs={"extra": 7})

    async def as_coroutine(self, response: Response, extra: int) -> list[Any]:
        await asyncio.sleep(0)
        return [
            {"url": response.url, "kind": "coroutine", "extra": extra},
            response.follow("/p/3.html", self.as_async_generator),
        ]

    async def as_async_generator(self, response: Response) -> AsyncIterator[Any]:
        await asyncio.sleep(0)
        yield Book(response.url, "async generator")
        yield response.follow("/p/4.html", self.returns_one)

    def returns_one(self, response: Response) -> dict[str, str]:
        return {"url": response.url, "kind": "single"}


async def test_callbacks_of_every_kind_and_dataclass_items(tmp_path: Path) -> None:
    async with serve(link_graph_app(10)) as base:
        stats, items = await run_crawl(AllKindsSpider(base=base), tmp_path)
    assert [item["kind"] for item in items] == [
        "list",
        "generator",
        "coroutine",
        "async generator",
        "single",
    ]
    assert items[2]["extra"] == 7
    assert items[3] == {"url": f"{base}/p/3.html", "kind": "async generator"}
    assert stats.items == 5 and not stats.errors


class RaisingSpider(LinkSpider):
    """Raises on every page whose number is divisible by 5, after yielding its links."""

    def parse(self, response: Response) -> Iterator[Any]:
        yield from response.follow_all(css="a")
        number = int(response.url.rsplit("/", 1)[-1].split(".")[0])
        if number % 5 == 0:
            raise ZeroDivisionError("boom")
        yield {"url": response.url}


async def test_a_raising_callback_is_counted_and_the_crawl_goes_on(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    async with serve(link_graph_app(50)) as base:
        spider = RaisingSpider(start_urls=[f"{base}/p/0.html"])
        with caplog.at_level(logging.ERROR):
            stats, items = await run_crawl(spider, tmp_path)
    assert stats.pages == 50
    assert stats.errors == {"ZeroDivisionError": 10}
    assert len(items) == 40
    # logged once with its traceback, then only counted
    assert len([r for r in caplog.records if "boom" in r.getMessage()]) == 1


# ---- close conditions --------------------------------------------------------------------


async def test_max_items_stops_the_crawl_with_exactly_that_many_items(tmp_path: Path) -> None:
    async with serve(link_graph_app(500)) as base:
        spider = LinkSpider(start_urls=[f"{base}/p/0.html"])
        stats, items = await run_crawl(spider, tmp_path, concurrency=4, max_items=25)
    assert len(items) == 25 == stats.items
    assert stats.finish_reason == "max_items reached"
    assert stats.pages < 100


async def test_max_pages_stops_the_crawl(tmp_path: Path) -> None:
    async with serve(link_graph_app(500)) as base:
        spider = LinkSpider(start_urls=[f"{base}/p/0.html"])
        stats, items = await run_crawl(spider, tmp_path, concurrency=4, max_pages=20)
    assert stats.finish_reason == "max_pages reached"
    assert stats.pages == 20 == len(items)
    # in-flight requests may finish, but nothing new is sent after the stop
    assert stats.requests <= 20 + 4


# ---- errbacks ----------------------------------------------------------------------------


class ErrbackSpider(Spider):
    """Requests a missing page and a closed port; records what the errback receives."""

    def __init__(self, base: str, closed: str) -> None:
        super().__init__()
        self.base, self.closed = base, closed
        self.failures: list[Failure] = []

    async def start(self) -> AsyncIterator[Request]:
        yield Request(f"{self.base}/missing", errback=self.failed)
        yield Request(f"{self.closed}/refused", errback=self.failed)
        yield Request(f"{self.base}/p/1.html")

    def parse(self, response: Response) -> dict[str, str]:
        return {"url": response.url}

    def failed(self, failure: Failure) -> dict[str, object]:
        self.failures.append(failure)
        return {"failed": failure.request.url, "reason": failure.reason}


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])  # closed again when the block ends


async def test_errbacks_get_http_errors_and_transport_failures(tmp_path: Path) -> None:
    closed = f"http://127.0.0.1:{closed_port()}"
    async with serve(link_graph_app(10)) as base:
        spider = ErrbackSpider(base, closed)
        stats, items = await run_crawl(spider, tmp_path, max_retries=2)
    by_url = {failure.request.url: failure for failure in spider.failures}
    missing, refused = by_url[f"{base}/missing"], by_url[f"{closed}/refused"]
    assert missing.response is not None and missing.response.status == 404
    assert missing.reason == "HTTP 404" and missing.attempts == 1
    assert refused.response is None and refused.exception is not None
    assert refused.attempts == 3  # the first try and two retries
    assert stats.failed == 1 and stats.retries == 2
    assert stats.requests == 1 + 3 + 1
    assert {"url": f"{base}/p/1.html"} in items
    assert {item.get("failed") for item in items} >= {f"{base}/missing", f"{closed}/refused"}


async def test_a_redirect_to_a_page_already_seen_is_not_parsed_twice(tmp_path: Path) -> None:
    async def page(request: web.Request) -> web.Response:
        if request.path == "/old":
            raise web.HTTPMovedPermanently("/new")
        return web.Response(
            text='<a href="/new">new</a> <a href="/old">old</a>', content_type="text/html"
        )

    app = web.Application()
    app.router.add_get("/{tail:.*}", page)
    async with serve(app) as base:
        _, items = await run_crawl(LinkSpider(start_urls=[f"{base}/start"]), tmp_path)
    urls = [item["url"] for item in items]
    assert sorted(urls) == sorted(set(urls))
