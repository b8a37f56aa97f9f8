"""Crawls through real proxy servers (pproxy, started and stopped here on 127.0.0.1):
authentication, CONNECT for HTTPS, SOCKS5, a static pool's per-proxy cap, a proxy
killed mid-crawl, and credentials absent from every output."""

from __future__ import annotations

import asyncio
import contextlib
import os
import socket
import ssl
import sys
from collections import Counter
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import orjson
import pytest
import trustme
from aiohttp import web
from sites import link_graph_app, pproxy, serve

from pooledcrawl import Engine, Request, Response, Settings, Spider
from pooledcrawl.proxy.endpoint import ProxyConfig, parse_proxy_url
from pooledcrawl.transport.aiohttp import AiohttpTransport

pytestmark = pytest.mark.timeout(120)

SECRET = "Xq7-pr0xy-S3cr3t-e1f0"  # distinctive: grepped for in every output
USER = "crawler7"


# ---- servers ---------------------------------------------------------------------------
def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def recorded_graph(n: int, delay: float = 0.0) -> tuple[web.Application, dict[str, Any]]:
    """The link graph, recording each request's headers and the peak concurrency."""
    seen: dict[str, Any] = {"proxy_auth": 0, "requests": 0, "inflight": 0, "peak": 0}

    @web.middleware
    async def record(request: web.Request, handler: Any) -> web.StreamResponse:
        seen["requests"] += 1
        if any(h.lower().startswith("proxy-") for h in request.headers):
            seen["proxy_auth"] += 1
        seen["inflight"] += 1
        seen["peak"] = max(seen["peak"], seen["inflight"])
        try:
            if delay:
                await asyncio.sleep(delay)
            return await handler(request)
        finally:
            seen["inflight"] -= 1

    app = link_graph_app(n)
    app.middlewares.append(record)
    return app, seen


@contextlib.asynccontextmanager
async def serve_tls(app: web.Application, ca: trustme.CA) -> AsyncIterator[str]:
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("127.0.0.1").configure_cert(context)
    runner = web.AppRunner(app, access_log=None, shutdown_timeout=0.5)
    await runner.setup()
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    await web.SockSite(runner, sock, ssl_context=context).start()
    try:
        yield f"https://127.0.0.1:{port}"
    finally:
        await runner.cleanup()


@pytest.fixture
def ca(tmp_path: Path) -> Iterator[tuple[trustme.CA, Path]]:
    authority = trustme.CA()
    path = tmp_path / "ca.pem"
    authority.cert_pem.write_to_path(str(path))
    yield authority, path


# ---- spiders ---------------------------------------------------------------------------
SPIDER = """
from pooledcrawl import Request, Spider

class Links(Spider):
    name = "links"

    async def start(self):
        for url in self.starts.split(","):
            yield Request(url)

    def parse(self, response):
        yield {"url": response.url}
        yield from response.follow_all(css="a")
"""


class Links(Spider):
    def __init__(self, starts: list[str], **kw: Any) -> None:
        super().__init__(**kw)
        self.starts = starts
        self.parsed: Counter[str] = Counter()

    async def start(self) -> Any:
        for url in self.starts:
            yield Request(url)

    def parse(self, response: Response) -> Iterator[Any]:
        self.parsed[response.url] += 1
        yield from response.follow_all(css="a")


class CountingTransport:
    """Wraps the real transport: requests in flight per proxy, and their peak."""

    def __init__(self, inner: AiohttpTransport) -> None:
        self.inner = inner
        self.inflight: Counter[str | None] = Counter()
        self.peak: Counter[str | None] = Counter()

    async def fetch(self, request: Request, proxy: str | None = None) -> Response:
        self.inflight[proxy] += 1
        self.peak[proxy] = max(self.peak[proxy], self.inflight[proxy])
        try:
            return await self.inner.fetch(request, proxy)
        finally:
            self.inflight[proxy] -= 1

    async def close(self) -> None:
        await self.inner.close()


async def run_cli(*args: str, env: dict[str, str], cwd: Path) -> tuple[int, str, str]:
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "pooledcrawl",
        *args,
        env={**os.environ, **env},
        cwd=cwd,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(process.communicate(), 90)
    assert process.returncode is not None
    return process.returncode, out.decode(), err.decode()


def assert_no_secret(*texts: str) -> None:
    for text in texts:
        assert SECRET not in text
        assert USER + ":" not in text


