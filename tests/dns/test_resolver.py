"""The caching resolver against a real DNS server (dnsmasq on loopback): answers kept
for their TTL, failures kept and counted, one lookup per name, none through proxies
that resolve names themselves."""

from __future__ import annotations

import asyncio
import contextlib
import sys
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
from aiohttp import web
from needs import require_tool
from sites import pproxy, serve

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))  # the repo's `benchmarks`

from benchmarks.dnsmasq import Dnsmasq, bench_address, dnsmasq
from pooledcrawl import Engine, Request, Response, Settings, Spider
from pooledcrawl.dns import CachingResolver
from pooledcrawl.proxy.endpoint import ProxyConfig, parse_proxy_url
from pooledcrawl.transport.aiohttp import AiohttpTransport

pytestmark = pytest.mark.timeout(120)

HOSTS = {f"h{n}.bench.test": bench_address(n) for n in range(50)}


@pytest.fixture
def dns(tmp_path: Path) -> Iterator[Dnsmasq]:
    require_tool("dnsmasq")
    with dnsmasq(HOSTS, tmp_path, ttl=60) as server:
        yield server


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


async def test_answers_come_from_the_server_and_are_kept_for_their_ttl(dns: Dnsmasq) -> None:
    clock = Clock()
    resolver = CachingResolver(servers=[dns.server], clock=clock)
    try:
        for name, address in list(HOSTS.items())[:20]:
            (answer,) = await resolver.resolve(name, 8080)
            assert (answer["host"], answer["port"]) == (address, 8080)
        assert resolver.counts.lookups == 20
        assert resolver.counts.backend == "c-ares"
        clock.now += 59.0  # dnsmasq gave a 60 s TTL
        await resolver.resolve("h3.bench.test", 8080)
        assert resolver.counts.lookups == 20
        assert resolver.counts.cache_hits == 1
        clock.now += 2.0
        await resolver.resolve("h3.bench.test", 8080)
        assert resolver.counts.lookups == 21
    finally:
        await resolver.close()


async def test_failures_are_counted_and_cached(dns: Dnsmasq) -> None:
    clock = Clock()
    resolver = CachingResolver(servers=[dns.server], clock=clock, negative_ttl=30.0)
    try:
        with pytest.raises(OSError):
            await resolver.resolve("nosuch.bench.test", 80)
        with pytest.raises(OSError):
            await resolver.resolve("nosuch.bench.test", 80)
        assert (resolver.counts.lookups, resolver.counts.errors) == (1, 1)
        assert resolver.counts.negative_hits == 1
        clock.now += 31.0
        with pytest.raises(OSError):
            await resolver.resolve("nosuch.bench.test", 80)
        assert (resolver.counts.lookups, resolver.counts.errors) == (2, 2)
    finally:
        await resolver.close()


async def test_concurrent_askers_share_one_lookup(dns: Dnsmasq) -> None:
    resolver = CachingResolver(servers=[dns.server])
    try:
        answers = await asyncio.gather(*(resolver.resolve("h7.bench.test", 80) for _ in range(30)))
        assert {a[0]["host"] for a in answers} == {HOSTS["h7.bench.test"]}
        assert resolver.counts.lookups == 1
    finally:
        await resolver.close()


async def test_c_ares_channels_are_renewed_and_the_old_ones_closed(dns: Dnsmasq) -> None:
    # c-ares caches every answer itself; a channel is dropped after a few lookups so
    # that copy stays small. Lookups in flight across a renewal all get their answer.
    resolver = CachingResolver(servers=[dns.server], channel_lookups=4)
    names = list(HOSTS.items())
    try:
        answers = await asyncio.gather(*(resolver.resolve(name, 80) for name, _ in names[:23]))
        assert [a[0]["host"] for a in answers] == [address for _, address in names[:23]]
        for name, address in names[23:30]:  # one at a time, across two more renewals
            (answer,) = await resolver.resolve(name, 443)
            assert (answer["host"], answer["port"]) == (address, 443)
        assert resolver.counts.lookups == 30
        assert resolver._channels == 8  # ceil(30 / 4)
        # only the current channel is open: each retired one closed with its last lookup
        assert [n for n in resolver._busy.values() if n] == []
        assert set(resolver._busy) <= {resolver._aiodns}
        (cached,) = await resolver.resolve(names[0][0], 8080)  # the port is the asker's
        assert (cached["host"], cached["port"]) == (names[0][1], 8080)
        assert resolver.counts.lookups == 30
    finally:
        await resolver.close()


