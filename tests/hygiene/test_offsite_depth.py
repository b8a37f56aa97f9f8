"""Offsite and depth rules: pure checks, then crawls of a local server on 127.0.0.1."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from typing import Any

import pytest
from aiohttp import web
from sites import serve

from pooledcrawl import Engine, Request, Response, Settings, Spider, Stats
from pooledcrawl.hygiene.filters import RequestFilter, host_of, normalize_domains


def admit(flt: RequestFilter, url: str, depth: int = 1, **kw: Any) -> bool:
    request = Request(url, **kw)
    request.depth = depth
    return flt.admit(request, url)


# ---- pure ----------------------------------------------------------------------------


def test_allowed_domains_include_subdomains_only() -> None:
    stats = Stats()
    flt = RequestFilter(stats, allowed_domains=["example.com", "Shop.Example.ORG"])
    assert admit(flt, "http://example.com/")
    assert admit(flt, "https://www.example.com:8443/a")
    assert admit(flt, "http://a.b.example.com/")
    assert admit(flt, "http://user:pw@shop.example.org/")
    assert not admit(flt, "http://notexample.com/")
    assert not admit(flt, "http://example.com.evil.net/")
    assert not admit(flt, "http://example.org/")
    assert stats.extra["offsite_filtered"] == 3


def test_a_meta_key_or_dont_filter_lets_an_offsite_request_through() -> None:
    stats = Stats()
    flt = RequestFilter(stats, allowed_domains=["example.com"])
    assert admit(flt, "http://other.net/", meta={"allow_offsite": True})
    assert admit(flt, "http://other.net/", dont_filter=True)
    assert not admit(flt, "http://other.net/")
    assert stats.extra["offsite_filtered"] == 1


def test_allowed_domains_written_as_urls_are_reduced_to_hosts() -> None:
    assert normalize_domains(["https://Example.com/path", "shop.net:8080", ".x.org", "a.io"]) == [
        "example.com",
        "shop.net",
        "x.org",
        "a.io",
    ]
    assert host_of("http://[::1]:8080/x") == "[::1]"
    assert host_of("http://u@h.example:1/") == "h.example"


def test_max_depth_and_depth_priority() -> None:
    stats = Stats()
    flt = RequestFilter(stats, max_depth=2, depth_priority=3)
    request = Request("http://h/", priority=10)
    request.depth = 2
    assert flt.admit(request, request.url) and request.priority == 4
    assert not admit(flt, "http://h/deep", depth=3)
    assert stats.extra["depth_filtered"] == 1 and stats.extra["request_depth_max"] == 3


def test_no_rules_means_no_filter() -> None:
    assert RequestFilter.create(Spider(), Settings(), Stats()) is None
    assert RequestFilter.create(Spider(), Settings(max_depth=0), Stats()) is not None


# ---- against a server ------------------------------------------------------------------


def tree_app(hits: list[str]) -> web.Application:
    """``/n/<path>``: a binary tree three levels deep; each page links to its children."""

    async def node(request: web.Request) -> web.Response:
        path = request.match_info["path"]
        hits.append(path)
        links = "" if len(path) >= 4 else f'<a href="/n/{path}0">0</a><a href="/n/{path}1">1</a>'
        return web.Response(text=f"<html><body>{links}</body></html>", content_type="text/html")

    app = web.Application()
    app.router.add_get("/n/{path}", node)
    return app


class TreeSpider(Spider):
    name = "tree"

    def parse(self, response: Response) -> Iterator[Any]:
        yield from response.follow_all(css="a")


async def crawl(spider: Spider, **settings: Any) -> Stats:
    options: dict[str, Any] = {"concurrency": 1, "autothrottle": False, **settings}
    async with asyncio.timeout(60):
        return await Engine(spider, Settings(**options)).run()


async def test_max_depth_stops_the_crawl_at_that_depth() -> None:
    hits: list[str] = []
    async with serve(tree_app(hits)) as base:
        stats = await crawl(TreeSpider(start_urls=[f"{base}/n/r"]), max_depth=2)
    assert sorted(hits, key=len) == ["r", "r0", "r1", "r00", "r01", "r10", "r11"]
    assert stats.extra["depth_filtered"] == 8 and stats.extra["request_depth_max"] == 3


@pytest.mark.parametrize(("depth_priority", "deep_first"), [(0, False), (1, False), (-1, True)])
async def test_depth_priority_orders_the_crawl(depth_priority: int, deep_first: bool) -> None:
    hits: list[str] = []
    async with serve(tree_app(hits)) as base:
        await crawl(TreeSpider(start_urls=[f"{base}/n/r"]), depth_priority=depth_priority)
    assert len(hits) == 15
    depths = [len(path) for path in hits]
    if deep_first:
        # depth first: the first leaf comes before the second child of the root
        assert hits.index("r000") < hits.index("r1")
    else:
        assert depths == sorted(depths)  # breadth first


async def test_offsite_requests_are_filtered_unless_marked() -> None:
    hits: list[str] = []

    async def page(request: web.Request) -> web.Response:
        hits.append(request.path)
        return web.Response(
            text='<a href="/a">a</a><a href="/offsite-link">x</a>', content_type="text/html"
        )

    app = web.Application()
    app.router.add_get("/{tail:.*}", page)

    class Marked(Spider):
        name = "marked"
        allowed_domains = ["localhost"]  # 127.0.0.1 itself is offsite for this spider

        def parse(self, response: Response) -> Iterator[Any]:
            yield from response.follow_all(css="a")  # offsite: filtered
            if response.url.endswith("/start"):
                yield response.follow("/marked", meta={"allow_offsite": True})

    async with serve(app) as base:
        stats = await crawl(Marked(start_urls=[f"{base}/start"]))
    assert sorted(hits) == ["/marked", "/start"]  # the start URL is dont_filter
    assert stats.extra["offsite_filtered"] == 4  # two links on each of the two pages


async def test_the_offsite_depth_middleware_can_be_disabled_or_replaced() -> None:
    class ShallowOnly:
        """A replacement: depth 1 at most, whatever max_depth says."""

        def process_schedule(
            self, request: Request, canonical_url: str, spider: Spider
        ) -> str | None:
            return "too deep" if request.depth > 1 else None

    hits: list[str] = []
    async with serve(tree_app(hits)) as base:
        spider = TreeSpider(start_urls=[f"{base}/n/r"])
        stats = await crawl(spider, max_depth=2, middlewares={"OffsiteDepth": None})
        assert len(hits) == 15 and "depth_filtered" not in stats.extra  # the rule is off
        hits.clear()
        await crawl(spider, max_depth=2, middlewares={"OffsiteDepth": None, ShallowOnly: 100})
    assert sorted(hits, key=len) == ["r", "r0", "r1"]
