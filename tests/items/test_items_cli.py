"""Items from the command line: several -o outputs (PostgreSQL, CSV, JSON lines), a
refused pool, and Ctrl-C (once: graceful; twice: immediate) losing no item."""

from __future__ import annotations

import asyncio
import csv
import signal
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import asyncpg
import orjson
import pytest
from aiohttp import web
from sites import link_graph_app, link_graph_page, serve

SPIDER = """
from pooledcrawl import Request, Spider


class Graph(Spider):
    name = "graph"

    async def start(self):
        yield Request(self.base + "/p/0.html")

    def parse(self, response):
        yield {
            "url": response.url,
            "name": response.css("h1::text").get(),
            "price": float(response.css(".price::text").get()),
            "links": {"count": len(response.css("a"))},
        }
        yield from response.follow_all(css="a")
"""


@pytest.fixture
def spider_file(tmp_path: Path) -> Path:
    path = tmp_path / "graph_spider.py"
    path.write_text(SPIDER)
    return path


@pytest.fixture
async def pg(postgres_dsn: str, unique_name: str) -> AsyncIterator[asyncpg.Connection]:
    conn = await asyncpg.connect(postgres_dsn)
    yield conn
    await conn.execute(f'DROP TABLE IF EXISTS "{unique_name}"')
    await conn.close()


async def crawl(*args: str, cwd: Path) -> asyncio.subprocess.Process:
    return await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "pooledcrawl",
        "crawl",
        *args,
        cwd=cwd,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )


async def test_crawl_to_postgresql_csv_and_json_lines_at_once(
    tmp_path: Path,
    spider_file: Path,
    pg: asyncpg.Connection,
    postgres_dsn: str,
    unique_name: str,
) -> None:
    async with serve(link_graph_app(300)) as base:
        proc = await crawl(
            str(spider_file),
            *("-a", f"base={base}"),
            *("-o", f"{postgres_dsn}?table={unique_name}"),
            *("-o", "items.csv", "-o", "items.jsonl"),
            *("--fields", "url,name,price,links", "--stats", "stats.json", "--pg-monitor"),
            *("-s", "pg_batch_size=40", "--concurrency", "8"),
            cwd=tmp_path,
        )
        _, err = await asyncio.wait_for(proc.communicate(), 120)
    assert proc.returncode == 0, err.decode()

    lines = [orjson.loads(line) for line in (tmp_path / "items.jsonl").read_bytes().splitlines()]
    rows = await pg.fetch(f'SELECT url, data::text AS d FROM "{unique_name}"')
    with (tmp_path / "items.csv").open(newline="") as handle:
        table = list(csv.DictReader(handle))
    assert len(lines) == len(rows) == len(table) == 300
    assert {r["url"]: orjson.loads(r["d"]) for r in rows} == {i["url"]: i for i in lines}
    by_url = {line["url"]: line for line in lines}
    for row in table:
        line = by_url[row["url"]]
        assert row["name"] == line["name"] and float(row["price"]) == line["price"]
        assert orjson.loads(row["links"]) == line["links"]
    stats = orjson.loads((tmp_path / "stats.json").read_bytes())
    assert stats["items"] == 300
    assert [s["type"] for s in stats["sinks"]] == ["postgresql", "csv", "jsonl"]
    assert stats["sinks"][0]["rows"] == 300 and "batches_retried" in stats["sinks"][0]
    assert stats["sinks"][0]["monitor"]["samples"] == 0  # --pg-monitor: on, every 30 s
    assert stats["pipelines"]["dropped"] == 0


async def test_an_impossible_pool_is_one_line_and_exit_2(
    tmp_path: Path, spider_file: Path, postgres_dsn: str, unique_name: str
) -> None:
    proc = await crawl(
        str(spider_file),
        *("-a", "base=http://127.0.0.1:9"),
        *("-o", f"{postgres_dsn}?table={unique_name}", "-O", "items.jsonl"),
        *("-s", "pg_workers=5000"),
        cwd=tmp_path,
    )
    _, err = await asyncio.wait_for(proc.communicate(), 60)
    assert proc.returncode == 2
    lines = err.decode().strip().splitlines()
    assert len(lines) == 1 and "max_connections" in lines[0] and "postgres.workers" in lines[0]
    assert not (tmp_path / "items.jsonl").exists()  # refused before any file was touched


