"""CrawlSpider and Rule: which pages a rule-driven crawl fetches, from the server's side."""

from __future__ import annotations

import asyncio
import types
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sites import serve
from spider_helpers import EXAMPLES, read_items, run_cli
from toolkit_sites import CRAWL_ALLOWED, AccessLog, crawl_app

from pooledcrawl import CrawlSpider, Engine, LinkExtractor, Request, Response, Rule, Settings
from pooledcrawl.items.jsonl import JsonLinesSink

pytestmark = pytest.mark.timeout(120)


async def crawl(spider: CrawlSpider, tmp_path: Path, **settings: Any) -> list[dict[str, Any]]:
    out = tmp_path / "items.jsonl"
    options: dict[str, Any] = {"concurrency": 4, **settings}
    engine = Engine(spider, Settings(**options), sinks=[JsonLinesSink(str(out), overwrite=True)])
    await engine.run()
    return read_items(out)


def fetched(log: AccessLog) -> Counter[str]:
    return Counter(log.paths())


async def test_cli_crawl_fetches_exactly_the_allowed_pages(tmp_path: Path) -> None:
    log = AccessLog()
    async with serve(crawl_app(log)) as base:
        result = await run_cli(
            "crawl",
            str(EXAMPLES / "crawl_spider.py"),
            "-a",
            f"base={base}",
            "-o",
            "out.jsonl",
            cwd=tmp_path,
        )
    assert result.returncode == 0, result.stderr
    # each allowed page once; nothing denied, unmatched, ignored or offsite
    assert fetched(log) == Counter(CRAWL_ALLOWED)
    items = read_items(tmp_path / "out.jsonl")
    kinds = Counter(item["kind"] for item in items)
    assert kinds == {"home": 1, "doc": 4, "post": 2}
    posts = {item["url"]: item for item in items if item["kind"] == "post"}
    assert set(posts) == {f"{base}/blog/1.html", f"{base}/blog/2.html"}
    assert posts[f"{base}/blog/1.html"]["link_text"] == "link 1"


class Recorder(CrawlSpider):
    """Every rule feature at once, recording what the hooks saw."""

    rules = (
        Rule(
            LinkExtractor(allow=r"/docs/(?!print/)"),
            callback="parse_doc",
            cb_kwargs={"section": "docs"},
            follow=True,
            process_links="keep_links",
            process_request="tag_request",
        ),
        # the same links again: requested once per page, by the first rule
        Rule(LinkExtractor(allow=r"/docs/"), callback="parse_twice"),
        Rule(LinkExtractor(allow=r"/private/a"), callback="parse_doc", errback="on_error"),
        Rule(LinkExtractor(allow=r"/blog/2"), process_request="drop"),
    )

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.link_batches: list[int] = []
        self.errors: list[int] = []

    def keep_links(self, links: list[Any]) -> list[Any]:
        self.link_batches.append(len(links))
        return [link for link in links if "sec/" not in link.url]

    def tag_request(self, request: Request, response: Response) -> Request:
        request.meta["from"] = response.url
        return request

    def drop(self, request: Request, response: Response) -> None:
        return None

    def parse_doc(self, response: Response, section: str = "-") -> Iterator[dict[str, Any]]:
        yield {"url": response.url, "section": section, "from": response.meta.get("from")}

    def parse_twice(self, response: Response) -> Iterator[dict[str, Any]]:
        yield {"url": response.url, "twice": True}

    def on_error(self, failure: Any) -> Iterator[dict[str, Any]]:
        self.errors.append(failure.response.status)
        yield {"error": failure.request.url, "status": failure.response.status}

    def process_results(self, response: Response, results: list[Any]) -> list[Any]:
        return [{**r, "processed": True} for r in results]


async def test_rule_hooks_cb_kwargs_errback_and_per_page_dedup(tmp_path: Path) -> None:
    log = AccessLog()

    async def private_404(request: Any, handler: Any) -> Any:
        if request.path == "/private/a.html":
            from aiohttp import web

            raise web.HTTPNotFound()
        return await handler(request)

    from aiohttp import web

    app = crawl_app(log)
    app.middlewares.append(web.middleware(private_404))
    async with serve(app) as base:
        spider = Recorder(start_urls=[f"{base}/"])
        items = await crawl(spider, tmp_path)
    paths = fetched(log)
    # rule 1: /docs/ but not print/, and not sec/ (dropped by its process_links);
    # rule 2 gets the links rule 1 did not take; rule 4 drops /blog/2 requests
    assert paths == Counter(
        {
            "/": 1,
            "/docs/index.html": 1,
            "/docs/ch1.html": 1,
            "/docs/ch2.html": 1,
            "/docs/sec/1.1.html": 1,
            "/docs/print/ch1.html": 1,
            "/docs/print/ch2.html": 1,
            "/private/a.html": 1,
        }
    )
    assert {i["url"] for i in items if i.get("twice")} == {
        f"{base}/docs/sec/1.1.html",
        f"{base}/docs/print/ch1.html",
        f"{base}/docs/print/ch2.html",
    }
    docs = [i for i in items if i.get("section") == "docs"]
    assert {i["url"] for i in docs} == {
        f"{base}/docs/index.html",
        f"{base}/docs/ch1.html",
        f"{base}/docs/ch2.html",
    }
    assert all(i["processed"] and i["from"] for i in docs)
    assert spider.errors == [404]
    assert [i for i in items if "error" in i] == [
        {"error": f"{base}/private/a.html", "status": 404}
    ]
    assert spider.link_batches and all(n > 0 for n in spider.link_batches)


