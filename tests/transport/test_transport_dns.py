"""httpx and curl resolve names through the crawl's resolver, as aiohttp does: against a
real DNS server (dnsmasq on loopback) that alone knows the ``bench.test`` names, so a
page fetched is a name the crawl's resolver answered."""

from __future__ import annotations

import contextlib
import os
import socket
import sys
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest
from h2site import GraphApp, make_certs, serve_hypercorn
from needs import require_tool, require_transport
from sites import link_graph_app, pproxy, serve

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))  # the repo's `benchmarks`

from benchmarks.dnsmasq import Dnsmasq, dnsmasq
from pooledcrawl import Engine, Request, Response, Settings, Spider
from pooledcrawl.engine.addresses import ip_routing
from pooledcrawl.frontier.memory import MemoryFrontier
from pooledcrawl.proxy.endpoint import ProxyConfig, parse_proxy_url
from pooledcrawl.transport.base import DNS_FAILED
from pooledcrawl.transport.factory import make_transport

pytestmark = pytest.mark.timeout(120)

#: every name on 127.0.0.1, where the test servers listen; ``gone.bench.test`` and
#: any other name under bench.test: NXDOMAIN
NAMES = {f"h{n}.bench.test": "127.0.0.1" for n in range(6)}
#: a name with an IPv6 address only (libcurl's pin writes it in brackets)
V6 = {"v6.bench.test": "::1"}
#: ``two.bench.test`` has two addresses, and nothing listens on the first
TWO = ("127.0.0.3", "127.0.0.1")
#: pages of each host's link graph (all reached from /p/0.html)
PAGES = 5


@pytest.fixture(params=["httpx", "curl"])
def kind(request: pytest.FixtureRequest) -> str:
    require_transport(request.param)
    return str(request.param)


@pytest.fixture
def dns(tmp_path: Path) -> Iterator[Dnsmasq]:
    require_tool("dnsmasq")
    more = tmp_path / "two.hosts"  # a second hosts file: a name on two lines
    more.write_text("".join(f"{address} two.bench.test\n" for address in TWO))
    os.chmod(more, 0o644)
    with dnsmasq(NAMES | V6, tmp_path, ttl=60, extra=(f"--addn-hosts={more}",)) as server:
        yield server


class _Graph(Spider):
    name = "graph"

    def __init__(self, urls: list[str]) -> None:
        super().__init__()
        self.urls = urls
        self.versions: list[str] = []

    async def start(self) -> AsyncIterator[Request]:
        for url in self.urls:
            yield Request(url, self.parse)

    def parse(self, response: Response) -> Iterator[Request]:
        self.versions.append(response.http_version)
        yield from response.follow_all(css="a", callback=self.parse)


def _settings(kind: str, dns: Dnsmasq, **values: Any) -> Settings:
    fast = {"retry_backoff_base": 0.01, "max_retries": 1, "concurrency": 8}
    return Settings(transport=kind, dns_servers=[dns.server], **{**fast, **values})


async def test_a_crawl_resolves_through_the_crawls_resolver(kind: str, dns: Dnsmasq) -> None:
    async with serve(link_graph_app(PAGES, links=3)) as base:
        port = base.rsplit(":", 1)[1]
        urls = [f"http://{name}:{port}/p/0.html" for name in NAMES]
        urls.append(f"http://gone.bench.test:{port}/p/0.html")
        stats = await Engine(_Graph(urls), _settings(kind, dns)).run()
    assert stats.pages == PAGES * len(NAMES)
    counts = stats.extra["dns"]
    assert counts["backend"] == "c-ares"
    # one lookup per name, the failed one included: its retry was answered from the
    # negative cache, and it failed under aiohttp's name for a DNS failure
    assert counts["lookups"] == len(NAMES) + 1
    assert counts["dns_errors"] == 1
    assert counts["negative_cache_hits"] >= 1
    assert counts["cache_hits"] >= 1
    assert dict(stats.errors) == {DNS_FAILED: 1}
    assert stats.retries == 1
    assert stats.extra["hosts"]["with_errors"] == 1


async def test_politeness_key_ip_looks_each_name_up_once(kind: str, dns: Dnsmasq) -> None:
    async with serve(link_graph_app(PAGES, links=3)) as base:
        port = base.rsplit(":", 1)[1]
        urls = [f"http://{name}:{port}/p/0.html" for name in NAMES]
        urls.append(f"http://gone.bench.test:{port}/p/0.html")
        settings = _settings(kind, dns, politeness_key="ip")
        stats = await Engine(_Graph(urls), settings).run()
    assert stats.pages == PAGES * len(NAMES)
    # the names share their address's slot; the one that failed keeps its host key
    assert set(stats.domains) == {f"127.0.0.1:{port}", f"gone.bench.test:{port}"}
    # the routing lookup and the transport's are one: the transport's resolver
    counts = stats.extra["dns"]
    assert counts["lookups"] == len(NAMES) + 1
    assert counts["dns_errors"] == 1
    assert dict(stats.errors) == {DNS_FAILED: 1}


