"""One crawl over every hostile endpoint plus well-behaved pages.

The crawl runs once (module fixture); each test asserts one endpoint's outcome on
what the spider, the stats and the server recorded. Timeouts are short so the whole
crawl takes about ten seconds, yet long enough that a busy machine's stall does not
time out a well-behaved page; the asyncio.timeout around it is only a guard.
"""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import orjson
import pytest
from hostile_server import GOOD_PAGES, Hostile, hostile_server
from needs import require_transport

from pooledcrawl import Failure, Request, Response, Settings, Spider
from pooledcrawl.engine.engine import Engine
from pooledcrawl.engine.stats import Stats

pytestmark = pytest.mark.timeout(90)

MAX_RETRIES = 3
CAP = 1024 * 1024

APP_PATHS = [
    "/ok/0.html",
    "/slow-body",
    "/too-big",
    "/too-big-streamed",
    "/gzip-bomb",
    "/deflate-bomb",
    "/loop/a",
    "/chain/10",
    "/chain/11",
    "/to-file",
    "/flaky-503",
    "/retry-after",
    "/charset",
    "/empty",
]
RAW_PATHS = [
    "/slowloris",
    "/reset-once",
    "/endless-chunked",
    "/malformed-status",
    "/truncated",
    "/bad-headers",
]
BAD_URLS = [
    "example.com/no-scheme",
    "http://127.0.0.1:99999/bad-port",
    "http://bad\x00\x07host/",  # browsers reject controls in a host (not in a path)
    "http://127.0.0.1/" + "a" * 10_000,
]


@dataclass
class Page:
    status: int
    url: str
    body: bytes
    text: str
    title: str | None
    attempts: int
    headers: dict[str, str]


class HostileSpider(Spider):
    hostile: Hostile

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.pages: dict[str, Page] = {}
        self.failures: dict[str, Failure] = {}

    async def start(self) -> AsyncIterator[Request]:
        for path in APP_PATHS:
            yield Request(self.hostile.app_url + path, errback=self.on_error)
        for path in RAW_PATHS:
            yield Request(self.hostile.raw_url + path, errback=self.on_error)

    def parse(self, response: Response) -> Any:
        path = urlsplit(response.request.url).path
        self.pages[path] = Page(
            response.status,
            response.url,
            response.body,
            response.text,
            response.css("title::text").get(),
            response.request.attempts + 1,
            dict(response.headers),
        )
        yield {"path": path}
        if path == "/ok/0.html":
            for url in BAD_URLS:
                yield Request(url)
        if path.startswith("/ok/"):
            yield from response.follow_all(css="a", errback=self.on_error)

    def on_error(self, failure: Failure) -> None:
        self.failures[urlsplit(failure.request.url).path] = failure


@dataclass
class Outcome:
    spider: HostileSpider
    stats: Stats
    hits: dict[str, list[float]]


async def _crawl(transport: str) -> Outcome:
    async with hostile_server() as hostile:
        settings = Settings(
            transport=transport,
            concurrency=16,
            # The hostile endpoints stall for 30 s and more, so any timeout well under
            # that gives the same outcome; these leave a well-behaved page a full
            # second of stall per read on a busy machine before it would time out.
            timeout_total=2.5,
            timeout_connect=2.0,
            timeout_sock_connect=2.0,
            timeout_sock_read=1.0,
            max_response_size=CAP,
            max_retries=MAX_RETRIES,
            retry_backoff_base=0.05,
            retry_backoff_cap=0.2,
            retry_after_cap=5.0,
            progress_interval=60.0,
        )
        spider = HostileSpider(hostile=hostile)
        engine = Engine(spider, settings)
        async with asyncio.timeout(60):  # a guard: the crawl must end by itself
            stats = await engine.run()
        return Outcome(spider, stats, dict(hostile.hits))


@pytest.fixture(scope="module", params=["aiohttp", "curl"])
def outcome(request: pytest.FixtureRequest) -> Outcome:
    """One crawl per transport (curl: when its extra is installed, as in CI)."""
    require_transport(request.param)
    return asyncio.run(_crawl(request.param))


