"""Identity (User-Agent, per-domain cookies), URL canonicalization for dedup, and the
close-on-errors condition: crawls of local servers on 127.0.0.1."""

from __future__ import annotations

import asyncio
import subprocess
import sys
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson
import pytest
from aiohttp import web
from sites import serve

from pooledcrawl import Engine, Response, Settings, Spider, Stats, __version__
from pooledcrawl.http.url import canonical_or_raise, canonicalize_url


async def crawl(spider: Spider, **settings: Any) -> Stats:
    options: dict[str, Any] = {"concurrency": 2, "autothrottle": False, **settings}
    async with asyncio.timeout(60):
        return await Engine(spider, Settings(**options)).run()


# ---- User-Agent and cookies ----------------------------------------------------------


def echo_app(seen: list[dict[str, str]]) -> web.Application:
    """``/set`` sets a host cookie and one for another domain; every page records the
    request's User-Agent and Cookie headers."""

    async def page(request: web.Request) -> web.Response:
        seen.append(
            {
                "path": request.path,
                "ua": request.headers.get("User-Agent", ""),
                "cookie": request.headers.get("Cookie", ""),
            }
        )
        response = web.Response(text='<a href="/check">check</a>', content_type="text/html")
        if request.path == "/set":
            response.set_cookie("session", "s1")
            response.headers.add("Set-Cookie", "foreign=f1; Domain=example.com; Path=/")
        return response

    app = web.Application()
    app.router.add_get("/{tail:.*}", page)
    return app


class Follow(Spider):
    name = "follow"

    def parse(self, response: Response) -> Iterator[Any]:
        yield from response.follow_all(css="a")


@pytest.mark.parametrize("cookies", [True, False])
async def test_user_agent_and_cookies(cookies: bool) -> None:
    seen: list[dict[str, str]] = []
    async with serve(echo_app(seen)) as base:
        await crawl(Follow(start_urls=[f"{base}/set"]), concurrency=1, cookies=cookies)
    by_path = {entry["path"]: entry for entry in seen}
    assert by_path["/set"]["ua"] == f"pooledcrawl/{__version__} (+https://pooledcrawl.dev/bot)"
    # The host's own cookie comes back when cookies are on; one set for another
    # domain never does.
    assert by_path["/check"]["cookie"] == ("session=s1" if cookies else "")


async def test_the_user_agent_setting_is_sent() -> None:
    seen: list[dict[str, str]] = []
    async with serve(echo_app(seen)) as base:
        await crawl(Follow(start_urls=[f"{base}/x"]), user_agent="MyBot/1.0")
    assert {entry["ua"] for entry in seen} == {"MyBot/1.0"}


# ---- canonical URLs for dedup ---------------------------------------------------------


@pytest.mark.parametrize(
    ("url", "canonical"),
    [
        ("HTTP://Example.COM:80/a?b=2&a=1#frag", "http://example.com/a?a=1&b=2"),
        ("https://example.com:443", "https://example.com/"),
        ("https://example.com:8443/x", "https://example.com:8443/x"),
        ("http://example.com/%7Euser/a%2fb", "http://example.com/~user/a%2Fb"),
        ("http://example.com/?utm_source=x&id=3", "http://example.com/?id=3&utm_source=x"),
    ],
)
def test_canonical_form(url: str, canonical: str) -> None:
    assert canonical_or_raise(url) == canonical


def test_tracking_parameters_dropped_on_request() -> None:
    url = "http://example.com/p?utm_source=a&UTM_Medium=b&id=3&utm_campaign=c"
    assert canonicalize_url(url, drop_tracking=True) == "http://example.com/p?id=3"


def test_canonicalization_is_cheap_for_already_canonical_links() -> None:
    # Not a timing assertion: the fast path must return the very same string object,
    # i.e. it did no parsing at all.
    url = "http://example.com/catalogue/page-2.html"
    assert canonical_or_raise(url) is url


@pytest.mark.parametrize("drop_tracking", [False, True])
async def test_variants_of_one_url_are_fetched_once(drop_tracking: bool) -> None:
    hits: Counter[str] = Counter()

    async def page(request: web.Request) -> web.Response:
        hits[request.path_qs] += 1
        port = request.url.port
        links = [
            "/x?b=2&a=1",
            "/x?a=1&b=2#part",
            f"HTTP://127.0.0.1:{port}/x?a=1&b=2",
            "/y?utm_source=news",
            "/y",
        ]
        body = "".join(f'<a href="{href}">l</a>' for href in links)
        return web.Response(text=body, content_type="text/html")

    app = web.Application()
    app.router.add_get("/{tail:.*}", page)
    async with serve(app) as base:
        stats = await crawl(Follow(start_urls=[f"{base}/"]), drop_tracking_params=drop_tracking)
    assert hits["/x?b=2&a=1"] + hits["/x?a=1&b=2"] == 1
    if drop_tracking:
        assert hits["/y"] + hits["/y?utm_source=news"] == 1
    else:
        assert hits["/y"] == hits["/y?utm_source=news"] == 1
    assert stats.pages == (3 if drop_tracking else 4)


# ---- close conditions -------------------------------------------------------------------


class Failing(Spider):
    name = "failing"

    def parse(self, response: Response) -> Iterator[Any]:
        yield from response.follow_all(css="a")
        raise ValueError("broken page")


def chain_app() -> web.Application:
    async def page(request: web.Request) -> web.Response:
        n = int(request.match_info["n"])
        return web.Response(text=f'<a href="/c/{n + 1}">next</a>', content_type="text/html")

    app = web.Application()
    app.router.add_get("/c/{n}", page)
    return app


async def test_close_on_errors_stops_after_that_many_errors() -> None:
    async with serve(chain_app()) as base:
        stats = await crawl(Failing(start_urls=[f"{base}/c/0"]), concurrency=1, close_on_errors=3)
    assert stats.errors == {"ValueError": 3}
    assert stats.pages == 3
    assert stats.finish_reason == "close_on_errors reached (3 errors)"


def test_close_on_errors_from_the_command_line(tmp_path: Path) -> None:
    spider = tmp_path / "spider.py"
    spider.write_text(
        "from pooledcrawl import Spider\n"
        "class S(Spider):\n"
        "    name = 's'\n"
        "    start_urls = ['http://127.0.0.1:9/']\n"
        "    def parse(self, response):\n"
        "        return None\n"
    )
    bad = subprocess.run(
        [sys.executable, "-m", "pooledcrawl", "crawl", str(spider), "--close-on-errors", "0"],
        capture_output=True,
        timeout=60,
    )
    assert bad.returncode == 2 and b"--close-on-errors" in bad.stderr
    stats_file = tmp_path / "stats.json"
    run = subprocess.run(
        [
            *(sys.executable, "-m", "pooledcrawl", "crawl", str(spider)),
            *("--close-on-errors", "1", "--stats", str(stats_file), "-s", "max_retries=0"),
        ],
        capture_output=True,
        timeout=60,
    )
    assert run.returncode == 0, run.stderr.decode()
    data = orjson.loads(stats_file.read_bytes())
    assert data["finish_reason"] == "close_on_errors reached (1 errors)"
