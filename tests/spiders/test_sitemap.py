"""SitemapSpider and the streaming sitemap reader."""

from __future__ import annotations

import gzip
import struct
import sys
import tracemalloc
import zlib
from collections import Counter
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest
from multidict import CIMultiDict
from sites import serve
from spider_helpers import EXAMPLES, ROOT, read_items, run_cli
from toolkit_sites import AccessLog, sitemap_app, sitemap_files

from pooledcrawl import Request, Response, SitemapSpider
from pooledcrawl.spiders.sitemap import SitemapTooLarge, parse_lastmod, read_sitemap

pytestmark = pytest.mark.timeout(180)

NS = 'xmlns="http://www.sitemaps.org/schemas/sitemap/0.9"'
URLSET = f"""<?xml version="1.0" encoding="UTF-8"?>
<urlset {NS} xmlns:xhtml="http://www.w3.org/1999/xhtml">
  <!-- a comment -->
  <url>
    <loc> https://shop.test/a.html </loc>
    <lastmod>2026-11-01</lastmod>
    <changefreq>daily</changefreq>
    <priority>0.8</priority>
    <xhtml:link rel="alternate" hreflang="de" href="https://shop.test/de/a.html"/>
    <xhtml:link rel="alternate" hreflang="fr" href="https://shop.test/fr/a.html"/>
  </url>
  <url><loc>https://shop.test/b.html</loc></url>
</urlset>""".encode()


def entries(body: bytes, **kwargs: Any) -> list[dict[str, Any]]:
    return list(read_sitemap(body, **kwargs))


def test_urlset_entries_with_alternates() -> None:
    reader = read_sitemap(URLSET)
    assert reader.type == "urlset"
    assert list(reader) == [
        {
            "loc": "https://shop.test/a.html",
            "lastmod": "2026-11-01",
            "changefreq": "daily",
            "priority": "0.8",
            "alternate": ["https://shop.test/de/a.html", "https://shop.test/fr/a.html"],
        },
        {"loc": "https://shop.test/b.html"},
    ]


def test_same_entries_as_scrapy() -> None:
    from scrapy.utils.sitemap import Sitemap

    assert entries(URLSET) == list(Sitemap(URLSET))


def test_index_type_and_non_sitemaps() -> None:
    index = f"<sitemapindex {NS}><sitemap><loc>https://s.test/1.xml</loc></sitemap></sitemapindex>"
    reader = read_sitemap(index.encode())
    assert reader.type == "sitemapindex"
    assert list(reader) == [{"loc": "https://s.test/1.xml"}]
    assert read_sitemap(b"<html><body><p>not a sitemap</p></body></html>").type == "html"
    assert read_sitemap(b"").type is None
    assert entries(b"") == []


def test_gzip_by_magic_bytes_and_multi_member() -> None:
    assert entries(gzip.compress(URLSET)) == entries(URLSET)
    half = len(URLSET) // 2
    two_members = gzip.compress(URLSET[:half]) + gzip.compress(URLSET[half:])
    assert entries(two_members) == entries(URLSET)


