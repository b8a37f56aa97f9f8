"""``politeness_key=ip``: hosts that resolve to one address share one slot. The keys
themselves (pure), then crawls against a real DNS server (dnsmasq on loopback) and
real servers on two loopback addresses."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
import sys
from collections import Counter
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
from aiohttp import web
from needs import require_tool

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))  # the repo's `benchmarks`

from benchmarks.dnsmasq import Dnsmasq, dnsmasq
from pooledcrawl import Engine, Request, Response, Settings, Spider
from pooledcrawl.dns import CachingResolver
from pooledcrawl.engine.addresses import (
    AddressFrontier,
    address_key,
    is_literal,
    lookup_target,
    proxied,
)
from pooledcrawl.errors import UsageError
from pooledcrawl.frontier.memory import MemoryFrontier
from pooledcrawl.proxy.endpoint import ProxyConfig, parse_proxy_url
from pooledcrawl.proxy.pool import ProxyPool

pytestmark = pytest.mark.timeout(120)

# a and b live on one address, c on another; "gone" does not resolve
NAMES = {"a.bench.test": "127.0.0.1", "b.bench.test": "127.0.0.1", "c.bench.test": "127.0.0.2"}


# ---- the pure part ---------------------------------------------------------------------
def test_lookup_target_splits_the_host_key_name_and_port() -> None:
    assert lookup_target("http://a.test/x") == ("a.test", "a.test", 80)
    assert lookup_target("https://A.test/x") == ("a.test", "a.test", 443)
    assert lookup_target("http://u:p@a.test:8080/x?y") == ("a.test:8080", "a.test", 8080)
    assert lookup_target("http://[::1]:81/") == ("[::1]:81", "::1", 81)
    assert lookup_target("https://[::1]/") == ("[::1]", "::1", 443)


def test_address_key_keeps_the_port_as_the_host_key_has_it() -> None:
    assert address_key("a.test", "10.0.0.1") == "10.0.0.1"
    assert address_key("a.test:8080", "10.0.0.1") == "10.0.0.1:8080"
    assert address_key("a.test:8080", "2001:db8::1") == "[2001:db8::1]:8080"
    assert address_key("a.test", "2001:db8::1") == "2001:db8::1"


def test_literals_need_no_lookup() -> None:
    assert is_literal("127.0.0.1") and is_literal("::1")
    assert not is_literal("a.test") and not is_literal("1.2.3.4.example") and not is_literal("")
    assert not is_literal("999.1.1.1")


def test_any_proxy_means_host_keys() -> None:
    pool = ProxyPool([parse_proxy_url("socks5h://127.0.0.1:1080", where="test")])
    assert proxied([None, pool])
    assert not proxied([None])


def test_ip_is_a_valid_politeness_key() -> None:
    assert Settings(politeness_key="ip").politeness_key == "ip"
    with pytest.raises(UsageError, match="host, domain or ip"):
        Settings(politeness_key="address")


# ---- against dnsmasq -------------------------------------------------------------------
@pytest.fixture
def dns(tmp_path: Path) -> Iterator[Dnsmasq]:
    require_tool("dnsmasq")
    with dnsmasq(NAMES, tmp_path, ttl=60) as server:
        yield server


async def test_requests_wait_for_their_hosts_lookup_then_go_by_address(dns: Dnsmasq) -> None:
    resolver = CachingResolver(servers=[dns.server])
    frontier = MemoryFrontier()
    addresses = AddressFrontier(frontier, resolver)
    woken = asyncio.Event()
    addresses.on_ready = woken.set
    try:
        for name in ("a", "b", "a"):
            url = f"http://{name}.bench.test:8080/{len(frontier)}"
            frontier.push(Request(url), url)
        frontier.push(Request("http://127.0.0.9:8080/"), "http://127.0.0.9:8080/")
        # the literal goes at once; the names wait, without blocking, for one lookup each
        first = addresses.pop(0.0)
        assert first is not None and first.url == "http://127.0.0.9:8080/"
        assert addresses.key(first.url) == "127.0.0.9:8080"
        assert addresses.pop(0.0) is None
        assert len(addresses) == 3 and not addresses.exhausted()
        while len(addresses._waiting):  # both lookups answered
            await asyncio.wait_for(woken.wait(), 10)
            woken.clear()
        popped = [addresses.pop(0.0) for _ in range(3)]
        assert addresses.pop(0.0) is None and addresses.exhausted()
        keys = Counter(addresses.key(r.url) for r in popped if r is not None)
        assert keys == {"127.0.0.1:8080": 3}
        assert resolver.counts.lookups == 2
    finally:
        await addresses.close()
        await resolver.close()


@contextlib.asynccontextmanager
async def _two_addresses(app: web.Application) -> AsyncIterator[int]:
    """``app`` on 127.0.0.1 and 127.0.0.2, one port number for both."""
    runner = web.AppRunner(app, access_log=None, shutdown_timeout=0.5)
    await runner.setup()
    try:
        for _ in range(20):
            first = socket.socket()
            first.bind(("127.0.0.1", 0))
            port = first.getsockname()[1]
            second = socket.socket()
            try:
                second.bind(("127.0.0.2", port))
            except OSError:
                first.close()
                second.close()
                continue
            for sock in (first, second):
                await web.SockSite(runner, sock).start()
            yield port
            return
        raise RuntimeError("no port free on both 127.0.0.1 and 127.0.0.2")
    finally:
        await runner.cleanup()


class _Server:
    """Pages that take a while; the most requests each local address had at once."""

    def __init__(self) -> None:
        self.inflight: Counter[str] = Counter()
        self.peak: Counter[str] = Counter()

    def app(self) -> web.Application:
        async def page(request: web.Request) -> web.Response:
            address = request.transport.get_extra_info("sockname")[0]  # type: ignore[union-attr]
            self.inflight[address] += 1
            self.peak[address] = max(self.peak[address], self.inflight[address])
            try:
                await asyncio.sleep(0.05)
            finally:
                self.inflight[address] -= 1
            n = int(request.match_info["n"])
            links = "".join(f'<a href="/p/{i}">{i}</a>' for i in range(1, 6)) if n == 0 else ""
            return web.Response(text=f"<html><body>{links}</body></html>", content_type="text/html")

        app = web.Application()
        app.router.add_get("/p/{n}", page)
        return app


class _Hosts(Spider):
    name = "hosts"

    def __init__(self, urls: list[str]) -> None:
        super().__init__()
        self.urls = urls

    async def start(self) -> AsyncIterator[Request]:
        for url in self.urls:
            yield Request(url, self.parse)

    def parse(self, response: Response) -> Iterator[Request]:
        yield from response.follow_all(css="a", callback=self.parse)


async def _crawl(dns: Dnsmasq, key: str, hosts: list[str]) -> tuple[_Server, int, dict]:  # type: ignore[type-arg]
    server = _Server()
    async with _two_addresses(server.app()) as port:
        urls = [f"http://{host}:{port}/p/0" for host in hosts]
        settings = Settings(
            concurrency=16,
            domain_concurrency=2,
            autothrottle=False,
            politeness_key=key,
            dns_servers=[dns.server],
            max_retries=1,
        )
        stats = await Engine(_Hosts(urls), settings).run()
    return server, port, stats.to_dict()


@pytest.mark.slow
async def test_names_on_one_address_share_one_slot(dns: Dnsmasq) -> None:
    hosts = ["a.bench.test", "b.bench.test", "c.bench.test"]
    server, port, stats = await _crawl(dns, "ip", hosts)
    assert stats["pages"] == 18
    # two slots, one per address, each held to its limit of 2 in flight
    assert set(stats["domains"]) == {f"127.0.0.1:{port}", f"127.0.0.2:{port}"}
    assert stats["domains"][f"127.0.0.1:{port}"]["pages"] == 12
    assert stats["domains"][f"127.0.0.1:{port}"]["peak_concurrency"] == 2
    assert server.peak["127.0.0.1"] == 2
    assert server.peak["127.0.0.2"] == 2
    # one lookup per name, shared with the fetches that followed
    assert stats["dns"]["lookups"] == 3
    # the control: keyed by host, a and b had a limit of 2 each on the same server
    by_host, port, host_stats = await _crawl(dns, "host", hosts)
    assert len(host_stats["domains"]) == 3
    assert by_host.peak["127.0.0.1"] == 4


@pytest.mark.slow
async def test_a_name_that_does_not_resolve_fails_as_a_dns_error(dns: Dnsmasq) -> None:
    _, port, stats = await _crawl(dns, "ip", ["a.bench.test", "gone.bench.test"])
    assert stats["pages"] == 6
    # its requests went out under its host key and failed in the transport, as any
    # DNS failure does: counted once, the retry answered from the negative cache
    assert set(stats["domains"]) == {f"127.0.0.1:{port}", f"gone.bench.test:{port}"}
    assert stats["dns"]["lookups"] == 2
    assert stats["dns"]["dns_errors"] == 1
    assert stats["dns"]["negative_cache_hits"] >= 1
    assert stats["hosts"]["with_errors"] == 1
    assert sum(stats["errors"].values()) >= 1


async def test_through_a_proxy_slots_stay_keyed_by_host(
    dns: Dnsmasq, caplog: pytest.LogCaptureFixture
) -> None:
    # the proxy is never reached: the point is what is (not) looked up and the keys
    config = ProxyConfig("rotating", (parse_proxy_url("http://127.0.0.1:9", where="t"),), "t")
    settings = Settings(
        politeness_key="ip", dns_servers=[dns.server], max_retries=0, proxy_down_timeout=1.0
    )
    engine = Engine(_Hosts(["http://a.bench.test/p/0"]), settings, proxies=config)
    with caplog.at_level(logging.WARNING, logger="pooledcrawl.engine"):
        stats = await engine.run()
    assert set(stats.domains) == {"a.bench.test"}
    assert stats.extra.get("dns", {}).get("lookups", 0) == 0
    warnings = [r for r in caplog.records if "politeness_key=ip" in r.getMessage()]
    assert len(warnings) == 1


async def test_a_transport_with_its_own_dns_gets_a_resolver_for_the_keys(dns: Dnsmasq) -> None:
    from pooledcrawl.engine.addresses import ip_routing

    settings = Settings(politeness_key="ip", dns_servers=[dns.server])
    routing = ip_routing(MemoryFrontier(), settings, object(), [None])
    assert routing is not None
    addresses, own = routing
    assert own is not None
    try:
        await own.resolve("c.bench.test", 80, socket.AF_UNSPEC)
        assert addresses.key("http://c.bench.test/x") == "127.0.0.2"
    finally:
        await own.close()


@pytest.mark.slow
async def test_the_cli_takes_politeness_key_ip(dns: Dnsmasq, tmp_path: Path) -> None:
    server = _Server()
    async with _two_addresses(server.app()) as port:
        urls = [f"http://{name}:{port}/p/0" for name in NAMES]
        (tmp_path / "names.py").write_text(
            "from pooledcrawl import Spider\n\n"
            "class Names(Spider):\n"
            f"    start_urls = {urls!r}\n\n"
            "    def parse(self, response):\n"
            "        yield from response.follow_all(css='a')\n"
        )
        proc = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "pooledcrawl",
            "crawl",
            "names.py",
            "-s",
            "politeness_key=ip",
            "-s",
            f"dns_servers={dns.server}",
            "--stats",
            "stats.json",
            "--log-level",
            "WARNING",
            cwd=tmp_path,
            stderr=asyncio.subprocess.PIPE,
        )
        _, stderr = await asyncio.wait_for(proc.communicate(), 60)
    assert proc.returncode == 0, stderr.decode()
    import orjson

    stats = orjson.loads((tmp_path / "stats.json").read_bytes())
    assert stats["pages"] == 18
    assert set(stats["domains"]) == {f"127.0.0.1:{port}", f"127.0.0.2:{port}"}