def failure_of(outcome: Outcome, path: str) -> Failure:
    assert path not in outcome.spider.pages, f"{path} reached the callback"
    assert path in outcome.spider.failures, f"{path} never reached the errback"
    return outcome.spider.failures[path]


def reason(failure: Failure) -> str:
    assert failure.exception is not None
    return getattr(failure.exception, "name", type(failure.exception).__name__)


# ---- the crawl as a whole --------------------------------------------------------


def test_the_crawl_finishes_by_itself(outcome: Outcome) -> None:
    assert outcome.stats.finish_reason == "finished"


def test_every_well_behaved_page_is_fetched_once(outcome: Outcome) -> None:
    for i in range(GOOD_PAGES):
        path = f"/ok/{i}.html"
        assert path in outcome.spider.pages, path
        assert outcome.spider.pages[path].title == f"ok {i}"
        assert len(outcome.hits[path]) == 1
    assert not [p for p in outcome.spider.failures if p.startswith("/ok/")]


def test_stats_count_every_failure_with_its_reason(outcome: Outcome) -> None:
    stats = outcome.stats
    assert stats.failed == len(outcome.spider.failures) == 12
    assert stats.errors["TimeoutError"] == 2
    assert stats.errors["ResponseTooLarge"] == 5
    assert stats.errors["RedirectLoop"] == 1
    assert stats.errors["TooManyRedirects"] == 1
    assert stats.errors["RedirectRefused"] == 1
    assert stats.errors["BadHttpMessage"] == 1
    assert stats.errors["ClientPayloadError"] == 1
    # slowloris, slow body, malformed status, truncated: 3 each; reset once: 1;
    # 503 x3: 3; 429: 1
    assert stats.retries == 4 * MAX_RETRIES + 1 + 3 + 1
    # each redirect chain is one request: /loop/a, /chain/10 and /chain/11 make 10 hops more
    redirect_hops = 3 * Settings().max_redirects
    assert stats.requests == sum(len(times) for times in outcome.hits.values()) - redirect_hops


def test_bad_urls_from_a_spider_are_counted_and_dropped(outcome: Outcome) -> None:
    assert outcome.stats.errors["InvalidURL"] == len(BAD_URLS)
    samples = outcome.stats.extra["invalid_url_samples"]
    assert len(samples) == len(BAD_URLS)
    assert all(len(sample) < 200 for sample in samples)  # a short sample, not 10,000 chars
    assert "no scheme" in samples[0]
    assert "\\x00" in samples[2]  # shown escaped, never raw


# ---- timeouts ----------------------------------------------------------------------


def test_slowloris_headers_time_out_and_are_retried_then_given_up(outcome: Outcome) -> None:
    failure = failure_of(outcome, "/slowloris")
    assert reason(failure) == "TimeoutError"
    assert failure.attempts == MAX_RETRIES + 1
    assert len(outcome.hits["/slowloris"]) == MAX_RETRIES + 1


def test_a_body_slower_than_sock_read_times_out(outcome: Outcome) -> None:
    failure = failure_of(outcome, "/slow-body")
    assert reason(failure) == "TimeoutError"
    assert failure.attempts == MAX_RETRIES + 1
    assert len(outcome.hits["/slow-body"]) == MAX_RETRIES + 1


# ---- broken connections and bodies -------------------------------------------------


def test_a_reset_mid_body_is_retried_and_the_page_fetched(outcome: Outcome) -> None:
    page = outcome.spider.pages["/reset-once"]
    assert page.title == "survived a reset"
    assert page.attempts == 2
    assert len(outcome.hits["/reset-once"]) == 2


def test_a_truncated_content_length_is_a_payload_error(outcome: Outcome) -> None:
    failure = failure_of(outcome, "/truncated")
    assert reason(failure) == "ClientPayloadError"
    assert "Content-Length" in str(failure.exception) or "content length" in str(failure.exception)
    assert failure.attempts == MAX_RETRIES + 1


def test_a_malformed_status_line_fails_cleanly(outcome: Outcome) -> None:
    failure = failure_of(outcome, "/malformed-status")
    assert reason(failure) == "BadHttpMessage"
    assert failure.response is None
    assert len(outcome.hits["/malformed-status"]) == MAX_RETRIES + 1


