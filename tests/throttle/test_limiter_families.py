"""Real crawls against real limiters: nginx ``limit_req``, a ``limits`` fixed window
behind aiohttp, and a penalty box. Behaviour only (every page fetched, nothing
lost, no 429 storm once the limit is learned), never throughput: timing targets
live in ``python -m benchmarks.limiters``.
"""

from __future__ import annotations

import os
import shutil
import sys
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest
from sites import serve

from pooledcrawl import Engine, Request, Response, Settings, Spider

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))  # the repo's `benchmarks`

from benchmarks._limiter_server import build_app
from benchmarks.limiters import FAMILIES, Family, _nginx_target
from benchmarks.servers import echo_module
from benchmarks.site import START_PATH, generate_site

PAGES = 400


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return generate_site(tmp_path_factory.mktemp("site"), PAGES)


class GraphSpider(Spider):
    def __init__(self, start: str) -> None:
        super().__init__()
        self.start_url = start
        self.seen: set[str] = set()

    async def start(self) -> AsyncIterator[Request]:
        yield Request(self.start_url)

    def parse(self, response: Response) -> Iterator[Request]:
        self.seen.add(response.url)
        yield from response.follow_all(css="ul a")


def settings() -> Settings:
    # the datacenter profile's cold start: 50 in flight, up to 200
    return Settings(
        concurrency=200,
        domain_concurrency=50,
        domain_concurrency_max=200,
        progress_interval=3600,
    )


async def crawl(start: str) -> tuple[GraphSpider, Any]:
    spider = GraphSpider(start)
    stats = await Engine(spider, settings()).run()
    return spider, stats


def refusals_after_learning(stats: Any) -> tuple[int, int]:
    """(429s, responses) from two seconds after the first 429 to the end."""
    (domain,) = stats.domains.values()
    rows = domain["timeline"]
    first = next((row[0] for row in rows if row[4]), None)
    assert first is not None, "the limiter never refused: nothing was learned"
    later = [row for row in rows if row[0] >= first + 2]
    return sum(row[4] for row in later), sum(row[3] + row[4] for row in later)


def assert_complete(spider: GraphSpider, stats: Any) -> None:
    assert len(spider.seen) == PAGES  # every page, so no request was lost to a 429
    assert stats.failed == 0


def _need_nginx() -> None:
    if shutil.which("nginx") is None or echo_module() is None:
        if os.environ.get("PCRAWL_REQUIRE_SERVICES"):
            pytest.fail("nginx with the echo module is required (PCRAWL_REQUIRE_SERVICES)")
        pytest.skip("nginx with the echo module is not installed")


async def test_nginx_limit_req_without_burst(site: Path, tmp_path: Path) -> None:
    _need_nginx()
    family = Family(
        "t",
        "nginx limit_req 100 r/s, no burst, per client",
        "nginx",
        {"directive": "limit_req_zone $binary_remote_addr zone=z:1m rate=100r/s; "
         "|limit_req zone=z;"},
        100,
        0.02,
    )  # fmt: skip
    with _nginx_target(family, site, tmp_path) as base:
        spider, stats = await crawl(base + START_PATH)
    assert_complete(spider, stats)
    refused, responses = refusals_after_learning(stats)
    # nginx without a burst refuses any two requests closer than 10 ms: once the
    # pace is learned that is rare (it was the whole first burst before)
    assert refused <= 0.05 * responses
    assert stats.status_counts[429] < PAGES


async def test_limits_fixed_window_is_learned_and_never_burst_again(site: Path) -> None:
    spec = {"strategy": "fixed", "limit": 100, "window": 2, "delay": 0.02}
    counts: dict[str, int] = {}
    async with serve(build_app(site, spec, counts)) as base:
        spider, stats = await crawl(base + START_PATH)
    assert_complete(spider, stats)
    assert counts["200"] == PAGES
    (domain,) = stats.domains.values()
    # the cold-start burst spent the first window: one block, its probes, then a
    # pace just under 100 per 2 s (a step up may overshoot a window's end once)
    assert 1 <= domain["blocks"] <= 2
    assert 1.5 <= domain["window_s"] <= 3.0
    assert domain["rate"] <= 52
    refused, responses = refusals_after_learning(stats)
    assert refused <= 0.02 * responses + 3


async def test_penalty_box_with_retry_after_is_entered_once(site: Path) -> None:
    spec = dict(FAMILIES["penalty-ra"].spec, quiet=2)  # 100/s, 2 s of quiet, Retry-After
    counts: dict[str, int] = {}
    async with serve(build_app(site, spec, counts)) as base:
        spider, stats = await crawl(base + START_PATH)
    assert_complete(spider, stats)
    (domain,) = stats.domains.values()
    # shut out once by the cold-start burst; Retry-After was honoured (no knocking
    # while boxed) and the pace after it keeps the client out of the box
    assert domain["blocks"] == 1
    assert counts["429"] == stats.status_counts[429]
    refused, responses = refusals_after_learning(stats)
    assert refused == 0 or refused <= 0.01 * responses
