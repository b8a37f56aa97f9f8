"""`--report report.html`: a self-contained page, rendered by a real headless Chromium.

The Chromium test skips only where Chromium is missing and PCRAWL_REQUIRE_SERVICES
is unset; CI sets it (and .ci/run installs Debian's chromium), so there it runs.
"""

from __future__ import annotations

import asyncio
import re
import struct
import sys
import time
import zlib
from pathlib import Path
from typing import Any

import orjson
from aiohttp import web
from needs import require_tool
from sites import link_graph_app, serve

from pooledcrawl.report import render_report, write_report

SPIDER = """
from pooledcrawl import Spider

class TwoSites(Spider):
    name = "two"

    def __init__(self, a: str = "", b: str = "", **kwargs):
        super().__init__(**kwargs)
        self.start_urls = [a + "/p/0.html", b + "/p/0.html"]

    def parse(self, response):
        yield {"url": response.url, "name": response.css("h1::text").get()}
        yield from response.follow_all(css="a")
"""

_EXTERNAL = re.compile(r"""(?:src|href|action)\s*=\s*["']?\s*(?:https?:)?//""", re.I)


def _rate_limited(app: web.Application, rate: float) -> web.Application:
    """Answer 429 over ``rate`` requests/s (a token bucket, burst of rate/5)."""
    bucket = {"tokens": rate / 5, "at": time.monotonic()}

    async def limit(request: web.Request, handler: Any) -> web.StreamResponse:
        now = time.monotonic()
        bucket["tokens"] = min(rate / 5, bucket["tokens"] + (now - bucket["at"]) * rate)
        bucket["at"] = now
        if bucket["tokens"] < 1:
            return web.Response(status=429, headers={"Retry-After": "1"})
        bucket["tokens"] -= 1
        await asyncio.sleep(0.02)
        response: web.StreamResponse = await handler(request)
        return response

    app.middlewares.append(web.middleware(limit))
    return app


async def _crawl_with_report(tmp_path: Path) -> tuple[Path, dict[str, Any]]:
    spider = tmp_path / "two.py"
    spider.write_text(SPIDER)
    report, stats = tmp_path / "report.html", tmp_path / "stats.json"
    fast, limited = link_graph_app(2000), _rate_limited(link_graph_app(2000), 120)
    async with serve(fast) as a, serve(limited) as b:
        proc = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "pooledcrawl", "crawl", str(spider),
            "-a", f"a={a}", "-a", f"b={b}", "--timeout", "4", "--concurrency", "24",
            "--report", str(report), "--stats", str(stats), "--log-level", "WARNING",
            stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.PIPE,
        )  # fmt: skip
        async with asyncio.timeout(90):
            _, err = await proc.communicate()
    assert proc.returncode == 0, err.decode()
    return report, orjson.loads(stats.read_bytes())


# ---- the page itself --------------------------------------------------------------------
async def test_report_from_a_real_crawl_is_self_contained(tmp_path: Path) -> None:
    report, stats = await _crawl_with_report(tmp_path)
    html = report.read_text()
    assert stats["pages"] > 100 and stats["status_counts"].get("429", 0) > 0
    assert html.startswith("<!doctype html>")
    assert not _EXTERNAL.findall(html)  # nothing to fetch: works offline
    assert "<script" not in html.lower() and "<link" not in html.lower()
    assert "@import" not in html and "url(" not in html
    assert html.count("<svg") >= 6  # throughput, statuses, latency, in flight, per domain x2
    for title in ("Throughput", "Status codes over time", "Latency percentiles",
                  "Concurrency per domain", "Rate per domain", "Per domain"):  # fmt: skip
        assert f"<h2>{title}</h2>" in html
    for host in stats["domains"]:
        assert host in html
    assert f"{stats['pages']:,}" in html


def test_report_tolerates_missing_sections() -> None:
    html = render_report({})
    assert "no data recorded" in html and "<h2>Throughput</h2>" in html
    odd = {
        "pages": 3,
        "timeline": {"interval_s": 1, "columns": ["t", "pages"], "rows": [[0, 3], "x", []]},
        "domains": {
            "a.example": {"pages": 3, "timeline": [[0, 4, None, 3, 0], [1, 6, 2.5, 0, 1], "bad"]},
            "b.example": {"concurrency": 2},  # neither a timeline nor activity rows
        },
    }
    html = render_report(odd)
    assert "a.example" in html and "b.example" in html
    assert "controller" in html  # the dashed limit line was drawn from the timeline


