"""robots.txt against a local server: allow, disallow, Crawl-delay, 5xx, timeout, 4xx."""

from __future__ import annotations

import asyncio
import itertools
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from sites import serve

from pooledcrawl import Engine, Request, Response, Settings, Spider, Stats
from pooledcrawl.hygiene import robots as robots_module
from pooledcrawl.hygiene.robots import (
    CrawlDelayPolicy,
    Outcome,
    RobotsRules,
    _Host,
    classify,
    robots_agent,
)
from pooledcrawl.throttle.fixed import FixedPolicy

PAGES = ["/a", "/b", "/private/x", "/private/y", "/c"]


class Site:
    """``/`` links to PAGES; ``/robots.txt`` answers as ``robots`` says on each attempt.
    Every hit is logged with the server's monotonic time."""

    def __init__(self, robots: Callable[[int], tuple[int, str]] | None) -> None:
        self.robots = robots
        self.robots_delay: list[float] = []  # seconds to stall each robots.txt attempt
        self.hits: list[tuple[str, float]] = []

    def app(self) -> web.Application:
        async def handler(request: web.Request) -> web.Response:
            path = request.path
            self.hits.append((path, time.monotonic()))
            if path == "/robots.txt":
                attempt = sum(1 for p, _ in self.hits if p == "/robots.txt")
                if attempt <= len(self.robots_delay):
                    await asyncio.sleep(self.robots_delay[attempt - 1])
                if self.robots is None:
                    raise web.HTTPNotFound()
                status, body = self.robots(attempt)
                return web.Response(status=status, text=body, content_type="text/plain")
            if path == "/":
                links = "".join(f'<a href="{p}">{p}</a>' for p in PAGES)
                return web.Response(
                    text=f"<html><body>{links}</body></html>", content_type="text/html"
                )
            return web.Response(text="<html><body>page</body></html>", content_type="text/html")

        app = web.Application()
        app.router.add_get("/{tail:.*}", handler)
        return app

    def paths(self) -> list[str]:
        return [path for path, _ in self.hits]


class Crawler(Spider):
    name = "robots-test"

    def parse(self, response: Response) -> Iterator[Any]:
        yield {"url": response.url}
        yield from response.follow_all(css="a")
        if response.url.endswith("/"):
            yield response.follow("/private/z", meta={"dont_obey_robotstxt": True})


async def crawl(site: Site, tmp_path: Path, **settings: Any) -> Stats:
    async with serve(site.app()) as base:
        spider = Crawler(start_urls=[f"{base}/"])
        options: dict[str, Any] = {
            "concurrency": 4,
            "obey_robots": True,
            "robots_retry_delay": 0.2,
            "autothrottle": False,
            **settings,
        }
        engine = Engine(spider, Settings(**options))
        async with asyncio.timeout(60):
            return await engine.run()


def rules(text: str) -> Callable[[int], tuple[int, str]]:
    return lambda attempt: (200, text)


# ---- against the server ----------------------------------------------------------------


async def test_disallowed_paths_are_not_fetched_and_robots_is_fetched_once(
    tmp_path: Path,
) -> None:
    site = Site(rules("User-agent: *\nDisallow: /private\n"))
    stats = await crawl(site, tmp_path)
    paths = site.paths()
    assert paths.count("/robots.txt") == 1 and paths[0] == "/robots.txt"
    assert "/private/x" not in paths and "/private/y" not in paths
    assert "/private/z" in paths  # meta dont_obey_robotstxt
    assert {"/", "/a", "/b", "/c"} <= set(paths)
    assert stats.extra["robots"] == {
        "fetched": 1,
        "allow_all": 0,
        "unreachable": 0,
        "disallowed": 2,
    }
    assert stats.pages == 5  # /, /a, /b, /c, /private/z


async def test_the_group_for_our_agent_wins_over_the_star_group(tmp_path: Path) -> None:
    text = "User-agent: *\nDisallow: /\n\nUser-agent: pooledcrawl\nDisallow: /b\n"
    site = Site(rules(text))
    await crawl(site, tmp_path)
    paths = set(site.paths())
    assert "/b" not in paths and {"/", "/a", "/c", "/private/x"} <= paths


async def test_crawl_delay_spaces_the_requests_to_the_host(tmp_path: Path) -> None:
    site = Site(rules("User-agent: *\nCrawl-delay: 0.3\n"))
    stats = await crawl(site, tmp_path, concurrency=8)
    pages = [t for path, t in site.hits if path != "/robots.txt"]
    assert len(pages) == 7
    gaps = [b - a for a, b in itertools.pairwise(pages)]
    # The pacer holds each send until 0.3 s after the previous one; the server may
    # see them a little closer together, never much.
    assert min(gaps) >= 0.25
    (snapshot,) = stats.domains.values()
    assert snapshot["crawl_delay"] == 0.3


