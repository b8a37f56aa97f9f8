"""The development HTTP cache: its policy (pure, fake clock), its storage, and whole
crawls from the CLI that replay with the site gone."""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path

import orjson
import pytest
from aiohttp import web
from sites import serve

from pooledcrawl import Request
from pooledcrawl.cli.demo import DemoServer
from pooledcrawl.middleware.httpcache import (
    CachedResponse,
    CachePolicy,
    FilesystemCacheStorage,
    request_fingerprint,
)

ROOT = Path(__file__).resolve().parents[2]
BOOKSTORE = str(ROOT / "examples" / "bookstore.py")


# ---- policy -----------------------------------------------------------------------------
def test_normal_mode_serves_until_expiry_and_forever_without_one() -> None:
    policy = CachePolicy(expiration=60)
    assert policy.serves(stored_at=1000, now=1059.9)
    assert not policy.serves(stored_at=1000, now=1060)
    assert CachePolicy().serves(stored_at=0, now=10**9)


def test_refresh_never_serves_and_offline_always_does() -> None:
    assert not CachePolicy(mode="refresh").serves(stored_at=1000, now=1000)
    assert CachePolicy(mode="offline", expiration=1).serves(stored_at=0, now=10**9)


def test_ignored_statuses_and_offline_mode_store_nothing() -> None:
    policy = CachePolicy(ignore_statuses=frozenset({404, 500}))
    assert policy.stores(200) and policy.stores(301)
    assert not policy.stores(404)
    assert not CachePolicy(mode="offline").stores(200)


# ---- storage ----------------------------------------------------------------------------
def test_storage_round_trip_keeps_headers_body_and_version(tmp_path: Path) -> None:
    storage = FilesystemCacheStorage(tmp_path)
    entry = CachedResponse(
        url="http://h.test/a",
        status=200,
        headers=[("Content-Type", "text/html"), ("Set-Cookie", "a=1"), ("Set-Cookie", "b=2")],
        body=b"<p>\n\x00binary\n</p>",
        http_version="HTTP/2",
        stored_at=123.5,
    )
    storage.store("ab" * 20, entry)
    assert storage.load("ab" * 20) == entry
    assert storage.load("cd" * 20) is None
    assert not list(tmp_path.rglob(".tmp-*"))  # nothing half-written left behind


def test_a_torn_or_foreign_entry_is_a_miss_not_a_crash(tmp_path: Path) -> None:
    storage = FilesystemCacheStorage(tmp_path)
    for fingerprint, raw in (("aa" * 20, b'{"url": "x"'), ("bb" * 20, b"not json\nbody")):
        path = tmp_path / fingerprint[:2] / fingerprint
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(raw)
        assert storage.load(fingerprint) is None


def test_fingerprint_tells_method_url_and_body_apart_but_not_headers() -> None:
    get = request_fingerprint(Request("http://h.test/a"))
    assert get == request_fingerprint(Request("http://h.test/a", headers={"User-Agent": "x"}))
    assert get != request_fingerprint(Request("http://h.test/b"))
    assert get != request_fingerprint(Request("http://h.test/a", method="POST"))
    post_a = request_fingerprint(Request("http://h.test/a", method="POST", body=b"q=1"))
    assert post_a != request_fingerprint(Request("http://h.test/a", method="POST", body=b"q=2"))


# ---- whole crawls -----------------------------------------------------------------------
async def _crawl(*args: str) -> tuple[int, str]:
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "pooledcrawl", "crawl", *args, "--log-level", "WARNING",
        stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    async with asyncio.timeout(240):
        _, err = await proc.communicate()
    assert proc.returncode is not None
    return proc.returncode, err.decode(errors="replace")


def _items(path: Path) -> list[bytes]:
    return sorted(path.read_bytes().splitlines())