# ---- tests -----------------------------------------------------------------------------
async def test_cli_crawl_through_an_authenticated_proxy_from_a_profile(
    tmp_path: Path, ca: tuple[trustme.CA, Path]
) -> None:
    authority, ca_path = ca
    https_app, https_seen = recorded_graph(25)
    http_app, http_seen = recorded_graph(25)
    (tmp_path / "spider.py").write_text(SPIDER, encoding="utf-8")
    profiles = tmp_path / "profiles"
    profiles.mkdir()
    async with (
        pproxy(auth=f"{USER}:{SECRET}") as proxy,
        serve_tls(https_app, authority) as https_base,
        serve(http_app) as http_base,
    ):
        (profiles / "myproxy.toml").write_text(
            'extends = "datacenter"\n'
            "[concurrency]\nglobal = 8\nstart = 4\nmax = 8\n"
            f'[proxy]\nurl = "http://${{PCT_USER}}:${{PCT_PASS}}@127.0.0.1:{proxy.port}"\n',
            encoding="utf-8",
        )
        code, out, err = await run_cli(
            "crawl",
            "spider.py",
            "-a",
            f"starts={https_base}/p/0.html,{http_base}/p/0.html",
            "--profile",
            "myproxy",
            "--profiles-dir",
            str(profiles),
            "-s",
            f"ca_bundle={ca_path}",
            "-O",
            "items.jsonl",
            "--stats",
            "stats.json",
            "--log-level",
            "DEBUG",
            env={"PCT_USER": USER, "PCT_PASS": SECRET},
            cwd=tmp_path,
        )
        show = await run_cli(
            "profiles",
            "show",
            "myproxy",
            "--profiles-dir",
            str(profiles),
            env={"PCT_USER": USER, "PCT_PASS": SECRET},
            cwd=tmp_path,
        )
    assert code == 0, err
    items = (tmp_path / "items.jsonl").read_text(encoding="utf-8")
    stats_text = (tmp_path / "stats.json").read_text(encoding="utf-8")
    stats = orjson.loads(stats_text)
    assert stats["pages"] == 50 and stats["failed"] == 0
    assert https_seen["requests"] == 25 and http_seen["requests"] == 25
    # everything went through the proxy, and the targets never saw its credentials
    assert stats["proxies"] == {
        f"http://127.0.0.1:{proxy.port}": {
            "requests": 50,
            "failures": 0,
            "bans": 0,
            "state": "healthy",
            "inflight": 0,
        }
    }
    assert https_seen["proxy_auth"] == 0 and http_seen["proxy_auth"] == 0
    assert "connecting directly" not in err
    assert show[0] == 0 and f"http://***:***@127.0.0.1:{proxy.port}" in show[1]
    assert "${PCT_PASS}" in show[1]
    assert_no_secret(out, err, items, stats_text, show[1], show[2])


async def test_wrong_credentials_stop_with_a_clear_error_and_no_secret(
    tmp_path: Path, ca: tuple[trustme.CA, Path]
) -> None:
    authority, ca_path = ca
    https_app, https_seen = recorded_graph(5)
    http_app, _ = recorded_graph(5)
    (tmp_path / "spider.py").write_text(SPIDER, encoding="utf-8")
    async with (
        pproxy(auth=f"{USER}:right-password") as proxy,
        serve_tls(https_app, authority) as https_base,
        serve(http_app) as http_base,
    ):
        code, out, err = await run_cli(
            "crawl",
            "spider.py",
            "-a",
            f"starts={https_base}/p/0.html,{http_base}/p/0.html",
            "--proxy",
            f"http://{USER}:${{PCT_PASS}}@127.0.0.1:{proxy.port}",
            "-s",
            f"ca_bundle={ca_path}",
            "-s",
            "proxy_down_timeout=1",
            "-s",
            "proxy_backoff_base=0.1",
            "-s",
            "proxy_backoff_cap=0.2",
            "--stats",
            "stats.json",
            "-O",
            "items.jsonl",
            "--log-level",
            "DEBUG",
            env={"PCT_PASS": SECRET},
            cwd=tmp_path,
        )
    stats_text = (tmp_path / "stats.json").read_text(encoding="utf-8")
    stats = orjson.loads(stats_text)
    assert code == 3, err
    assert "every proxy has been down for 1s" in err
    assert "refused the credentials" in err
    assert stats["finish_reason"] == "all proxies down" and stats["failed"] == 0
    assert stats["proxies"][f"http://127.0.0.1:{proxy.port}"]["failures"] >= 2
    assert https_seen["requests"] == 0  # the tunnel was refused
    assert_no_secret(out, err, stats_text, (tmp_path / "items.jsonl").read_text())