def test_truncated_and_corrupt_input_keeps_what_was_read() -> None:
    assert [
        e["loc"] for e in entries(URLSET[: URLSET.index(b"<url><loc>https://shop.test/b")])
    ] == ["https://shop.test/a.html"]
    compressed = gzip.compress(URLSET)
    corrupt = compressed[: len(compressed) // 2] + b"\xff" * 40
    found = entries(corrupt)  # no exception: whatever came before the damage
    assert found == entries(URLSET)[: len(found)]
    assert entries(b"\x1f\x8b\x08garbage") == []


def _whitespace_bomb(prefix: bytes, mib: int) -> bytes:
    """``prefix`` then ``mib`` MiB of spaces, gzipped in well under a second: after a
    full flush the compressor starts afresh, so one MiB's compressed form repeats."""
    block = b" " * (1 << 20)
    comp = zlib.compressobj(9, zlib.DEFLATED, -15)
    head = comp.compress(prefix) + comp.flush(zlib.Z_FULL_FLUSH)
    segment = comp.compress(block) + comp.flush(zlib.Z_FULL_FLUSH)
    tail = comp.flush(zlib.Z_FINISH)
    crc = zlib.crc32(prefix)
    for _ in range(mib):
        crc = zlib.crc32(block, crc)
    size = len(prefix) + mib * len(block)
    header = b"\x1f\x8b\x08\x00\x00\x00\x00\x00\x02\xff"
    return header + head + segment * mib + tail + struct.pack("<II", crc, size & 0xFFFFFFFF)


def test_size_cap_stops_a_gzip_bomb_without_inflating_it() -> None:
    # 200 MiB of whitespace inside an element compresses to ~200 KB
    bomb = _whitespace_bomb(b"<urlset><url><loc>", 200)
    assert len(bomb) < 400_000
    assert gzip.decompress(_whitespace_bomb(b"<x>", 2)) == b"<x>" + b" " * (2 << 20)  # valid
    tracemalloc.start()
    try:
        with pytest.raises(SitemapTooLarge):
            entries(bomb, max_size=5_000_000)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 2_000_000
    with pytest.raises(SitemapTooLarge):
        entries(URLSET, max_size=100)


def test_entities_are_not_expanded() -> None:
    xxe = (
        b'<?xml version="1.0"?><!DOCTYPE urlset [<!ENTITY x SYSTEM "file:///etc/passwd">]>'
        b"<urlset><url><loc>&x;</loc></url></urlset>"
    )
    assert all("root:" not in e.get("loc", "") for e in entries(xxe))


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("2026", datetime(2026, 1, 1, tzinfo=UTC)),
        ("2026-03", datetime(2026, 3, 1, tzinfo=UTC)),
        ("2026-03-04", datetime(2026, 3, 4, tzinfo=UTC)),
        ("2026-03-04T10:20Z", datetime(2026, 3, 4, 10, 20, tzinfo=UTC)),
        (
            "2026-03-04T10:20:30+01:00",
            datetime(2026, 3, 4, 10, 20, 30, tzinfo=timezone(timedelta(hours=1))),
        ),
        ("yesterday", None),
        ("", None),
        (None, None),
    ],
)
def test_parse_lastmod(value: str | None, expected: datetime | None) -> None:
    assert parse_lastmod(value) == expected


def _urlset(n: int) -> bytes:
    return (
        '<?xml version="1.0" encoding="UTF-8"?>'
        '<urlset xmlns="http://www.sitemaps.org/schemas/sitemap/0.9">'
        + "".join(
            f"<url><loc>https://shop.test/products/item-{i}.html</loc><lastmod>2026-11-01"
            "</lastmod><changefreq>daily</changefreq><priority>0.5</priority></url>\n"
            for i in range(n)
        )
        + "</urlset>"
    ).encode()


def _python_peak(n: int, compression: str) -> tuple[int, int, int]:
    """(entries read, tracemalloc's peak while reading, document size) for ``n`` URLs."""
    body = _urlset(n)
    size = len(body)
    if compression == "gz":
        body = gzip.compress(body)
    tracemalloc.start()
    try:
        count = sum(1 for _ in read_sitemap(body))
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    return count, peak, size


@pytest.mark.parametrize("compression", ["plain", "gz"])
def test_a_sitemap_is_read_entry_by_entry(compression: str) -> None:
    """Each entry is handed out and dropped as it is read: ten times the URLs cost
    Python-side memory a small fraction of the larger document (kept whole, every entry
    would stay). What the whole process saves (libxml2's memory, which tracemalloc
    does not see) against one lxml tree is measured by
    ``python -m benchmarks.memory --only sitemap``."""
    small_count, small_peak, _ = _python_peak(1000, compression)
    count, peak, size = _python_peak(10_000, compression)
    assert (small_count, count) == (1000, 10_000)
    assert peak - small_peak < size / 8, (small_peak, peak, size)


# ---- the spider -----------------------------------------------------------------------------


def _response(url: str, body: bytes, content_type: str = "application/xml") -> Response:
    return Response(url, 200, CIMultiDict({"Content-Type": content_type}), body, Request(url))


class Shop(SitemapSpider):
    sitemap_rules = [(r"/de/", "parse_de"), (r"\.html$", "parse")]
    sitemap_follow = [r"products"]

    def parse(self, response: Response) -> None:
        return None

    def parse_de(self, response: Response) -> None:
        return None


