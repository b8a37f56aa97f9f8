"""Crawl limits and exit codes from the command line, as a subprocess running this
tree: ``--max-items``, ``--timeout``, and exit code 1 for an internal error."""

from __future__ import annotations

import asyncio
import os
import sys
import textwrap
from pathlib import Path

import orjson
import pytest
from aiohttp import web
from sites import link_graph_app, serve

import pooledcrawl

pytestmark = pytest.mark.timeout(120)

SRC = str(Path(pooledcrawl.__file__).resolve().parents[1])

SPIDER = """
from pooledcrawl import Request, Spider


class Graph(Spider):
    base = ""

    async def start(self):
        yield Request(self.base + "/p/0.html")

    def parse(self, response):
        yield {"url": response.url}
        yield from response.follow_all(css="a")


class BrokenPipeline:
    def open(self, spider):
        raise RuntimeError("the pipeline's database is gone")

    def process_item(self, item, spider):
        return item


class Broken(Graph):
    pipelines = [BrokenPipeline]
"""


async def crawl(tmp_path: Path, *args: str) -> tuple[int, str]:
    (tmp_path / "spider.py").write_text(textwrap.dedent(SPIDER))
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "pooledcrawl",
        "crawl",
        *args,
        cwd=tmp_path,
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.PIPE,
        env={**os.environ, "PYTHONPATH": SRC},
    )
    async with asyncio.timeout(90):
        _, err = await proc.communicate()
    assert proc.returncode is not None
    return proc.returncode, err.decode()


async def test_max_items_from_the_cli_stops_at_exactly_that_many(tmp_path: Path) -> None:
    async with serve(link_graph_app(200)) as base:
        code, err = await crawl(
            tmp_path,
            "spider.py:Graph",
            "-a",
            f"base={base}",
            "--max-items",
            "7",
            "-o",
            "out.jsonl",
            "--stats",
            "stats.json",
        )
    assert code == 0, err
    assert len((tmp_path / "out.jsonl").read_bytes().splitlines()) == 7
    stats = orjson.loads((tmp_path / "stats.json").read_bytes())
    assert stats["items"] == 7 and stats["finish_reason"] == "max_items reached"


async def test_timeout_from_the_cli_stops_a_crawl_that_would_go_on(tmp_path: Path) -> None:
    async def slow(request: web.Request) -> web.Response:
        await asyncio.sleep(0.2)
        i = int(request.match_info["i"])
        return web.Response(text=f'<a href="/p/{i + 1}.html">n</a>', content_type="text/html")

    app = web.Application()
    app.router.add_get(r"/p/{i:\d+}.html", slow)  # an endless chain of pages
    async with serve(app) as base:
        code, err = await crawl(
            tmp_path,
            "spider.py:Graph",
            "-a",
            f"base={base}",
            "--timeout",
            "1.5",
            "--stats",
            "stats.json",
        )
    assert code == 0, err
    stats = orjson.loads((tmp_path / "stats.json").read_bytes())
    assert stats["finish_reason"] == "max_duration reached"
    assert stats["pages"] >= 1


async def test_an_internal_error_exits_1_with_the_error_logged(tmp_path: Path) -> None:
    async with serve(link_graph_app(5)) as base:
        code, err = await crawl(tmp_path, "spider.py:Broken", "-a", f"base={base}")
    assert code == 1
    assert "internal error" in err and "the pipeline's database is gone" in err
