"""Running a spider from a script (run, run_async) and from the CLI, with a middleware
and an extension defined in the spider's own file."""

from __future__ import annotations

import asyncio
import os
import sys
import textwrap
from collections.abc import AsyncIterator
from pathlib import Path

import orjson
import pytest
from aiohttp import web
from sites import serve

import pooledcrawl
from pooledcrawl import Response, Spider, UsageError, run, run_async

pytestmark = pytest.mark.timeout(120)

#: the directory holding this tree's ``pooledcrawl`` package, for subprocesses
SRC = str(Path(pooledcrawl.__file__).resolve().parents[1])

SPIDER_FILE = '''
from pooledcrawl import Request, Spider, signals


class Sign:
    """Adds a header the test server checks."""

    async def process_request(self, request, spider):
        request.headers = {**(request.headers or {}), "X-Token": "let-me-in"}


class CountItems:
    """Counts item_scraped and writes the count next to the output when the crawl ends."""

    def __init__(self, crawler):
        self.count = 0
        self.path = crawler.spider.count_file
        crawler.signals.connect(self.scraped, signals.item_scraped)
        crawler.signals.connect(self.closed, signals.spider_closed)

    @classmethod
    def from_crawler(cls, crawler):
        return cls(crawler)

    def scraped(self, item, spider):
        self.count += 1

    def closed(self, spider, reason):
        with open(self.path, "w") as f:
            f.write(f"{self.count} {reason}")


class Guarded(Spider):
    name = "guarded"
    base = ""
    count_file = ""
    custom_settings = {"middlewares": [Sign], "extensions": [CountItems], "concurrency": 4}

    async def start(self):
        yield Request(self.base + "/p/0")

    def parse(self, response):
        yield {"url": response.url}
        yield from response.follow_all(css="a")
'''

SCRIPT = """
import sys
import pooledcrawl
from guarded_spider import Guarded

stats = pooledcrawl.run(
    Guarded,
    output=sys.argv[2],
    spider_args={"base": sys.argv[1], "count_file": sys.argv[3]},
)
print(stats.items, stats.finish_reason)
"""


def guarded_app(pages: int) -> tuple[web.Application, list[str]]:
    """Pages link to the next; a request without the token gets a 403."""
    refused: list[str] = []

    async def page(request: web.Request) -> web.Response:
        if request.headers.get("X-Token") != "let-me-in":
            refused.append(request.path)
            raise web.HTTPForbidden()
        i = int(request.match_info["i"])
        link = f'<a href="/p/{i + 1}">next</a>' if i + 1 < pages else ""
        return web.Response(text=f"<p>{i}</p>{link}", content_type="text/html")

    app = web.Application()
    app.router.add_get(r"/p/{i:\d+}", page)
    return app, refused


async def python(*args: str, cwd: Path) -> tuple[int, str, str]:
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        *args,
        cwd=cwd,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        env={**os.environ, "PYTHONPATH": os.pathsep.join([str(cwd), SRC])},
    )
    async with asyncio.timeout(90):
        out, err = await proc.communicate()
    assert proc.returncode is not None
    return proc.returncode, out.decode(), err.decode()


def lines(path: Path) -> list[dict[str, object]]:
    return [orjson.loads(line) for line in path.read_bytes().splitlines()]


async def test_a_spider_file_with_a_middleware_and_an_extension_from_the_cli(
    tmp_path: Path,
) -> None:
    (tmp_path / "guarded_spider.py").write_text(textwrap.dedent(SPIDER_FILE))
    app, refused = guarded_app(8)
    async with serve(app) as base:
        code, _, err = await python(
            "-m",
            "pooledcrawl",
            "crawl",
            "guarded_spider.py",
            "-o",
            "out.jsonl",
            "-a",
            f"base={base}",
            "-a",
            "count_file=count.txt",
            cwd=tmp_path,
        )
    assert code == 0, err
    assert refused == []  # the middleware signed every request
    assert len(lines(tmp_path / "out.jsonl")) == 8
    assert (tmp_path / "count.txt").read_text() == "8 finished"


