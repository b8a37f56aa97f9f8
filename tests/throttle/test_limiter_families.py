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
from benchmarks.limiters import FAMILIES, Family, _nginx_target, site_pages
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


async def crawl_limits(site: Path, spec: dict[str, Any]) -> tuple[Any, dict[str, int]]:
    """Crawl the whole site behind the ``limits`` app with ``spec``: the stats, and
    the statuses the server counted."""
    counts: dict[str, int] = {}
    async with serve(build_app(site, spec, counts)) as base:
        spider, stats = await crawl(base + START_PATH)
    assert_complete(spider, stats)
    return stats, counts


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
    spec = {"strategy": "fixed", "limit": 50, "window": 1, "delay": 0.02}
    stats, counts = await crawl_limits(site, spec)
    assert counts["200"] == PAGES
    (domain,) = stats.domains.values()
    # the cold-start burst spent the first window: one block, its probes, then a
    # pace just under 50 per second (a step up may overshoot a window's end once)
    assert 1 <= domain["blocks"] <= 2
    assert 0.7 <= domain["window_s"] <= 1.5
    assert domain["rate"] <= 52
    refused, responses = refusals_after_learning(stats)
    assert refused <= 0.02 * responses + 3


async def test_limits_window_ending_in_the_first_quiet_gap_is_misread_once(site: Path) -> None:
    # A 2 s window ends inside the first block's 5 s quiet gap: the probe after it
    # gets through as if a penalty box had opened, and the pace resumed as after
    # one spends the new window at once. That block says it was a window: the quiet
    # time is forgotten, the window learned from the cycle that began with the probe.
    spec = {"strategy": "fixed", "limit": 100, "window": 2, "delay": 0.02}
    stats, _counts = await crawl_limits(site, spec)
    (domain,) = stats.domains.values()
    assert domain["quiet_s"] is None
    assert 1.5 <= domain["window_s"] <= 3.0
    assert domain["rate"] <= 52
    assert domain["blocks"] <= 3
    # from 4 s after the pace resumed (the misread's block is over by then) the
    # window is not burst again
    rows = domain["timeline"]
    first = next(row[0] for row in rows if row[4])
    resumed = next(row[0] for row in rows if row[0] > first + 1 and row[3])
    assert resumed >= first + 5  # the first block's quiet gap, which the window ended in
    later = [row for row in rows if row[0] >= resumed + 4]
    refused, responses = sum(row[4] for row in later), sum(row[3] + row[4] for row in later)
    assert responses >= 50
    assert refused <= 0.02 * responses + 3


async def test_penalty_box_with_retry_after_is_entered_once(site: Path) -> None:
    spec = dict(FAMILIES["penalty-ra"].spec, quiet=2)  # 100/s, 2 s of quiet, Retry-After
    stats, counts = await crawl_limits(site, spec)
    (domain,) = stats.domains.values()
    # shut out once by the cold-start burst; Retry-After was honoured (no knocking
    # while boxed) and the pace after it keeps the client out of the box
    assert domain["blocks"] == 1
    assert counts["429"] == stats.status_counts[429]
    refused, responses = refusals_after_learning(stats)
    assert refused == 0 or refused <= 0.01 * responses


async def test_penalty_box_without_retry_after_opens_after_the_first_quiet_gap(
    site: Path,
) -> None:
    spec = dict(FAMILIES["penalty"].spec, quiet=3)  # 100/s, 3 s of quiet, no Retry-After
    stats, _counts = await crawl_limits(site, spec)
    (domain,) = stats.domains.values()
    # probes for a second and a quarter keep the box shut; the 5 s quiet gap after
    # them opens it, and that gap is remembered as the box's quiet time (an upper
    # bound). The pace after it keeps the client out of the box.
    assert domain["blocks"] == 1
    assert 3.0 <= domain["quiet_s"] <= 5.2
    rows = domain["timeline"]
    opened = next(row[0] for row in rows if row[0] > 1 and row[3])
    assert opened <= 8
    later = [row for row in rows if row[0] > opened]
    assert sum(row[4] for row in later) <= 0.01 * sum(row[3] for row in later)


async def test_nginx_limit_conn_caps_what_is_in_flight(site: Path, tmp_path: Path) -> None:
    _need_nginx()
    family = Family(
        "t",
        "nginx limit_conn 10 (503), 20 ms",
        "nginx",
        {"directive": "limit_conn_zone $server_port zone=c:1m; |limit_conn c 10;"},
        500,
        0.02,
    )
    with _nginx_target(family, site, tmp_path) as base:
        spider, stats = await crawl(base + START_PATH)
    assert_complete(spider, stats)
    (domain,) = stats.domains.values()
    # the fast 503s of the cold start taught the cap: 10, plus a step up now and then
    assert domain["concurrency"] <= 12
    assert domain["status_counts"]["503"] < PAGES


def test_nginx_logs_when_each_request_arrived(site: Path, tmp_path: Path) -> None:
    # the benchmark's evidence of bunched sends: arrivals on nginx's own clock, and
    # how many came sooner than limit_req without a burst accepts (4 ms at 300 r/s)
    _need_nginx()
    import socket
    import time

    from benchmarks.limiters import arrival_gaps

    family = FAMILIES["nginx-req-300"]
    assert family.min_gap_ms == 4 and family.ceiling_at(0, 60) == 250
    assert FAMILIES["nginx-req-250"].ceiling_at(0, 60) == 250
    assert FAMILIES["nginx-req-burst"].ceiling_at(0, 60) == 300

    def get(port: int, count: int) -> list[bytes]:
        conns = [socket.create_connection(("127.0.0.1", port)) for _ in range(count)]
        for conn in conns:  # sent back to back, answered later (a 100 ms backend)
            conn.sendall(f"GET {START_PATH} HTTP/1.0\r\n\r\n".encode())
        statuses = [conn.recv(64)[9:12] for conn in conns]
        for conn in conns:
            conn.close()
        return statuses

    with _nginx_target(family, site, tmp_path) as base:
        port = int(base.rsplit(":", 1)[1])
        burst = get(port, 4)  # within 4 ms of the first: refused
        time.sleep(0.05)
        later = get(port, 1)
    assert burst[0] == b"200" and b"429" in burst and later == [b"200"]
    gaps = arrival_gaps(tmp_path / "arrivals.log", family)
    assert gaps["arrivals"] == 5
    assert gaps["gaps_under_min"] >= burst.count(b"429") / 4 > 0
    assert gaps["gap_p1_ms"] < 4


def test_the_site_outlasts_the_fastest_limit() -> None:
    """A crawl that ran out of pages before its time would be judged against a limit
    it was never held by (1,000/s for 60 s is 60,000 pages, not 20,000)."""
    fast = FAMILIES["sliding-1s"]
    assert site_pages([fast], 60.0, 20_000) >= fast.rate * 60.0
    assert site_pages([FAMILIES["nginx-req"]], 60.0, 20_000) == 20_000  # 50/s: enough
    long_window = FAMILIES["fixed-60s"]  # three times the duration
    assert site_pages([long_window], 60.0, 0) >= long_window.rate * 180.0