def test_report_escapes_what_came_from_the_web(tmp_path: Path) -> None:
    evil = "<script>alert(1)</script>"
    write_report({"domains": {evil: {"pages": 1}}, "errors": {evil: 1}}, tmp_path / "r.html")
    html = (tmp_path / "r.html").read_text()
    assert evil not in html and "&lt;script&gt;" in html


# ---- what a person sees -----------------------------------------------------------------


def _png_rows(png: bytes, max_rows: int) -> tuple[int, int, list[bytes]]:
    """Decode the first ``max_rows`` rows of an 8-bit RGB(A) PNG: (width, bpp, rows)."""
    assert png[:8] == b"\x89PNG\r\n\x1a\n"
    pos, chunks, width, color = 8, [], 0, 2
    while pos < len(png):
        length, kind = struct.unpack(">I4s", png[pos : pos + 8])
        data = png[pos + 8 : pos + 8 + length]
        pos += 12 + length
        if kind == b"IHDR":
            width, height, depth, color, _, _, interlace = struct.unpack(">IIBBBBB", data)
            assert depth == 8 and interlace == 0 and color in (2, 6)
            max_rows = min(max_rows, height)
        elif kind == b"IDAT":
            chunks.append(data)
    bpp = 3 if color == 2 else 4
    stride = width * bpp
    raw = zlib.decompressobj().decompress(b"".join(chunks), max_rows * (stride + 1))
    prev, rows = bytearray(stride), []
    for y in range(max_rows):
        start = y * (stride + 1)
        kind, line = raw[start], bytearray(raw[start + 1 : start + 1 + stride])
        if kind == 2:
            line = bytearray((a + b) & 255 for a, b in zip(line, prev, strict=True))
        elif kind in (1, 3, 4):
            for i in range(stride):
                a = line[i - bpp] if i >= bpp else 0
                b, c = prev[i], (prev[i - bpp] if i >= bpp else 0)
                if kind == 1:
                    add = a
                elif kind == 3:
                    add = (a + b) >> 1
                else:
                    p = a + b - c
                    pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
                    add = a if pa <= pb and pa <= pc else b if pb <= pc else c
                line[i] = (line[i] + add) & 255
        rows.append(bytes(line))
        prev = line
    return width, bpp, rows


async def test_headless_chromium_renders_the_charts(tmp_path: Path) -> None:
    chromium = require_tool("chromium")
    report, _ = await _crawl_with_report(tmp_path)
    shot = tmp_path / "report.png"
    proc = await asyncio.create_subprocess_exec(
        chromium, "--headless", "--no-sandbox", "--disable-gpu",
        "--disable-background-networking", "--disable-component-update", "--disable-sync",
        "--no-first-run", f"--user-data-dir={tmp_path / 'profile'}",
        f"--screenshot={shot}", "--window-size=1280,1600", report.resolve().as_uri(),
        stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    try:
        async with asyncio.timeout(120):
            _, err = await proc.communicate()
    except TimeoutError:
        proc.kill()
        await proc.wait()
        raise
    assert shot.is_file(), err.decode(errors="replace")[-2000:]
    width, bpp, rows = _png_rows(shot.read_bytes(), 700)
    assert width == 1280
    pixels = [row[i : i + 3] for row in rows for i in range(0, len(row), bpp)]
    colours = set(pixels)
    assert len(colours) > 200  # text, charts and panels, not a blank or error page
    green = pixels.count(bytes.fromhex("37b24d"))  # the 2xx bars
    assert green > 5000, f"status bars missing: {green} green pixels"
    blue = pixels.count(bytes.fromhex("2f6fde"))  # the pages/s line
    assert blue > 300, f"throughput line missing: {blue} blue pixels"


def test_a_broad_crawl_report_counts_every_host_not_only_the_detailed() -> None:
    from pooledcrawl.report.page import render_report

    stats = {
        "pages": 55_000,
        "domains": {f"h{n}.bench.test": {"pages": 11} for n in range(50)},
        "hosts": {
            "seen": 5000,
            "done": 5000,
            "blocked": 3,
            "with_errors": 7,
            "pages_per_host": {"p50": 11, "max": 11},
        },
    }
    html = render_report(stats)
    assert "5,000 (5,000 done, 3 blocked, 7 with errors" in html
    assert "of 5,000 domains" in html