async def test_the_same_spider_from_a_script_through_run(tmp_path: Path) -> None:
    (tmp_path / "guarded_spider.py").write_text(textwrap.dedent(SPIDER_FILE))
    (tmp_path / "script.py").write_text(textwrap.dedent(SCRIPT))
    app, refused = guarded_app(6)
    async with serve(app) as base:
        code, out, err = await python("script.py", base, "items.jsonl", "count.txt", cwd=tmp_path)
    assert code == 0, err
    assert out.split() == ["6", "finished"]
    assert refused == []
    assert len(lines(tmp_path / "items.jsonl")) == 6
    assert (tmp_path / "count.txt").read_text() == "6 finished"


class Pages(Spider):
    custom_settings = {"concurrency": 2, "max_pages": 100}

    def parse(self, response: Response) -> object:
        yield {"url": response.url}
        yield from response.follow_all(css="a")


async def test_run_async_in_a_running_loop_layers_settings_over_the_spider(
    tmp_path: Path,
) -> None:
    app, _ = guarded_app(10)
    seen: list[str] = []

    class Sign:
        async def process_request(self, request: pooledcrawl.Request, spider: Spider) -> None:
            seen.append(request.url)
            request.headers = {"X-Token": "let-me-in"}

    out = tmp_path / "items.jsonl"
    out.write_bytes(b'{"url": "kept"}\n')
    async with serve(app) as base:

        class Start(Pages):
            start_urls = [f"{base}/p/0"]

        stats = await run_async(
            Start,
            settings={"max_pages": 4, "middlewares": [Sign]},  # wins over custom_settings
            output=[str(out)],
        )
    assert stats.pages == 4 and stats.finish_reason == "max_pages reached"
    assert lines(out)[0] == {"url": "kept"}  # appended, as -o does
    assert len(lines(out)) == 1 + stats.items
    assert len(seen) >= 4


async def test_run_async_overwrite_acts_as_capital_o(tmp_path: Path) -> None:
    app, _ = guarded_app(3)
    out = tmp_path / "items.jsonl"
    out.write_bytes(b'{"url": "old"}\n')

    class Sign:
        async def process_request(self, request: pooledcrawl.Request, spider: Spider) -> None:
            request.headers = {"X-Token": "let-me-in"}

    async with serve(app) as base:

        class Start(Pages):
            start_urls = [f"{base}/p/0"]

        stats = await run_async(
            Start, settings={"middlewares": [Sign]}, output=str(out), overwrite=True
        )
    assert stats.items == 3
    assert [item["url"] for item in lines(out)] == [f"{base}/p/{i}" for i in range(3)]


def test_run_from_synchronous_code(tmp_path: Path) -> None:
    class Nothing(Spider):
        start_urls: list[str] = []

    stats = run(Nothing, settings={"concurrency": 1})
    assert stats.requests == 0 and stats.finish_reason == "finished"


def test_run_crawls_on_the_loop_whose_timers_fire_on_time() -> None:
    from pooledcrawl.engine.eventloop import TimerfdSelector, _libc

    selectors: list[object] = []

    class Looks(Spider):
        async def start(self) -> AsyncIterator[pooledcrawl.Request]:
            selectors.append(getattr(asyncio.get_running_loop(), "_selector", None))
            return
            yield

    run(Looks, settings={"concurrency": 1})
    assert len(selectors) == 1
    assert isinstance(selectors[0], TimerfdSelector) or _libc() is None


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda: run(object), "run\\(\\) needs a Spider subclass"),  # type: ignore[arg-type]
        (lambda: run(Pages, settings={"concurency": 2}), "did you mean 'concurrency'"),
        (lambda: run(Pages, profile="no-such-profile"), "unknown profile"),
        (lambda: run(Pages, output="items.xml"), "unsupported output"),
    ],
)
def test_run_reports_user_errors_as_usage_errors(call: object, message: str) -> None:
    with pytest.raises(UsageError, match=message):
        call()  # type: ignore[operator]
