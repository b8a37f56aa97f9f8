"""Each built-in behaviour is an ordinary middleware: on by default, and disabled
(mapped to None) or replaced through the ``middlewares`` setting. User agent and
default headers and robots.txt against a local aiohttp site; proxy bans are in
tests/proxy/test_proxy_engine.py, over its scripted transport."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from aiohttp import web
from sites import serve

from pooledcrawl import Engine, Request, Response, Settings, Spider
from pooledcrawl.errors import IgnoreRequest
from pooledcrawl.middleware.chain import BASE_MIDDLEWARES, BUILTIN_MIDDLEWARES
from pooledcrawl.settings import DEFAULT_USER_AGENT


def site() -> tuple[web.Application, list[web.Request]]:
    """``/`` links to ``/public`` and ``/private``; robots.txt disallows ``/private``."""
    seen: list[web.Request] = []

    async def robots(request: web.Request) -> web.Response:
        seen.append(request)
        return web.Response(text="User-agent: *\nDisallow: /private\n")

    async def page(request: web.Request) -> web.Response:
        seen.append(request)
        links = '<a href="/public">a</a><a href="/private">b</a>'
        return web.Response(text=f"<html><body>{links}</body></html>", content_type="text/html")

    app = web.Application()
    app.router.add_get("/robots.txt", robots)
    app.router.add_get("/{path:.*}", page)
    return app, seen


class FollowSpider(Spider):
    def parse(self, response: Response) -> Iterator[Any]:
        yield {"url": response.url}
        yield from response.follow_all(css="a")


async def crawl_site(**options: Any) -> tuple[list[web.Request], Engine]:
    app, seen = site()
    async with serve(app) as base:
        engine = Engine(FollowSpider(start_urls=[f"{base}/"]), Settings(concurrency=2, **options))
        await engine.run()
    return seen, engine


def test_every_builtin_is_listed_with_an_order() -> None:
    assert set(BASE_MIDDLEWARES) == set(BUILTIN_MIDDLEWARES)
    assert {"RobotsTxt", "DefaultHeaders", "UserAgent", "ProxyBan"} <= set(BASE_MIDDLEWARES)
    # a User-Agent among the default headers wins: DefaultHeaders runs first
    assert BASE_MIDDLEWARES["DefaultHeaders"] < BASE_MIDDLEWARES["UserAgent"]


# ---- user agent and default headers -----------------------------------------------------


async def test_user_agent_and_default_headers_are_sent_by_default() -> None:
    seen, _ = await crawl_site(default_headers={"X-Team": "crawl"})
    assert seen and {r.headers.get("User-Agent") for r in seen} == {DEFAULT_USER_AGENT}
    assert {r.headers.get("X-Team") for r in seen} == {"crawl"}


async def test_disabling_the_user_agent_middleware_sends_no_pooledcrawl_agent() -> None:
    seen, engine = await crawl_site(middlewares={"UserAgent": None})
    assert engine.stats.pages == 3
    agents = {r.headers.get("User-Agent", "") for r in seen}
    assert agents and not any("pooledcrawl" in agent for agent in agents)


async def test_disabling_default_headers_keeps_the_user_agent() -> None:
    seen, _ = await crawl_site(
        default_headers={"X-Team": "crawl"}, middlewares={"DefaultHeaders": None}
    )
    assert {r.headers.get("X-Team") for r in seen} == {None}
    assert {r.headers.get("User-Agent") for r in seen} == {DEFAULT_USER_AGENT}


class RotatingAgent:
    """A replacement: its own agent, whatever the settings say."""

    def process_default_headers(
        self, headers: dict[str, str], settings: Settings, spider: Spider
    ) -> dict[str, str]:
        return {**headers, "User-Agent": "MyBot/2.0 (+https://example.org/bot)"}


async def test_a_custom_user_agent_middleware_replaces_the_default() -> None:
    seen, _ = await crawl_site(middlewares={"UserAgent": None, RotatingAgent: 500})
    assert {r.headers.get("User-Agent") for r in seen} == {"MyBot/2.0 (+https://example.org/bot)"}


async def test_a_request_header_still_wins_over_the_defaults() -> None:
    class OwnAgent(Spider):
        async def start(self) -> Any:
            for url in self.start_urls:
                yield Request(url, headers={"User-Agent": "own/1"})

        def parse(self, response: Response) -> Iterator[Any]:
            yield {"url": response.url}

    app, seen = site()
    async with serve(app) as base:
        await Engine(OwnAgent(start_urls=[f"{base}/"]), Settings()).run()
    assert [r.headers.get("User-Agent") for r in seen] == ["own/1"]


# ---- robots.txt ---------------------------------------------------------------------------


async def test_robots_middleware_obeys_robots_txt_by_default() -> None:
    seen, engine = await crawl_site(obey_robots=True)
    paths = [r.path for r in seen]
    assert paths.count("/robots.txt") == 1 and "/private" not in paths and "/public" in paths
    assert engine.stats.extra["robots"]["disallowed"] == 1


async def test_disabling_the_robots_middleware_ignores_robots_txt() -> None:
    seen, engine = await crawl_site(obey_robots=True, middlewares={"RobotsTxt": None})
    paths = [r.path for r in seen]
    assert "/robots.txt" not in paths and "/private" in paths
    assert "robots" not in engine.stats.extra


class PathRules:
    """A replacement robots policy, Scrapy style: its own rules, per request."""

    def __init__(self) -> None:
        self.refused: list[str] = []

    async def process_request(self, request: Request, spider: Spider) -> None:
        if request.url.endswith("/public"):
            self.refused.append(request.url)
            raise IgnoreRequest("forbidden by PathRules")


async def test_a_custom_robots_middleware_replaces_the_default() -> None:
    seen, engine = await crawl_site(
        obey_robots=True, middlewares={"RobotsTxt": None, PathRules: 50}
    )
    paths = [r.path for r in seen]
    assert "/robots.txt" not in paths  # the built-in never ran
    assert "/private" in paths and "/public" not in paths
    rules = next(m for m in engine.middleware.middlewares if isinstance(m, PathRules))
    assert len(rules.refused) == 1
    assert engine.stats.errors["forbidden by PathRules"] == 1


# ---- bind(crawler) ------------------------------------------------------------------------


async def test_attached_components_are_bound_once_to_the_engine() -> None:
    class Recorder:
        def __init__(self) -> None:
            self.bound: list[Any] = []

        def bind(self, crawler: Any) -> None:
            self.bound.append(crawler)

    recorder = Recorder()
    engine = Engine(FollowSpider(start_urls=[]), Settings(), attached=[recorder])
    assert recorder.bound == [engine]
    await engine.run()
    assert recorder.bound == [engine]
