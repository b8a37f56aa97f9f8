"""``Crawl-delay`` when hosts share a slot (``politeness_key`` ``domain`` or ``ip``):
the slot keeps the largest delay of the hosts routed through it. The bookkeeping
alone, then crawls of two names served by dnsmasq on loopback."""

from __future__ import annotations

import asyncio
import itertools
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from aiohttp import web
from needs import require_tool
from sites import serve

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))  # the repo's `benchmarks`

from benchmarks.dnsmasq import Dnsmasq, dnsmasq
from pooledcrawl import Engine, Request, Response, Settings, Spider, Stats
from pooledcrawl.frontier.memory import MemoryFrontier
from pooledcrawl.hygiene.robots import CrawlDelayPolicy, RobotsFrontier, SlotDelays, _Host
from pooledcrawl.throttle.fixed import FixedPolicy

pytestmark = pytest.mark.timeout(120)

NAMES = {"a.bench.test": "127.0.0.1", "b.bench.test": "127.0.0.1"}
DELAY = 0.3


# ---- the bookkeeping -------------------------------------------------------------------
def _delayed(key: str, delay: float) -> _Host:
    host = _Host(key)
    host.crawl_delay = delay
    return host


def test_a_shared_slot_takes_the_largest_delay_of_its_hosts() -> None:
    delays = SlotDelays()
    policy = CrawlDelayPolicy(FixedPolicy(4), delays.of("example.com"))
    keyed = delays.route(lambda url: "example.com")
    # no host has a delay: routing notes nothing
    assert keyed("http://a.example.com/") == "example.com"
    policy.on_send(10.0)
    assert policy.ready_at() == 0.0
    delays.delayed["b.example.com"] = _delayed("b.example.com", 2.0)
    delays.delayed["c.example.com"] = _delayed("c.example.com", 1.0)
    keyed("http://a.example.com/x")  # not delayed
    assert policy.ready_at() == 0.0
    keyed("http://b.example.com/x")
    assert policy.ready_at() == 12.0
    keyed("http://c.example.com/x")  # a smaller delay does not lower it
    assert policy.ready_at() == 12.0
    assert policy.snapshot()["crawl_delay"] == 2.0
    # a new policy for the same slot (the old one evicted) reads the same delay
    again = CrawlDelayPolicy(FixedPolicy(4), delays.of("example.com"))
    again.on_send(20.0)
    assert again.ready_at() == 22.0


def test_a_host_whose_slot_changes_raises_the_new_slots_delay() -> None:
    delays = SlotDelays()
    address = {"value": "10.0.0.1"}
    keyed = delays.route(lambda url: address["value"])
    delays.delayed["a.test"] = _delayed("a.test", 1.5)
    first = delays.of("10.0.0.1")
    keyed("http://a.test/")
    address["value"] = "10.0.0.2"  # the name resolves elsewhere now
    second = delays.of("10.0.0.2")
    keyed("http://a.test/")
    assert first.crawl_delay == 1.5 and second.crawl_delay == 1.5


def test_slot_delays_without_holders_are_dropped() -> None:
    delays = SlotDelays()
    keyed = delays.route(lambda url: "example.com")
    host = delays.delayed["a.example.com"] = _delayed("a.example.com", 1.0)
    keyed("http://a.example.com/")
    assert delays.of("example.com").crawl_delay == 1.0  # the host holds it
    delays.of("other.com")
    del delays.delayed["a.example.com"]  # the host was forgotten
    host.slot = None
    # nothing holds either cell any more: no state is left per slot
    assert delays.of("example.com").crawl_delay == 0.0
    assert len(delays._slots) <= 1


def test_host_keys_do_not_route_through_slot_delays() -> None:
    """``host`` mode keeps the direct path: a slot's policy reads its host's delay."""
    frontier = _robots_frontier()
    policy = frontier.wrap_policies(lambda key: FixedPolicy(2))("a.test:80 via p1")
    host = frontier._host("a.test:80")
    host.crawl_delay = 1.0
    policy.on_send(5.0)
    assert policy.ready_at() == 6.0
    assert frontier._shared is None