async def test_a_cached_crawl_reruns_with_the_site_stopped_and_yields_the_same_items(
    tmp_path: Path,
) -> None:
    cache = str(tmp_path / "cache")
    first, stats1 = tmp_path / "first.jsonl", tmp_path / "stats1.json"
    with DemoServer() as server:
        url = f"http://127.0.0.1:{server.port}/"
        code, err = await _crawl(
            BOOKSTORE, "-a", f"start={url}", "--cache", cache, "-O", str(first),
            "--stats", str(stats1),
        )  # fmt: skip
        assert code == 0, err
    stored = orjson.loads(stats1.read_bytes())["http_cache"]
    assert stored["stored"] > 500 and stored["hits"] == 0
    # The site is gone: a second run must come from the cache alone (robots.txt too,
    # or the bookstore spider, which obeys robots.txt, would hold every page back).
    for mode in ("normal", "offline"):
        again, stats2 = tmp_path / f"{mode}.jsonl", tmp_path / f"stats-{mode}.json"
        code, err = await _crawl(
            BOOKSTORE, "-a", f"start={url}", "--cache", cache, "--cache-mode", mode,
            "-O", str(again), "--stats", str(stats2),
        )  # fmt: skip
        assert code == 0, err
        assert _items(again) == _items(first)
        stats = orjson.loads(stats2.read_bytes())
        assert stats["http_cache"]["misses"] == 0
        assert stats["http_cache"]["hits"] == stored["stored"]
        assert not stats["errors"]


async def test_offline_mode_never_touches_the_network_and_a_miss_fails(tmp_path: Path) -> None:
    hits: list[str] = []

    async def page(request: web.Request) -> web.Response:
        hits.append(request.path)
        return web.Response(text="<a href='/b'>b</a>", content_type="text/html")

    app = web.Application()
    app.router.add_get("/{name}", page)
    stats_path = tmp_path / "stats.json"
    async with serve(app) as base:
        spider = tmp_path / "spider.py"
        spider.write_text(
            "from pooledcrawl import Spider\n"
            "class S(Spider):\n"
            f"    start_urls = ['{base}/a']\n"
            "    def parse(self, response):\n"
            "        yield {'url': response.url}\n"
        )
        code, err = await _crawl(
            str(spider), "--cache", str(tmp_path / "c"), "--cache-mode", "offline",
            "-O", str(tmp_path / "out.jsonl"), "--stats", str(stats_path),
        )  # fmt: skip
    assert hits == []
    stats = orjson.loads(stats_path.read_bytes())
    assert stats["http_cache"] == {"hits": 0, "misses": 1, "stored": 0}
    assert stats["failed"] == 1 and "CacheMiss" in " ".join(stats["errors"])
    assert code == 0, err


async def test_refresh_refetches_and_ignored_statuses_are_not_stored(tmp_path: Path) -> None:
    hits: list[str] = []

    async def page(request: web.Request) -> web.Response:
        hits.append(request.path)
        if request.path == "/missing":
            raise web.HTTPNotFound()
        return web.Response(text="<a href='/missing'>m</a>", content_type="text/html")

    app = web.Application()
    app.router.add_get("/{name}", page)
    cache = str(tmp_path / "c")
    async with serve(app) as base:
        spider = tmp_path / "spider.py"
        spider.write_text(
            "from pooledcrawl import Spider\n"
            "class S(Spider):\n"
            f"    start_urls = ['{base}/a']\n"
            "    def parse(self, response):\n"
            "        yield from response.follow_all(css='a')\n"
        )
        common = ("-s", "http_cache_ignore_http_codes=404", "--cache", cache)
        for mode in ("normal", "normal", "refresh"):
            code, err = await _crawl(str(spider), *common, "--cache-mode", mode)
            assert code == 0, err
    # /a: fetched once, replayed once, refetched; /missing: never stored, so every run.
    assert hits.count("/a") == 2
    assert hits.count("/missing") == 3


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("--cache-mode", "offline"), "--cache-mode needs --cache DIR"),
        (("-s", "http_cache_mode=sometimes", "--cache", "c"), "http_cache_mode"),
    ],
)
async def test_cache_flag_errors_are_one_line_exit_2(
    tmp_path: Path, args: tuple[str, ...], message: str
) -> None:
    code, err = await _crawl(BOOKSTORE, *args)
    assert code == 2
    assert message in err and "Traceback" not in err
    assert len(err.strip().splitlines()) == 1