async def test_a_5xx_robots_means_no_crawl_until_a_retry_succeeds(tmp_path: Path) -> None:
    answers = {1: (503, "busy"), 2: (200, "User-agent: *\nDisallow: /private\n")}
    site = Site(lambda attempt: answers[attempt])
    stats = await crawl(site, tmp_path)
    paths = site.paths()
    # Nothing but the start page's robots.txt until the second attempt, and then
    # the rules of the second attempt hold.
    assert paths[:2] == ["/robots.txt", "/robots.txt"]
    assert "/private/x" not in paths and "/a" in paths
    assert stats.extra["robots"]["unreachable"] == 1 and stats.extra["robots"]["fetched"] == 2


async def test_a_robots_timeout_means_no_crawl_until_a_retry_succeeds(tmp_path: Path) -> None:
    site = Site(rules("User-agent: *\nDisallow: /private\n"))
    site.robots_delay = [5.0]  # the first attempt hangs past robots_timeout
    stats = await crawl(site, tmp_path, robots_timeout=0.3)
    paths = site.paths()
    assert paths[:2] == ["/robots.txt", "/robots.txt"]
    assert "/private/x" not in paths and "/c" in paths
    assert stats.extra["robots"]["unreachable"] == 1


async def test_a_4xx_robots_allows_everything(tmp_path: Path) -> None:
    site = Site(None)  # 404
    stats = await crawl(site, tmp_path)
    assert {"/private/x", "/private/y"} <= set(site.paths())
    assert stats.extra["robots"]["allow_all"] == 1 and stats.extra["robots"]["disallowed"] == 0


async def test_a_host_unreachable_too_often_is_crawled_without_rules(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(robots_module, "MAX_ATTEMPTS", 2)
    site = Site(lambda attempt: (500, "down"))
    stats = await crawl(site, tmp_path, robots_retry_delay=0.05)
    assert site.paths().count("/robots.txt") == 2
    assert "/private/x" in site.paths()
    assert stats.extra["robots"]["unreachable"] == 2


async def test_robots_is_not_fetched_when_obey_robots_is_off(tmp_path: Path) -> None:
    site = Site(rules("User-agent: *\nDisallow: /\n"))
    stats = await crawl(site, tmp_path, obey_robots=False)
    assert "/robots.txt" not in site.paths() and stats.pages == 7
    assert "robots" not in stats.extra


# ---- pure parts ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("status", "retryable", "outcome"),
    [
        (200, True, Outcome.RULES),
        (204, True, Outcome.RULES),
        (301, True, Outcome.ALLOW_ALL),
        (401, True, Outcome.ALLOW_ALL),
        (403, True, Outcome.ALLOW_ALL),
        (404, True, Outcome.ALLOW_ALL),
        (429, True, Outcome.UNREACHABLE),
        (500, True, Outcome.UNREACHABLE),
        (503, True, Outcome.UNREACHABLE),
        (None, True, Outcome.UNREACHABLE),  # timeout, connection refused
        (None, False, Outcome.ALLOW_ALL),  # redirect loop, invalid URL
    ],
)
def test_classify_follows_googles_spec(
    status: int | None, retryable: bool, outcome: Outcome
) -> None:
    assert classify(status, retryable_error=retryable) is outcome


def test_the_agent_is_the_product_token_of_the_user_agent() -> None:
    assert robots_agent(Settings()) == "pooledcrawl"
    assert robots_agent(Settings(user_agent="MyBot/2.0 (+https://x.example)")) == "MyBot"
    assert robots_agent(Settings(robots_user_agent="other")) == "other"


def test_rules_read_crawl_delay_and_paths() -> None:
    parsed = RobotsRules("User-agent: *\nDisallow: /x\nCrawl-delay: 2.5\n", "pooledcrawl")
    assert parsed.crawl_delay == 2.5
    assert not parsed.allows("http://h/x/1") and parsed.allows("http://h/y")


def test_crawl_delay_policy_paces_sends_on_the_engine_clock() -> None:
    host = _Host("h")
    policy = CrawlDelayPolicy(FixedPolicy(4), host)
    policy.on_send(10.0)
    assert policy.ready_at() == 0.0  # no delay known yet
    host.crawl_delay = 2.0
    assert policy.ready_at() == 12.0 and policy.limit() == 4
    policy.on_send(12.0)
    assert policy.ready_at() == 14.0
    assert policy.snapshot()["crawl_delay"] == 2.0


def test_requests_keep_their_meta_key_name() -> None:
    request = Request("http://h/", meta={robots_module.DONT_OBEY: True})
    assert request.get_meta("dont_obey_robotstxt") is True