def _robots_frontier() -> RobotsFrontier:
    async def fetch(request: Request) -> Response:
        raise AssertionError("no fetch here")

    return RobotsFrontier(MemoryFrontier(), Settings(), Stats(), fetch, time.monotonic)


# ---- crawls ----------------------------------------------------------------------------
@pytest.fixture
def dns(tmp_path: Path) -> Iterator[Dnsmasq]:
    require_tool("dnsmasq")
    with dnsmasq(NAMES, tmp_path, ttl=60) as server:
        yield server


class _Site:
    """Two names on one server: ``a`` asks for a Crawl-delay, ``b`` has no rule. Every
    hit is logged with its Host header and the server's monotonic time."""

    def __init__(self) -> None:
        self.hits: list[tuple[str, str, float]] = []

    def app(self) -> web.Application:
        async def handler(request: web.Request) -> web.Response:
            host = request.host.split(":", 1)[0]
            self.hits.append((host, request.path, time.monotonic()))
            if request.path == "/robots.txt":
                if host == "a.bench.test":
                    return web.Response(text=f"User-agent: *\nCrawl-delay: {DELAY}\n")
                return web.Response(text="User-agent: *\nDisallow: /private\n")
            if request.path == "/p/0":
                # a's first page links to both names: b's robots.txt is fetched only
                # once a's delay is known, so every page goes out under it
                port = request.url.port
                links = "".join(
                    f'<a href="http://{name}:{port}/p/{i}">{i}</a>'
                    for name in NAMES
                    for i in (1, 2)
                )
                return web.Response(
                    text=f"<html><body>{links}</body></html>", content_type="text/html"
                )
            return web.Response(text="<html><body>page</body></html>", content_type="text/html")

        app = web.Application()
        app.router.add_get("/{tail:.*}", handler)
        return app


class _Follow(Spider):
    name = "shared-slots"

    def parse(self, response: Response) -> Iterator[Request]:
        yield from response.follow_all(css="a")


@pytest.mark.parametrize("politeness_key", ["domain", "ip"])
async def test_a_shared_slot_is_spaced_by_the_largest_crawl_delay(
    dns: Dnsmasq, politeness_key: str
) -> None:
    pytest.importorskip("tldextract")
    site = _Site()
    async with serve(site.app()) as base:
        port = base.rsplit(":", 1)[1]
        settings = Settings(
            concurrency=8,
            domain_concurrency=4,
            autothrottle=False,
            obey_robots=True,
            politeness_key=politeness_key,
            dns_servers=[dns.server],
        )
        engine = Engine(_Follow(start_urls=[f"http://a.bench.test:{port}/p/0"]), settings)
        async with asyncio.timeout(60):
            stats = await engine.run()
    slot = f"bench.test:{port}" if politeness_key == "domain" else f"127.0.0.1:{port}"
    robots = [host for host, path, _ in site.hits if path == "/robots.txt"]
    # one robots.txt per host; none for the slot key, which names no host
    assert sorted(robots) == ["a.bench.test", "b.bench.test"]
    assert sorted(engine.queue._hosts) == [f"a.bench.test:{port}", f"b.bench.test:{port}"]  # type: ignore[attr-defined]
    pages = [(host, t) for host, path, t in site.hits if path != "/robots.txt"]
    assert len(pages) == 5 and {host for host, _ in pages} == set(NAMES)
    # both hosts' pages share the slot and its delay: b's own robots.txt has none
    assert set(stats.domains) == {slot}
    assert stats.domains[slot]["crawl_delay"] == DELAY
    # without the delay the four linked pages would arrive within milliseconds (4 may
    # go at once); the server sees sends DELAY apart, the first maybe a little late
    # (its connection is new), so a generous bound
    gaps = [b - a for (_, a), (_, b) in itertools.pairwise(pages)]
    assert min(gaps) >= DELAY / 2