def test_a_link_is_requested_once_per_page_by_the_first_rule_that_takes_it() -> None:
    from multidict import CIMultiDict

    url = "http://site.test/docs/index.html"
    body = (
        b'<a href="/docs/a.html">a</a><a href="/docs/a.html#x">a again</a>'
        b'<a href="/docs/print/b.html">b</a><a href="/other.html">c</a>'
    )
    response = Response(url, 200, CIMultiDict({"Content-Type": "text/html"}), body, Request(url))
    spider = Recorder()
    requests = list(spider._requests_to_follow(response))
    assert [(r.url, r.meta["rule"], r.callback) for r in requests] == [
        ("http://site.test/docs/a.html", 0, spider._rule_callback),
        ("http://site.test/docs/print/b.html", 1, spider._rule_callback),
    ]
    assert requests[0].meta == {"rule": 0, "link_text": "a", "from": url}
    assert requests[0].errback is None
    # not from a non-markup response (Scrapy follows only from HTML)
    pdf = Response(url, 200, CIMultiDict({"Content-Type": "application/pdf"}), body, Request(url))
    assert list(spider._requests_to_follow(pdf)) == []


async def test_rule_defaults_follow_only_without_callback() -> None:
    extractor = LinkExtractor()
    assert Rule(extractor).follow is True
    assert Rule(extractor, callback="parse_item").follow is False
    assert Rule(extractor, callback="parse_item", follow=True).follow is True
    assert isinstance(Rule().link_extractor, LinkExtractor)


async def test_unknown_rule_method_is_a_clear_error() -> None:
    class Broken(CrawlSpider):
        rules = (Rule(LinkExtractor(), callback="nope"),)

    with pytest.raises(AttributeError, match="no method 'nope'"):
        Broken()


async def test_follow_links_off_parses_only_start_pages(tmp_path: Path) -> None:
    class NoFollow(CrawlSpider):
        follow_links = False
        rules = (Rule(LinkExtractor(allow=r"/docs/")),)

        def parse_start_url(self, response: Response) -> Iterator[dict[str, str]]:
            yield {"url": response.url}

    log = AccessLog()
    async with serve(crawl_app(log)) as base:
        items = await crawl(NoFollow(start_urls=[f"{base}/"]), tmp_path)
    assert fetched(log) == Counter({"/": 1})
    assert items == [{"url": f"{base}/"}]


async def test_rule_requests_survive_a_persistent_frontier(tmp_path: Path) -> None:
    """Rule callbacks are spider methods, so --jobdir can store rule requests."""
    log = AccessLog()
    async with serve(crawl_app(log)) as base:
        result = await run_cli(
            "crawl",
            str(EXAMPLES / "crawl_spider.py"),
            *("-a", f"base={base}", "-o", "out.jsonl", "--jobdir", "job"),
            cwd=tmp_path,
        )
    assert result.returncode == 0, result.stderr
    assert fetched(log) == Counter(CRAWL_ALLOWED)
    assert len(read_items(tmp_path / "out.jsonl")) == len(CRAWL_ALLOWED)


@pytest.mark.parametrize("kind", ["generator", "list", "single", "none", "async gen", "coroutine"])
async def test_rule_callbacks_of_every_kind(kind: str) -> None:
    """Whatever a rule callback is, its output comes first (through process_results),
    then the rule's requests; a synchronous one gives the engine a plain generator."""
    from multidict import CIMultiDict

    from pooledcrawl.engine.callbacks import outputs_of

    class Kinds(CrawlSpider):
        rules = (Rule(LinkExtractor(), callback="cb", follow=True),)

        def process_results(self, response: Response, results: list[Any]) -> list[Any]:
            return [*results, {"n": len(results)}]

    item = {"k": kind}

    def generator(self: Any, response: Response) -> Iterator[dict[str, str]]:
        yield item

    async def async_gen(self: Any, response: Response) -> Any:
        await asyncio.sleep(0)
        yield item

    async def coroutine(self: Any, response: Response) -> Any:
        await asyncio.sleep(0)
        return [item]

    callbacks: dict[str, Any] = {
        "generator": generator,
        "list": lambda self, response: [item],
        "single": lambda self, response: item,
        "none": lambda self, response: None,
        "async gen": async_gen,
        "coroutine": coroutine,
    }
    Kinds.cb = callbacks[kind]  # type: ignore[attr-defined]
    url = "http://site.test/a.html"
    body = b'<a href="/b.html">b</a>'
    request = Request(url, meta={"rule": 0})
    response = Response(url, 200, CIMultiDict({"Content-Type": "text/html"}), body, request)
    spider = Kinds()
    result = spider._rule_callback(response)
    outputs = [o async for o in outputs_of(result)]
    expected_items = [] if kind == "none" else [item]
    assert outputs[:-1] == [*expected_items, {"n": len(expected_items)}]
    assert isinstance(outputs[-1], Request) and outputs[-1].url == "http://site.test/b.html"
    sync = kind in ("generator", "list", "single", "none")
    assert isinstance(result, types.GeneratorType) is sync