def slow_graph_app(n: int, delay: float) -> web.Application:
    async def page(request: web.Request) -> web.Response:
        await asyncio.sleep(delay)
        i = int(request.match_info["i"])
        return web.Response(text=link_graph_page(i, n), content_type="text/html")

    app = web.Application()
    app.router.add_get(r"/p/{i:\d+}.html", page)
    return app


async def lock_waiters(pg: asyncpg.Connection, app_name: str) -> int:
    count: int = await pg.fetchval(
        "SELECT count(*) FROM pg_stat_activity "
        "WHERE application_name = $1 AND wait_event_type = 'Lock'",
        app_name,
    )
    return count


async def until(predicate: Any, what: str) -> None:
    for _ in range(1000):
        if await predicate():
            return
        await asyncio.sleep(0.02)
    raise AssertionError(f"timed out waiting for {what}")


@pytest.mark.parametrize("presses", [1, 2], ids=["ctrl-c", "ctrl-c-twice"])
async def test_ctrl_c_loses_no_item(
    presses: int,
    tmp_path: Path,
    spider_file: Path,
    pg: asyncpg.Connection,
    postgres_dsn: str,
    unique_name: str,
) -> None:
    """Rows stay pending (big batch, long interval) until Ctrl-C. Twice: the test locks
    the table so the graceful flush is provably still waiting when the second press
    comes, and lets go once the emergency write waits too."""
    app_name = f"pooledcrawl:{unique_name}"
    locker = await asyncpg.connect(postgres_dsn)
    try:
        async with serve(slow_graph_app(3000, delay=0.01)) as base:
            proc = await crawl(
                str(spider_file),
                *("-a", f"base={base}"),
                *("-o", f"{postgres_dsn}?table={unique_name}", "-O", "items.jsonl"),
                *("-s", "pg_batch_size=1000", "-s", "pg_flush_interval=60"),
                *("--concurrency", "4", "--stats", "stats.json"),
                cwd=tmp_path,
            )
            assert proc.stderr is not None
            seen = b""
            while b"writing items to" not in seen:  # the sink is open: the crawl is under way
                seen += await asyncio.wait_for(proc.stderr.readline(), 60)
            await asyncio.sleep(0.5)
            if presses == 2:
                lock = locker.transaction()
                await lock.start()
                await locker.execute(f'LOCK TABLE "{unique_name}" IN ACCESS EXCLUSIVE MODE')
            proc.send_signal(signal.SIGINT)
            if presses == 2:
                await until(lambda: lock_waiters(pg, app_name), "the closing flush to wait")
                proc.send_signal(signal.SIGINT)
                await until(
                    lambda: _at_least(lock_waiters(pg, app_name), 2),
                    "the emergency write to wait",
                )
                await lock.rollback()
            _, err = await asyncio.wait_for(proc.communicate(), 120)
    finally:
        await locker.close()
    assert proc.returncode == 130, (seen + err).decode()
    path = b"before exiting" if presses == 2 else b"writing the last"
    assert path in err, err.decode()

    stats: dict[str, Any] = orjson.loads((tmp_path / "stats.json").read_bytes())
    lines = (tmp_path / "items.jsonl").read_bytes().splitlines()
    ids = await pg.fetchval(f'SELECT count(DISTINCT item_id) FROM "{unique_name}"')
    total = await pg.fetchval(f'SELECT count(*) FROM "{unique_name}"')
    assert 0 < stats["items"] < 3000  # stopped mid-crawl
    assert ids == total == len(lines) == stats["items"]


async def _at_least(count: Any, n: int) -> bool:
    return bool(await count >= n)