def test_rules_pick_the_first_matching_callback_and_alternates() -> None:
    spider = Shop(sitemap_alternate_links=True)
    requests = list(spider._parse_sitemap(_response("https://shop.test/s.xml", URLSET)))
    assert [(r.url, r.callback) for r in requests] == [
        ("https://shop.test/a.html", spider.parse),
        ("https://shop.test/de/a.html", spider.parse_de),
        ("https://shop.test/fr/a.html", spider.parse),
        ("https://shop.test/b.html", spider.parse),
    ]
    plain = Shop()
    assert [r.url for r in plain._parse_sitemap(_response("https://shop.test/s.xml", URLSET))] == [
        "https://shop.test/a.html",
        "https://shop.test/b.html",
    ]


def test_index_follows_only_matching_children() -> None:
    index = (
        f"<sitemapindex {NS}><sitemap><loc>https://s.test/products-1.xml.gz</loc></sitemap>"
        "<sitemap><loc>https://s.test/pages.xml</loc></sitemap></sitemapindex>"
    ).encode()
    spider = Shop()
    requests = list(spider._parse_sitemap(_response("https://s.test/index.xml", index)))
    assert [(r.url, r.callback) for r in requests] == [
        ("https://s.test/products-1.xml.gz", spider._parse_sitemap)
    ]


def test_robots_txt_sitemap_lines_resolved() -> None:
    robots = b"User-agent: *\nDisallow: /x\nSitemap: /a.xml\nsitemap: https://cdn.test/b.xml.gz\n"
    spider = Shop()
    requests = spider._parse_sitemap(_response("https://s.test/robots.txt", robots, "text/plain"))
    assert [r.url for r in requests] == ["https://s.test/a.xml", "https://cdn.test/b.xml.gz"]


def test_lastmod_filter_and_custom_sitemap_filter() -> None:
    since = Shop(sitemap_modified_since="2026-10-01")
    body = URLSET.replace(
        b"<url><loc>https://shop.test/b.html</loc>", b"<url><loc>https://shop.test/x.html</loc>"
    )
    old = body.replace(b"2026-11-01", b"2025-01-01")
    assert [r.url for r in since._parse_sitemap(_response("https://s.test/s.xml", body))] == [
        "https://shop.test/a.html",
        "https://shop.test/x.html",  # no lastmod: kept
    ]
    assert [r.url for r in since._parse_sitemap(_response("https://s.test/s.xml", old))] == [
        "https://shop.test/x.html"
    ]

    class OnlyDaily(Shop):
        def sitemap_filter(self, entries: Any) -> Any:
            return (e for e in entries if e.get("changefreq") == "daily")

    spider = OnlyDaily()
    found = [r.url for r in spider._parse_sitemap(_response("https://s.test/s.xml", URLSET))]
    assert found == ["https://shop.test/a.html"]


async def test_bad_modified_since_is_a_user_error(tmp_path: Path) -> None:
    result = await run_cli(
        "crawl",
        str(EXAMPLES / "sitemap_spider.py"),
        *("-a", "sitemap_modified_since=last-week"),
        cwd=tmp_path,
    )
    assert result.returncode == 2
    assert "sitemap_modified_since" in result.stderr and "Traceback" not in result.stderr


def test_invalid_sitemap_is_ignored_with_a_warning(caplog: pytest.LogCaptureFixture) -> None:
    spider = Shop()
    html = _response("https://s.test/page.html", b"<html><body>hi</body></html>", "text/html")
    assert list(spider._parse_sitemap(html)) == []
    assert "ignoring invalid sitemap: https://s.test/page.html" in caplog.text


async def test_cli_sitemap_index_with_gzipped_children_reaches_every_url(tmp_path: Path) -> None:
    log = AccessLog()
    async with serve(sitemap_app(log, sitemap_files)) as base:
        files = sitemap_files(base)
        result = await run_cli(
            "crawl",
            str(EXAMPLES / "sitemap_spider.py"),
            *("-a", f"base={base}", "-o", "out.jsonl", "--concurrency", "16"),
            cwd=tmp_path,
        )
    assert result.returncode == 0, result.stderr
    pages = {p for p in files if p.endswith(".html")}
    fetched = Counter(log.paths())
    # every page listed, once; every sitemap, once
    assert fetched == Counter({p: 1 for p in files})
    items = read_items(tmp_path / "out.jsonl")
    assert sorted(i["url"] for i in items) == sorted(base + p for p in pages)
    kinds = Counter(i["kind"] for i in items)
    assert kinds == {"product": 1200, "post": 150, "other": 20}