def test_bad_header_values_fall_back_gracefully(outcome: Outcome) -> None:
    page = outcome.spider.pages["/bad-headers"]
    assert page.status == 200
    assert page.title == "odd headers"
    assert page.headers["X-Latin"] == "café"  # not UTF-8 on the wire: read as Latin-1
    assert page.headers["Retry-After"] == "whenever you like"
    orjson.dumps(list(page.headers.values()))  # storable in an item: no lone surrogates


# ---- size limits -------------------------------------------------------------------


@pytest.mark.parametrize("path", ["/too-big", "/too-big-streamed", "/endless-chunked"])
def test_bodies_over_the_cap_fail_without_retry(outcome: Outcome, path: str) -> None:
    failure = failure_of(outcome, path)
    assert reason(failure) == "ResponseTooLarge"
    assert failure.attempts == 1
    assert len(outcome.hits[path]) == 1


@pytest.mark.parametrize("path", ["/gzip-bomb", "/deflate-bomb"])
def test_a_compression_bomb_is_cut_off_at_the_cap(outcome: Outcome, path: str) -> None:
    """Cut off by the decoded size, once; how little memory that takes (a fraction of
    the bomb's BOMB_SIZE) is measured by ``python -m benchmarks.memory --only bomb``."""
    failure = failure_of(outcome, path)
    assert reason(failure) == "ResponseTooLarge"
    assert failure.attempts == 1
    assert len(outcome.hits[path]) == 1
    assert "Content-Length" not in str(failure.exception)  # the compressed size is small


# ---- redirects ---------------------------------------------------------------------


def test_a_redirect_loop_is_detected_and_bounded(outcome: Outcome) -> None:
    failure = failure_of(outcome, "/loop/a")
    assert reason(failure) == "RedirectLoop"
    assert failure.attempts == 1
    hops = len(outcome.hits["/loop/a"]) + len(outcome.hits["/loop/b"])
    assert hops == Settings().max_redirects + 1


def test_up_to_max_redirects_are_followed_and_no_more(outcome: Outcome) -> None:
    page = outcome.spider.pages["/chain/10"]
    assert page.title == "end of the chain"
    assert page.url.endswith("/chain/0")
    failure = failure_of(outcome, "/chain/11")
    assert reason(failure) == "TooManyRedirects"
    assert len(outcome.hits["/chain/0"]) == 1  # /chain/11 stopped one hop short of it


def test_a_redirect_to_a_file_url_is_refused_and_counted(outcome: Outcome) -> None:
    failure = failure_of(outcome, "/to-file")
    assert reason(failure) == "RedirectRefused"
    assert "file:///etc/passwd" in str(failure.exception)
    assert failure.attempts == 1
    assert len(outcome.hits["/to-file"]) == 1


# ---- retried statuses --------------------------------------------------------------


def test_503_three_times_then_200_is_fetched_on_the_fourth_attempt(outcome: Outcome) -> None:
    page = outcome.spider.pages["/flaky-503"]
    assert page.title == "recovered"
    assert page.attempts == 4
    assert outcome.stats.status_counts[503] == 3
    times = outcome.hits["/flaky-503"]
    assert len(times) == 4
    gaps = [b - a for a, b in itertools.pairwise(times)]
    assert all(gap > 0 for gap in gaps), gaps  # spaced by backoff, never back to back


def test_429_retry_after_is_honoured(outcome: Outcome) -> None:
    page = outcome.spider.pages["/retry-after"]
    assert page.title == "after the pause"
    assert outcome.stats.status_counts[429] == 1
    first, second = outcome.hits["/retry-after"]
    assert second - first >= 2.0


# ---- odd but valid pages -----------------------------------------------------------


def test_an_unknown_charset_decodes_with_a_fallback(outcome: Outcome) -> None:
    page = outcome.spider.pages["/charset"]
    assert page.title == "café ünïcode"


def test_an_empty_200_reaches_the_callback(outcome: Outcome) -> None:
    page = outcome.spider.pages["/empty"]
    assert (page.status, page.body, page.text, page.title) == (200, b"", "", None)