def _site() -> web.Application:
    async def page(request: web.Request) -> web.Response:
        n = int(request.match_info["n"])
        links = "".join(f'<a href="/p/{i}">{i}</a>' for i in range(1, 4)) if n == 0 else ""
        return web.Response(text=f"<html><body>{links}</body></html>", content_type="text/html")

    app = web.Application()
    app.router.add_get("/p/{n}", page)
    return app


class _Names(Spider):
    name = "names"

    def __init__(self, urls: list[str]) -> None:
        super().__init__()
        self.urls = urls

    async def start(self) -> AsyncIterator[Request]:
        for url in self.urls:
            yield Request(url, self.parse)

    def parse(self, response: Response) -> Iterator[Request]:
        yield from response.follow_all(css="a", callback=self.parse)


async def test_a_crawl_resolves_through_the_configured_server(dns: Dnsmasq, tmp_path: Path) -> None:
    # every name points at 127.0.0.1 here: the server listens there only
    with dnsmasq({f"s{n}.bench.test": "127.0.0.1" for n in range(10)}, tmp_path) as names:
        async with serve(_site()) as base:
            port = base.rsplit(":", 1)[1].rstrip("/")
            urls = [f"http://s{n}.bench.test:{port}/p/0" for n in range(10)]
            urls.append(f"http://missing.bench.test:{port}/p/0")
            settings = Settings(concurrency=8, dns_servers=[names.server], max_retries=1)
            stats = await Engine(_Names(urls), settings).run()
    assert stats.pages == 40
    dns_stats = stats.extra["dns"]
    assert dns_stats["backend"] == "c-ares"
    # one lookup per name, and one for the name that does not exist: its retry was
    # answered from the negative cache
    assert dns_stats["lookups"] == 11
    assert dns_stats["dns_errors"] == 1
    assert dns_stats["negative_cache_hits"] >= 1
    assert stats.extra["hosts"]["seen"] == 11
    assert stats.extra["hosts"]["with_errors"] == 1


@pytest.mark.parametrize(
    ("scheme", "url_scheme", "local_lookups"),
    # direct: the control, where the crawler itself looks the name up
    [("http", "http", 0), ("socks5", "socks5h", 0), (None, None, 1)],
)
async def test_proxies_that_resolve_names_cause_no_local_lookup(
    dns: Dnsmasq, scheme: str | None, url_scheme: str | None, local_lookups: int
) -> None:
    # the target is "localhost": the proxy finds it in its own /etc/hosts
    async with contextlib.AsyncExitStack() as stack:
        base = await stack.enter_async_context(serve(_site()))
        config = None
        if scheme is not None and url_scheme is not None:
            proxy_url = (await stack.enter_async_context(pproxy(scheme))).url()
            proxy = proxy_url.replace(f"{scheme}://", f"{url_scheme}://", 1)
            config = ProxyConfig("static", (parse_proxy_url(proxy, where="test"),), "test")
        port = base.rsplit(":", 1)[1].rstrip("/")
        url = f"http://localhost:{port}/p/0"
        settings = Settings(concurrency=4, dns_servers=[dns.server])
        transport = AiohttpTransport(settings)
        stats = await Engine(_Names([url]), settings, transport=transport, proxies=config).run()
    assert stats.pages == 4
    # the proxy's own address is a literal: nothing to look up for it either
    assert stats.extra["dns"]["lookups"] == local_lookups
