"""Broad crawls: idle slots are folded and dropped, returning hosts keep what their
controller learned, the stats keep the top N hosts plus aggregates over all."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator

import orjson
import pytest

from pooledcrawl import Request, Response, Settings, Spider
from pooledcrawl.engine.dispatcher import Dispatcher, key_function, registered_domain
from pooledcrawl.engine.engine import Engine
from pooledcrawl.frontier.memory import MemoryFrontier
from pooledcrawl.metrics import CrawlMetrics
from pooledcrawl.metrics.timing import Timing
from pooledcrawl.throttle.factory import policy_factory


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


async def _dispatcher(clock: Clock, **kwargs: object) -> tuple[Dispatcher, MemoryFrontier]:
    frontier = MemoryFrontier()
    metrics = CrawlMetrics(clock())
    dispatcher = Dispatcher(
        frontier,
        policy_factory(Settings(concurrency=16)),
        clock,
        metrics=metrics,
        **kwargs,  # type: ignore[arg-type]
    )
    return dispatcher, frontier


async def test_an_idle_host_is_dropped_and_comes_back_with_its_learned_rate() -> None:
    clock = Clock()
    dispatcher, frontier = await _dispatcher(clock, idle_timeout=1.0)
    frontier.push(Request("http://a.test/1"), "http://a.test/1")
    request, slot = await dispatcher.next()  # type: ignore[misc]
    clock.now += 0.05
    # the server says 429: the controller leaves slow start and paces the host
    slot.policy.on_response(clock(), 429, 0.05, {})
    learned = slot.policy.snapshot()["rate"]
    assert learned is not None
    dispatcher.release(slot)
    dispatcher.finish(request)
    assert "a.test" in dispatcher.slots  # idle, not yet for long
    # another host's request ends after a.test has been idle past the timeout
    clock.now += 2.0
    frontier.push(Request("http://b.test/1"), "http://b.test/1")
    other, other_slot = await dispatcher.next()  # type: ignore[misc]
    dispatcher.release(other_slot)
    dispatcher.finish(other)
    assert "a.test" not in dispatcher.slots
    # work for a.test again: a new slot, paced at the rate it had learned
    clock.now += 5.0
    frontier.push(Request("http://a.test/2"), "http://a.test/2")
    again, again_slot = await dispatcher.next()  # type: ignore[misc]
    assert again_slot is not slot
    assert again_slot.policy.snapshot()["rate"] == learned
    # a host never seen starts unpaced (slow start)
    fresh = policy_factory(Settings(concurrency=16))("c.test")
    assert fresh.snapshot()["rate"] is None
    dispatcher.release(again_slot)
    dispatcher.finish(again)


async def test_idle_slots_past_the_cap_are_dropped_oldest_first() -> None:
    clock = Clock()
    dispatcher, frontier = await _dispatcher(clock, idle_timeout=3600.0, max_idle=3)
    for n in range(10):
        url = f"http://h{n}.test/"
        frontier.push(Request(url), url)
        request, slot = await dispatcher.next()  # type: ignore[misc]
        clock.now += 0.01
        dispatcher.release(slot)
        dispatcher.finish(request)
    assert sorted(dispatcher.slots) == ["h7.test", "h8.test", "h9.test"]


def test_registered_domain_key() -> None:
    key = key_function("domain")
    assert key("http://a.example.test/x") == key("http://b.example.test/y") == "example.test"
    assert key("https://www.bbc.co.uk/news") == "bbc.co.uk"  # a public suffix of two labels
    assert key("http://shop.example.com:8080/") == "example.com:8080"
    assert key("http://127.0.0.1:9000/") == "127.0.0.1:9000"
    assert key_function("host")("http://a.example.test/x") == "a.example.test"
    # the bundled Public Suffix List knows private suffixes are not registrable domains
    assert registered_domain("x.y.example.com", lambda h: _NoSuffix()) == "example.com"


class _NoSuffix:
    top_domain_under_public_suffix = ""


class _Transport:
    """Answers every request after a short pause; counts what each host had in flight."""

    def __init__(
        self, status_of: dict[str, int] | None = None, once: dict[str, int] | None = None
    ) -> None:
        self.status_of = status_of or {}
        self.once = once or {}  # host -> status of its first answer only
        self.inflight: dict[str, int] = {}
        self.peak: dict[str, int] = {}

    async def fetch(self, request: Request, proxy: str | None = None) -> Response:
        host = request.url.split("/")[2]
        self.inflight[host] = self.inflight.get(host, 0) + 1
        self.peak[host] = max(self.peak.get(host, 0), self.inflight[host])
        await asyncio.sleep(0.002)
        self.inflight[host] -= 1
        status = self.once.pop(host, None) or self.status_of.get(host, 200)
        response = Response(request.url, status, {}, b"", request, "HTTP/1.1")
        response.timing = Timing(headers=0.002, body=0.002, reused=1)
        return response

    async def close(self) -> None:
        return None


class _Broad(Spider):
    name = "broad"
    hosts = 120
    pages = 4

    async def start(self) -> AsyncIterator[Request]:
        for n in range(self.hosts):
            yield Request(f"http://h{n}.bench.test/p/0", self.parse)

    def parse(self, response: Response) -> Iterator[Request]:
        base = response.url[: -len("0")]
        # h0 is the biggest host, so it must make the top list
        extra = 20 if "//h0." in response.url else 0
        for i in range(1, self.pages + extra):
            yield Request(f"{base}{i}", self.page, priority=1)

    def page(self, response: Response) -> None:
        return None


async def test_stats_keep_the_top_hosts_and_aggregates_over_all() -> None:
    blocked = {f"h{n}.bench.test": 403 for n in (5, 6, 7)}
    throttled = {"h8.bench.test": 429}  # then 200 when retried
    settings = Settings(concurrency=32, top_hosts=10, slot_idle_timeout=0.0, max_idle_slots=0)
    engine = Engine(_Broad(), settings, transport=_Transport(blocked, throttled))
    stats = await engine.run()
    hosts = stats.extra["hosts"]
    assert hosts["seen"] == 120
    assert hosts["done"] == 120
    assert hosts["blocked"] == 3
    assert hosts["pages_per_host"]["max"] == 24
    assert hosts["pages_per_host"]["p50"] == 4
    assert hosts["latency_ms"]["p50"] == pytest.approx(2.0, rel=0.05)
    # detail for at most 10 by pages + 10 by errors + 10 by 429s
    assert len(stats.domains) <= 30
    assert "h0.bench.test" in stats.domains
    assert stats.domains["h0.bench.test"]["pages"] == 24
    assert stats.domains["h8.bench.test"]["n429"] == 1
    assert stats.domains["h8.bench.test"]["pages"] == 4
    # slots were dropped as hosts went idle, not kept to the end
    assert len(engine.dispatcher.slots) == 0
    assert stats.extra["hosts"]["detailed"] == len(stats.domains)
    assert len(orjson.dumps(stats.to_dict(), default=str)) < 200_000


async def test_domain_key_makes_subdomains_share_one_limit() -> None:
    class Subdomains(Spider):
        name = "subdomains"

        async def start(self) -> AsyncIterator[Request]:
            for sub in ("a", "b"):
                for i in range(8):
                    yield Request(f"http://{sub}.example.test/{i}", self.parse)

        def parse(self, response: Response) -> None:
            return None

    def run(key: str) -> dict[str, object]:
        settings = Settings(
            concurrency=16, domain_concurrency=2, autothrottle=False, politeness_key=key
        )
        transport = _Transport()
        engine = Engine(Subdomains(), settings, transport=transport)
        asyncio.get_running_loop()
        return {"engine": engine, "transport": transport}

    by_host = run("host")
    await by_host["engine"].run()  # type: ignore[attr-defined]
    by_domain = run("domain")
    stats = await by_domain["engine"].run()  # type: ignore[attr-defined]
    assert set(stats.domains) == {"example.test"}
    assert stats.domains["example.test"]["peak_concurrency"] == 2
    # under "host" each subdomain had its own limit of 2: 4 at once in all
    assert set(by_host["engine"].stats.domains) == {"a.example.test", "b.example.test"}  # type: ignore[attr-defined]
    host_peak = sum(by_host["transport"].peak.values())  # type: ignore[attr-defined]
    assert host_peak == 4


async def test_a_host_never_waits_behind_another_hosts_long_queue() -> None:
    from pooledcrawl.throttle.fixed import FixedPolicy

    clock = Clock()
    frontier = MemoryFrontier()
    dispatcher = Dispatcher(frontier, lambda _key: FixedPolicy(1), clock)
    for i in range(500):  # a.test: a long queue, one request at a time
        frontier.push(Request(f"http://a.test/{i}"), f"http://a.test/{i}")
    request, slot = await dispatcher.next()  # type: ignore[misc]
    assert slot.key == "a.test"
    # a.test's other 499 are parked; then work for 300 other hosts arrives
    for n in range(300):
        frontier.push(Request(f"http://h{n}.test/"), f"http://h{n}.test/")
    handed: list[str] = []
    held = [(request, slot)]
    for _ in range(300):
        got = await dispatcher.next()
        assert got is not None
        handed.append(got[1].key)
        held.append(got)
    # every other host went out while a.test still had its one request in flight
    assert "a.test" not in handed
    assert len(set(handed)) == 300
    # a.test's parked requests then go one at a time, as its slot frees up
    first_request, first_slot = held[0]
    dispatcher.release(first_slot)
    dispatcher.finish(first_request)
    got = await dispatcher.next()
    assert got is not None and got[1].key == "a.test"
    assert dispatcher.parked == 498


def test_the_stats_file_stays_small_with_long_lived_hosts() -> None:
    from pooledcrawl.metrics.hosts import HostBook

    book = HostBook(top=50)
    row = [100, 8, 12.5, 10, 0]
    for n in range(2000):
        # hosts crawled for an hour: a controller timeline of 3,600 rows each

        def detail(n: int = n) -> dict[str, object]:
            return {"timeline": [row] * 3600, "pages": n}

        book.fold(f"h{n}.test", (n, n, n % 7, n % 5, 0), None, detail)
    domains = book.top_domains()
    assert len(domains) <= 150
    assert len(orjson.dumps(domains)) < 1024 * 1024
    assert "h1999.test" in domains and len(domains["h1999.test"]["timeline"]) == 1000  # type: ignore[arg-type]
    assert book.summary()["seen"] == 2000


def test_an_unknown_politeness_key_is_a_usage_error() -> None:
    from pooledcrawl.errors import UsageError

    with pytest.raises(UsageError, match="politeness_key"):
        Settings(politeness_key="street")
    with pytest.raises(UsageError, match="top_hosts"):
        Settings(top_hosts=0)


@pytest.mark.parametrize("crowded", [1, None])
async def test_a_crowded_crawl_keeps_one_request_in_flight_per_host(crowded: int | None) -> None:
    class Wide(_Broad):
        hosts = 200
        pages = 8

    transport = _Transport()
    settings = Settings(
        concurrency=16,
        domain_concurrency=4,
        crowded_domain_concurrency=crowded,
        autothrottle=False,
        depth_priority=-1,
    )
    stats = await Engine(Wide(), settings, transport=transport).run()
    assert stats.pages == 200 * 8 + 20
    peaks = [transport.peak[f"h{n}.bench.test"] for n in range(200)]
    if crowded:
        # 200 hosts for 16 workers: one each, but for the last few as the crowd thins
        assert peaks.count(1) >= 180 and max(peaks) <= 4
    else:
        assert peaks.count(4) >= 180  # each host fills its own limit