async def test_routing_by_address_asks_the_transports_resolver(kind: str, dns: Dnsmasq) -> None:
    settings = _settings(kind, dns, politeness_key="ip")
    transport = make_transport(settings)
    try:
        routing = ip_routing(MemoryFrontier(), settings, transport, [None])
        assert routing is not None
        addresses, own = routing
        assert own is None  # no resolver of its own: the transport's
        resolver = transport.resolver()  # type: ignore[attr-defined]
        await resolver.resolve("h2.bench.test", 80, socket.AF_UNSPEC)
        assert addresses.key("http://h2.bench.test/x") == "127.0.0.1"
        assert transport.dns is resolver  # type: ignore[attr-defined]
    finally:
        await transport.close()


async def test_tls_is_checked_against_the_name_not_the_address(
    kind: str, dns: Dnsmasq, tmp_path: Path
) -> None:
    # the certificate names h0 and h1 only, not 127.0.0.1: a connection verified
    # against the address it went to would fail for every name
    certs = make_certs(tmp_path, "h0.bench.test", "h1.bench.test")
    app = GraphApp(PAGES)
    async with serve_hypercorn(app, certs) as base:
        port = base.rsplit(":", 1)[1]
        urls = [f"https://h{n}.bench.test:{port}/p/0.html" for n in range(3)]
        spider = _Graph(urls)
        settings = _settings(kind, dns, http2=True, ca_bundle=str(certs.ca))
        stats = await Engine(spider, settings).run()
    assert stats.pages == 2 * PAGES
    assert set(spider.versions) == {"HTTP/2"}
    # h2 resolves to the same server, whose certificate is not h2's: refused for good
    assert dict(stats.errors) == {"SSLCertVerificationError": 1}
    assert stats.retries == 0
    assert stats.extra["dns"]["lookups"] == 3


async def test_each_address_is_tried_in_turn(kind: str, dns: Dnsmasq) -> None:
    # dnsmasq rotates the order of a name's addresses from one answer to the next, so
    # fresh crawls meet the dead address first half the time
    seen_first: set[str] = set()
    async with serve(link_graph_app(1)) as base:
        port = base.rsplit(":", 1)[1]
        for _ in range(4):
            transport = make_transport(_settings(kind, dns))
            settings = _settings(kind, dns, max_retries=0)
            url = f"http://two.bench.test:{port}/p/0.html"
            stats = await Engine(_Graph([url]), settings, transport=transport).run()
            assert stats.pages == 1, dict(stats.errors)
            assert not stats.errors
            resolver = transport.resolver()  # type: ignore[attr-defined]
            cached = resolver.peek("two.bench.test", port, 0)
            assert cached is not None and set(cached) == set(TWO)
            seen_first.add(cached[0])
    assert seen_first == set(TWO)  # the dead address came first at least once


async def test_an_ipv6_answer_is_connected_to(kind: str, dns: Dnsmasq) -> None:
    try:
        with socket.socket(socket.AF_INET6) as probe:
            probe.bind(("::1", 0))
    except OSError:
        pytest.skip("no IPv6 loopback here")
    async with serve(link_graph_app(PAGES, links=3), host="::1") as base:
        port = base.rsplit(":", 1)[1]
        url = f"http://v6.bench.test:{port}/p/0.html"
        stats = await Engine(_Graph([url]), _settings(kind, dns)).run()
    assert stats.pages == PAGES, dict(stats.errors)
    assert stats.extra["dns"]["lookups"] == 1


async def test_through_a_proxy_the_proxy_resolves(kind: str, dns: Dnsmasq) -> None:
    # the target is "localhost": the proxy finds it in its own /etc/hosts; the crawl
    # looks nothing up (and makes no resolver)
    async with contextlib.AsyncExitStack() as stack:
        base = await stack.enter_async_context(serve(link_graph_app(PAGES, links=3)))
        proxy = (await stack.enter_async_context(pproxy("http"))).url()
        config = ProxyConfig("static", (parse_proxy_url(proxy, where="test"),), "test")
        port = base.rsplit(":", 1)[1]
        url = f"http://localhost:{port}/p/0.html"
        stats = await Engine(_Graph([url]), _settings(kind, dns), proxies=config).run()
    assert stats.pages == PAGES
    assert stats.extra.get("dns", {}).get("lookups", 0) == 0
