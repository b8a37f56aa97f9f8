"""BlockDetection as a middleware: on when something can be a block, keeps CAPTCHA pages
from the spider, disabled with ``{"BlockDetection": None}``, replaceable."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from typing import Any

from aiohttp import web
from sites import serve

from pooledcrawl import Engine, Request, Response, Settings, Spider
from pooledcrawl.middleware.builtin import BlockDetection
from pooledcrawl.proxy.blocks import BlockDecision


def flaky_captcha_app(captchas_per_page: int) -> tuple[web.Application, Counter[str]]:
    """Each page answers a CAPTCHA (200) ``captchas_per_page`` times, then the page."""
    hits: Counter[str] = Counter()

    async def page(request: web.Request) -> web.Response:
        i = int(request.match_info["i"])
        hits[request.path] += 1
        if hits[request.path] <= captchas_per_page:
            return web.Response(text="<title>Robot?</title>please solve the CAPTCHA",
                                content_type="text/html")  # fmt: skip
        links = "".join(f'<a href="/p/{j}.html">x</a>' for j in range(i + 1, min(i + 3, 20)))
        return web.Response(text=f"<title>Page {i}</title>{links}", content_type="text/html")

    app = web.Application()
    app.router.add_get(r"/p/{i:\d+}.html", page)
    return app, hits


class Titles(Spider):
    def __init__(self, start: str, **kw: Any) -> None:
        super().__init__(**kw)
        self.start_url = start
        self.titles: list[str] = []

    async def start(self) -> Any:
        yield Request(self.start_url)

    def parse(self, response: Response) -> Iterator[Any]:
        self.titles.append(response.css("title::text").get() or "")
        yield from response.follow_all(css="a")


SETTINGS = dict(
    concurrency=4, retry_backoff_base=0.001, retry_backoff_cap=0.01, ban_patterns=["captcha"]
)


async def test_blocks_never_reach_the_spider() -> None:
    app, hits = flaky_captcha_app(2)
    async with serve(app) as base:
        spider = Titles(f"{base}/p/0.html")
        engine = Engine(spider, Settings(**SETTINGS))  # type: ignore[arg-type]
        assert "BlockDetection" in repr(engine.middleware)
        stats = await engine.run()
    assert len(spider.titles) == 20 and not any("Robot" in t for t in spider.titles)
    assert stats.extra["blocks"]["total"] == 40 == stats.extra["blocks"]["retried"]
    assert stats.extra["blocks"]["kinds"] == {"pattern": 40}
    assert stats.failed == 0 and set(hits.values()) == {3}


async def test_too_many_blocks_give_the_request_up_as_blocked() -> None:
    app, _ = flaky_captcha_app(100)
    async with serve(app) as base:
        spider = Titles(f"{base}/p/0.html")
        settings = Settings(**SETTINGS, max_block_retries=2, max_retries=1)  # type: ignore[arg-type]
        stats = await Engine(spider, settings).run()
    assert spider.titles == [] and stats.failed == 1 and stats.errors["Blocked"] == 1
    assert stats.requests == 4  # the first try, 2 free retries, 1 from the budget


async def test_disabled_or_replaced() -> None:
    app, _ = flaky_captcha_app(1)
    again, _ = flaky_captcha_app(1)
    async with serve(app) as base, serve(again) as base_again:
        off = Titles(f"{base}/p/0.html")
        settings = Settings(**SETTINGS, middlewares={"BlockDetection": None})  # type: ignore[arg-type]
        await Engine(off, settings).run()

        class OnlyRobots(BlockDetection):
            def detect(self, response: Response) -> BlockDecision | None:
                title = response.css("title::text").get() or ""
                return BlockDecision("spider", "robot title") if "Robot" in title else None

        mine = Titles(f"{base_again}/p/0.html")
        settings = Settings(
            **{**SETTINGS, "ban_patterns": ["never-matches"]},  # type: ignore[arg-type]
            middlewares={"BlockDetection": None, OnlyRobots: 950},
        )
        stats = await Engine(mine, settings).run()
    assert off.titles == ["Robot?"]  # no detection: the CAPTCHA is parsed as the page
    assert len(mine.titles) == 20 and stats.extra["blocks"]["kinds"] == {"spider": 20}


async def test_spider_is_blocked_hook_turns_detection_on() -> None:
    app, _ = flaky_captcha_app(1)

    class Hooked(Titles):
        def is_blocked(self, response: Response) -> str | None:
            return "robot check" if b"solve" in response.body else None

    async with serve(app) as base:
        spider = Hooked(f"{base}/p/0.html")
        settings = Settings(concurrency=4, retry_backoff_base=0.001, retry_backoff_cap=0.01)
        stats = await Engine(spider, settings).run()
    assert len(spider.titles) == 20 and stats.extra["blocks"]["kinds"] == {"spider": 20}
