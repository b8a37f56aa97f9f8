"""The benchmark suite's CI smoke run: a small site, contenders (a), (b), (c).

It asserts correctness only (every page's item exactly once), never timing:
this machine is shared and noisy.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Literal

import orjson
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))  # the repo's `benchmarks`

from benchmarks.servers import Port, serve
from benchmarks.site import START_PATH, generate_site
from benchmarks.throughput import CONTENDERS, run_contender, verify_output

PAGES = 300


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return generate_site(tmp_path_factory.mktemp("site"), PAGES)


def test_every_page_reachable_from_page_zero(site: Path) -> None:
    import re

    link = re.compile(rb'href="/p/(\d+)\.html"')
    seen, queue = {0}, [0]
    while queue:
        page = queue.pop()
        body = (site / "p" / f"{page}.html").read_bytes()
        targets = {int(m) for m in link.findall(body)}
        assert len(targets) == 10
        for target in targets - seen:
            seen.add(target)
            queue.append(target)
    assert seen == set(range(PAGES))
    assert 3000 < len((site / "p" / "1.html").read_bytes()) < 5000


@pytest.mark.parametrize("kind", ["python", "nginx"])
@pytest.mark.parametrize("key", ["a", "b", "c"])
def test_contender_crawls_every_page_once(
    site: Path, tmp_path: Path, kind: Literal["python", "nginx"], key: str
) -> None:
    if kind == "nginx":
        from benchmarks.servers import nginx_available

        if not nginx_available():
            if os.environ.get("PCRAWL_REQUIRE_SERVICES"):
                pytest.fail("nginx is not installed and PCRAWL_REQUIRE_SERVICES is set")
            pytest.skip("nginx is not installed")
    contender = next(c for c in CONTENDERS if c.key == key)
    with serve(site, kind=kind) as server:
        assert server.kind == kind
        result = run_contender(
            contender, server.url() + START_PATH, PAGES, tmp_path, concurrency=16, timeout=120
        )
    assert result.ok, result.error
    assert (result.items, result.missing, result.duplicates) == (PAGES, 0, 0)
    assert result.elapsed_s is not None and result.peak_rss_bytes > 0


def test_verify_output_catches_missing_duplicate_and_malformed(tmp_path: Path) -> None:
    out = tmp_path / "items.jsonl"
    lines = [{"url": "u", "name": f"Item {i}", "price": "1.99"} for i in (0, 1, 1, 3)]
    out.write_bytes(b"".join(orjson.dumps(x) + b"\n" for x in lines) + b'{"name": 2}\n')
    verdict = verify_output(out, 4)
    assert (verdict.items, verdict.missing, verdict.duplicates, verdict.bad) == (5, 1, 1, 1)
    assert not verdict.ok
    good = [{"url": "u", "name": f"Item {i}", "price": "1.99"} for i in range(4)]
    out.write_bytes(b"".join(orjson.dumps(x) + b"\n" for x in good))
    assert verify_output(out, 4).ok


def test_python_server_rate_limits_and_delays(site: Path) -> None:
    import urllib.error
    import urllib.request

    ports = [Port("limited", rate=0.1, burst=1), Port("slow", delay=0.05)]
    with serve(site, ports, kind="python") as server:
        statuses = []
        for _ in range(5):
            try:
                with urllib.request.urlopen(server.url("limited") + START_PATH, timeout=5) as r:
                    statuses.append(r.status)
            except urllib.error.HTTPError as exc:
                statuses.append(exc.code)
        with urllib.request.urlopen(server.url("slow") + START_PATH, timeout=5) as r:
            assert b'<h1 class="name">Item 0</h1>' in r.read()
    assert statuses[:2] == [200, 200]
    assert 429 in statuses