async def test_cli_modified_since_skips_old_sitemaps_and_pages(tmp_path: Path) -> None:
    log = AccessLog()
    async with serve(sitemap_app(log, sitemap_files)) as base:
        result = await run_cli(
            "crawl",
            str(EXAMPLES / "sitemap_spider.py"),
            *("-a", f"base={base}", "-a", "sitemap_modified_since=2026-10-31"),
            *("-o", "out.jsonl", "--concurrency", "16"),
            cwd=tmp_path,
        )
    assert result.returncode == 0, result.stderr
    fetched = set(log.paths())
    assert "/sitemaps/archive.xml" not in fetched  # the index says it is from 2019
    assert "/sitemaps/blog.xml" not in fetched  # 2026-10-30
    items = read_items(tmp_path / "out.jsonl")
    assert Counter(i["kind"] for i in items) == {"product": 1200}


def _nginx_or_skip() -> None:
    import os
    import shutil

    if shutil.which("nginx") is None:
        if os.environ.get("PCRAWL_REQUIRE_SERVICES"):
            pytest.fail("nginx is not installed and PCRAWL_REQUIRE_SERVICES is set")
        pytest.skip("nginx is not installed")


async def test_nginx_static_gzipped_sitemaps(tmp_path: Path) -> None:
    """nginx serving .xml.gz files as they are (its default type here is text/html,
    so only the magic bytes say gzip)."""
    _nginx_or_skip()
    sys.path.insert(0, str(ROOT))
    from benchmarks.servers import Port, serve

    site = tmp_path / "site"
    site.mkdir()
    with serve(site, (Port(),), kind="nginx") as server:
        # the files name the server's URL, known once nginx listens
        base = server.url()
        for path, body in sitemap_files(base).items():
            target = site / path.lstrip("/")
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(body)
        result = await run_cli(
            "crawl",
            str(EXAMPLES / "sitemap_spider.py"),
            *("-a", f"base={base}", "-o", "out.jsonl", "--concurrency", "16"),
            cwd=tmp_path,
        )
    assert result.returncode == 0, result.stderr
    items = read_items(tmp_path / "out.jsonl")
    assert Counter(i["kind"] for i in items) == {"product": 1200, "post": 150, "other": 20}
    assert len({i["url"] for i in items}) == len(items)


def test_plain_text_sitemap() -> None:
    text = b"\xef\xbb\xbfhttps://shop.test/a.html\r\n\nnot a url\nhttps://shop.test/b.html"
    reader = read_sitemap(text)
    assert reader.type == "text"
    assert list(reader) == [
        {"loc": "https://shop.test/a.html"},
        {"loc": "https://shop.test/b.html"},
    ]
    # lines split across chunks, gzipped
    many = b"".join(b"https://shop.test/p/%d.html\n" % i for i in range(20_000))
    assert [e["loc"] for e in read_sitemap(gzip.compress(many))] == [
        f"https://shop.test/p/{i}.html" for i in range(20_000)
    ]
    spider = Shop()
    requests = spider._parse_sitemap(_response("https://s.test/urls.txt", text, "text/plain"))
    assert [r.url for r in requests] == ["https://shop.test/a.html", "https://shop.test/b.html"]


@pytest.mark.parametrize("size", [1, 65_535, 65_536, 65_537, 300_000])
def test_gunzip_in_chunks_gives_back_every_byte(size: int) -> None:
    import os

    from pooledcrawl.spiders.sitemap import _chunks

    raw = os.urandom(size // 3) + b"a" * (size - size // 3)  # some incompressible
    assert b"".join(_chunks(gzip.compress(raw), 10**9)) == raw
    assert b"".join(_chunks(gzip.compress(raw) * 2, 10**9)) == raw * 2
    assert all(len(chunk) <= 64 * 1024 for chunk in _chunks(gzip.compress(raw), 10**9))


async def test_sitemap_urls_from_the_command_line(tmp_path: Path) -> None:
    """``-a sitemap_urls=A,B``: a string becomes the list it names."""
    spider = Shop(sitemap_urls="https://s.test/a.xml, https://s.test/b.xml.gz")
    assert [r.url async for r in spider.start()] == [
        "https://s.test/a.xml",
        "https://s.test/b.xml.gz",
    ]