async def test_static_pool_never_puts_more_than_the_cap_on_a_proxy(tmp_path: Path) -> None:
    app, seen = recorded_graph(90, delay=0.01)
    async with (
        pproxy(auth=f"{USER}a:{SECRET}a") as p1,
        pproxy(auth=f"{USER}b:{SECRET}b") as p2,
        pproxy(auth=f"{USER}c:{SECRET}c") as p3,
        serve(app) as base,
    ):
        config = ProxyConfig(
            "static",
            tuple(
                parse_proxy_url(p.url(f"{USER}{x}:{SECRET}{x}"), where="t")
                for p, x in ((p1, "a"), (p2, "b"), (p3, "c"))
            ),
            source="test",
        )
        settings = Settings(
            concurrency=16, proxy_concurrency=2, domain_concurrency=2, autothrottle=False
        )
        transport = CountingTransport(AiohttpTransport(settings))
        spider = Links([f"{base}/p/0.html"])
        engine = Engine(spider, settings, transport=transport, proxies=config)
        stats = await engine.run()
    assert len(spider.parsed) == 90 and set(spider.parsed.values()) == {1}
    assert len(transport.peak) == 3
    assert max(transport.peak.values()) <= 2  # counted at each proxy's doorstep
    assert seen["peak"] > 2  # three IPs carry more than one IP's per-domain share
    # each proxy got its own credentials: none answered 407
    assert 407 not in stats.status_counts
    assert all(p["failures"] == 0 and p["requests"] > 0 for p in stats.extra["proxies"].values())


async def test_a_proxy_killed_mid_crawl_is_benched_and_no_page_is_lost(tmp_path: Path) -> None:
    app, _ = recorded_graph(150, delay=0.005)
    async with pproxy() as p1, pproxy() as p2, pproxy() as p3, serve(app) as base:
        config = ProxyConfig(
            "static", tuple(parse_proxy_url(p.url(), where="t") for p in (p1, p2, p3)), "test"
        )
        settings = Settings(
            concurrency=12,
            proxy_concurrency=2,
            domain_concurrency=2,
            autothrottle=False,
            max_retries=1,
            proxy_backoff_base=0.2,
            proxy_backoff_cap=1.0,
        )

        class Killer(Links):
            def parse(self, response: Response) -> Iterator[Any]:
                if len(self.parsed) == 40:
                    p1.kill()
                yield from super().parse(response)

        spider = Killer([f"{base}/p/0.html"])
        engine = Engine(spider, settings, proxies=config)
        stats = await engine.run()
    assert len(spider.parsed) == 150 and set(spider.parsed.values()) == {1}
    assert stats.failed == 0 and not stats.errors
    snap = stats.extra["proxies"]
    killed = snap[f"http://127.0.0.1:{p1.port}"]
    assert killed["failures"] >= 1 and killed["state"] != "healthy"
    others = [snap[f"http://127.0.0.1:{p.port}"] for p in (p2, p3)]
    assert all(o["failures"] == 0 and o["state"] == "healthy" for o in others)
    assert sum(o["requests"] for o in others) > killed["requests"]


async def test_socks5_proxy_with_credentials(tmp_path: Path, ca: tuple[trustme.CA, Path]) -> None:
    authority, ca_path = ca
    https_app, https_seen = recorded_graph(10)
    http_app, http_seen = recorded_graph(10)
    async with (
        pproxy("socks5", auth=f"{USER}:{SECRET}") as proxy,
        serve_tls(https_app, authority) as https_base,
        serve(http_app) as http_base,
    ):
        config = ProxyConfig(
            "rotating", (parse_proxy_url(proxy.url(f"{USER}:{SECRET}"), where="t"),), "test"
        )
        spider = Links([f"{https_base}/p/0.html", f"{http_base}/p/0.html"])
        engine = Engine(spider, Settings(concurrency=4, ca_bundle=str(ca_path)), proxies=config)
        stats = await engine.run()
    assert len(spider.parsed) == 20
    assert https_seen["requests"] == 10 and http_seen["requests"] == 10
    assert stats.extra["proxies"][f"socks5://127.0.0.1:{proxy.port}"]["requests"] == 20
