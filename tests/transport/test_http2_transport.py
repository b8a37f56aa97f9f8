"""The HTTP/2 transports (httpx, and curl when installed) against a real HTTP/2 server:
hypercorn on 127.0.0.1 with trustme certificates. What was negotiated is checked on
both ends. Tests that take ``kind`` run once per transport."""

from __future__ import annotations

import asyncio
import logging
import socket
import subprocess
import sys
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from h2site import Certs, GraphApp, make_certs, serve_hypercorn
from multidict import CIMultiDictProxy
from needs import require_transport

from pooledcrawl import Request, Response, Spider
from pooledcrawl.engine.engine import Engine
from pooledcrawl.errors import UsageError
from pooledcrawl.http.request import Request as RequestModel
from pooledcrawl.settings import Settings
from pooledcrawl.transport.aiohttp import AiohttpTransport
from pooledcrawl.transport.base import TransportError
from pooledcrawl.transport.factory import make_transport
from pooledcrawl.transport.httpx import HttpxTransport, _classify, httpx_limits

H2_TRANSPORTS = ["httpx", "curl"]


@pytest.fixture
def certs(tmp_path: Path) -> Certs:
    return make_certs(tmp_path)


@pytest.fixture(params=H2_TRANSPORTS)
def kind(request: pytest.FixtureRequest) -> str:
    name: str = request.param
    require_transport(name)
    return name


def _settings(certs: Certs | None, kind: str = "httpx", **values: Any) -> Settings:
    ca = str(certs.ca) if certs else None
    return Settings(http2=True, transport=kind, ca_bundle=ca, **values)


async def _get(transport: Any, url: str) -> Response:
    response: Response = await transport.fetch(RequestModel(url))
    return response


# ---- negotiation ------------------------------------------------------------------------
async def test_negotiates_http2_over_tls(certs: Certs, kind: str) -> None:
    app = GraphApp(20)
    async with serve_hypercorn(app, certs) as base:
        transport = make_transport(_settings(certs, kind))
        assert type(transport).__name__.lower().startswith(kind)
        try:
            responses = await asyncio.gather(
                *(_get(transport, f"{base}/p/{i}.html") for i in range(20))
            )
        finally:
            await transport.close()
    assert {r.http_version for r in responses} == {"HTTP/2"}
    assert app.versions == {"2": 20}  # the server saw HTTP/2 too
    # all 20 were multiplexed over the one connection the first request opened
    assert sum(r.timing.opened for r in responses if r.timing) == 1
    assert sum(r.timing.reused for r in responses if r.timing) == 19


async def test_falls_back_to_http11_when_alpn_offers_no_h2(certs: Certs, kind: str) -> None:
    app = GraphApp(5)
    async with serve_hypercorn(app, certs, alpn=("http/1.1",)) as base:
        transport = make_transport(_settings(certs, kind))
        try:
            response = await _get(transport, f"{base}/p/1.html")
        finally:
            await transport.close()
    assert response.status == 200
    assert response.http_version == "HTTP/1.1"
    assert app.versions == {"1.1": 1}


async def test_plain_http_is_http11(certs: Certs, kind: str) -> None:
    app = GraphApp(5)
    async with serve_hypercorn(app, None) as base:
        transport = make_transport(_settings(None, kind))
        try:
            response = await _get(transport, f"{base}/p/1.html")
        finally:
            await transport.close()
    assert base.startswith("http://")
    assert (response.status, response.http_version) == (200, "HTTP/1.1")


async def test_streams_per_connection_follow_the_server_limit(certs: Certs) -> None:
    """httpx: the server allows 4 concurrent streams; 16 requests at once queue for
    streams on the one connection (and the wait is measured) rather than failing."""
    app = GraphApp(16, delay=0.05)
    async with serve_hypercorn(app, certs, max_streams=4) as base:
        transport = make_transport(_settings(certs))
        try:
            responses = await asyncio.gather(
                *(_get(transport, f"{base}/p/{i}.html") for i in range(16))
            )
        finally:
            await transport.close()
    assert [r.status for r in responses] == [200] * 16
    assert app.peak <= 4
    timings = [r.timing for r in responses if r.timing]
    assert sum(t.opened for t in timings) == 1
    # at most 4 could start at once: the others waited for a stream
    waited = sorted(t.conn_wait for t in timings)
    assert waited[-1] > 0.05


def test_a_domain_cap_above_the_stream_limit_is_warned_about(
    caplog: pytest.LogCaptureFixture,
) -> None:
    with caplog.at_level(logging.WARNING, "pooledcrawl.transport"):
        HttpxTransport(Settings(http2=True, concurrency=200))
    assert any("at most 100 streams" in r.getMessage() for r in caplog.records)


# ---- the same Response API --------------------------------------------------------------
async def test_response_api_is_the_same_as_over_aiohttp(certs: Certs, kind: str) -> None:
    async with serve_hypercorn(GraphApp(20), certs) as base:
        url = f"{base}/p/3.html"
        h2 = make_transport(_settings(certs, kind))
        h1 = AiohttpTransport(Settings(ca_bundle=str(certs.ca)))
        try:
            a, b = await _get(h2, url), await _get(h1, url)
        finally:
            await h2.close()
            await h1.close()
    assert (a.http_version, b.http_version) == ("HTTP/2", "HTTP/1.1")
    assert isinstance(a.headers, CIMultiDictProxy)
    assert a.headers["CONTENT-TYPE"] == b.headers["content-type"]
    assert (a.url, a.status, a.body) == (b.url, b.status, b.body)
    assert a.css("h1.name::text").get() == "Item 3"
    assert [r.url for r in a.follow_all(css="a")] == [r.url for r in b.follow_all(css="a")]
    assert a.timing is not None and b.timing is not None
    assert 0 < a.timing.headers <= a.timing.body


# ---- a whole crawl ----------------------------------------------------------------------
class GraphSpider(Spider):
    name = "graph"

    def parse(self, response: Response) -> Iterator[Any]:
        yield {
            "url": response.url,
            "name": response.css("h1.name::text").get(),
            "price": response.css(".price::text").get(),
        }
        yield from response.follow_all(css="a")


@dataclass
class ListSink:
    items: list[Any]

    async def open(self, spider: Spider) -> None: ...
    async def write(self, items: Any) -> None:
        self.items.extend(items)

    async def flush(self) -> None: ...
    async def close(self) -> None: ...
    def emergency_flush(self) -> None: ...
    def stats(self) -> dict[str, Any]:
        return {}


async def _crawl(base: str, settings: Settings) -> tuple[list[Any], dict[str, Any]]:
    GraphSpider.start_urls = [f"{base}/p/0.html"]
    sink = ListSink([])
    engine = Engine(GraphSpider(), settings, sinks=[sink])
    stats = await engine.run()
    return sink.items, stats.to_dict()


async def test_a_200_page_crawl_gives_the_same_items_over_http2_and_http11(
    certs: Certs, kind: str
) -> None:
    app = GraphApp(200)
    async with serve_hypercorn(app, certs) as base:
        common = {"concurrency": 16, "ca_bundle": str(certs.ca), "progress_interval": 60.0}
        h2_items, h2_stats = await _crawl(base, Settings(http2=True, transport=kind, **common))
        h1_items, h1_stats = await _crawl(base, Settings(http2=False, **common))
    assert len(h2_items) == 200
    key = lambda item: item["url"]  # noqa: E731
    assert sorted(h2_items, key=key) == sorted(h1_items, key=key)
    assert h2_stats["http_versions"] == {"HTTP/2": 200}
    assert h1_stats["http_versions"] == {"HTTP/1.1": 200}
    assert app.versions == {"2": 200, "1.1": 200}
    (h2_domain,) = h2_stats["domains"].values()
    assert h2_domain["connections_opened"] == 1  # one multiplexed connection
    assert h2_domain["reuse_ratio"] > 0.99


# ---- TLS options ------------------------------------------------------------------------
async def test_an_untrusted_certificate_fails_for_good(certs: Certs, kind: str) -> None:
    async with serve_hypercorn(GraphApp(3), certs) as base:
        transport = make_transport(_settings(None, kind))  # default CAs: trustme's is unknown
        try:
            with pytest.raises(TransportError) as caught:
                await _get(transport, f"{base}/p/1.html")
        finally:
            await transport.close()
    assert caught.value.name == "SSLCertVerificationError"
    assert not caught.value.retryable


@pytest.mark.parametrize("http2", [True, False])
async def test_insecure_accepts_a_self_signed_target_with_one_warning(
    certs: Certs, http2: bool, kind: str, caplog: pytest.LogCaptureFixture
) -> None:
    async with serve_hypercorn(GraphApp(3), certs) as base:
        with caplog.at_level(logging.WARNING, "pooledcrawl.transport"):
            transport = make_transport(Settings(http2=http2, transport=kind, insecure=True))
        try:
            responses = [await _get(transport, f"{base}/p/{i}.html") for i in range(3)]
        finally:
            await transport.close()
    assert [r.status for r in responses] == [200, 200, 200]
    warnings = [r for r in caplog.records if "verification is OFF" in r.getMessage()]
    assert len(warnings) == 1


def test_verification_is_on_by_default(caplog: pytest.LogCaptureFixture) -> None:
    assert Settings().insecure is False
    with caplog.at_level(logging.WARNING):
        make_transport(Settings())
    assert not [r for r in caplog.records if "verification" in r.getMessage()]


def test_a_ca_bundle_that_cannot_be_read_is_a_usage_error(tmp_path: Path) -> None:
    missing = tmp_path / "nope.pem"
    with pytest.raises(UsageError, match="setting ca_bundle: cannot load"):
        make_transport(Settings(ca_bundle=str(missing)))
    garbage = tmp_path / "garbage.pem"
    garbage.write_text("not a certificate")
    with pytest.raises(UsageError, match="setting ca_bundle"):
        make_transport(Settings(http2=True, ca_bundle=str(garbage)))


# ---- proxies ----------------------------------------------------------------------------
@pytest.fixture
async def http_proxy() -> AsyncIterator[str]:
    """pproxy (an HTTP CONNECT proxy, user ``probe``, password ``s3cret``) on a free
    127.0.0.1 port, in a subprocess; yields its URL without the credentials."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    sock.close()
    code = (
        "import sys, asyncio; sys.modules['uvloop'] = None; "
        "from pproxy.server import main; sys.argv = ['pproxy'] + sys.argv[1:]; main()"
    )
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-c",
        code,
        "-l",
        f"http://127.0.0.1:{port}#probe:s3cret",
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        for _ in range(100):
            try:
                _, writer = await asyncio.open_connection("127.0.0.1", port)
            except OSError:
                await asyncio.sleep(0.05)
                continue
            writer.close()
            await writer.wait_closed()
            break
        else:
            pytest.fail("pproxy did not start")
        yield f"http://127.0.0.1:{port}"
    finally:
        proc.terminate()
        async with asyncio.timeout(5):
            await proc.wait()


async def test_http2_through_an_http_proxy_tunnel(certs: Certs, http_proxy: str, kind: str) -> None:
    app = GraphApp(10)
    with_auth = http_proxy.replace("http://", "http://probe:s3cret@")
    async with serve_hypercorn(app, certs) as base:
        transport = make_transport(_settings(certs, kind))
        try:
            # the proxy really is in the path: without its credentials, nothing gets through
            # (asked first: pproxy then trusts a client address that once authenticated)
            with pytest.raises(TransportError) as refused:
                await transport.fetch(RequestModel(f"{base}/p/9.html"), http_proxy)
            responses = [
                await transport.fetch(RequestModel(f"{base}/p/{i}.html"), with_auth)
                for i in range(5)
            ]
        finally:
            await transport.close()
    assert {(r.status, r.http_version) for r in responses} == {(200, "HTTP/2")}
    assert app.versions == {"2": 5}
    assert sum(r.timing.opened for r in responses if r.timing) == 1  # one tunnel, reused
    assert refused.value.proxy_fault
    assert "s3cret" not in str(refused.value)


async def test_a_dead_proxy_is_the_proxys_fault(
    certs: Certs, unused_tcp_port: int, kind: str
) -> None:
    transport = make_transport(_settings(certs, kind))
    try:
        with pytest.raises(TransportError) as caught:
            await transport.fetch(
                RequestModel("https://127.0.0.1:9/p/1.html"), f"http://127.0.0.1:{unused_tcp_port}"
            )
    finally:
        await transport.close()
    assert caught.value.retryable and caught.value.proxy_fault


# ---- limits and failures ----------------------------------------------------------------
def test_limits_come_from_the_settings() -> None:
    limits = httpx_limits(
        Settings(connector_limit=80, connector_limit_per_host=26, keepalive_timeout=30)
    )
    assert (limits.max_connections, limits.max_keepalive_connections) == (80, 26)
    assert limits.keepalive_expiry == 30
    derived = httpx_limits(Settings(concurrency=64))
    assert derived.max_connections == derived.max_keepalive_connections == 85


async def test_a_body_over_the_cap_fails_without_retry(certs: Certs, kind: str) -> None:
    async with serve_hypercorn(GraphApp(3), certs) as base:
        transport = make_transport(_settings(certs, kind, max_response_size=100))
        try:
            with pytest.raises(TransportError) as caught:
                await _get(transport, f"{base}/p/1.html")
        finally:
            await transport.close()
    assert caught.value.name == "ResponseTooLarge" and not caught.value.retryable


async def test_refused_connection_is_retryable(unused_tcp_port: int, kind: str) -> None:
    transport = make_transport(_settings(None, kind))
    try:
        with pytest.raises(TransportError) as caught:
            await _get(transport, f"https://127.0.0.1:{unused_tcp_port}/")
    finally:
        await transport.close()
    assert caught.value.retryable and not caught.value.proxy_fault


@pytest.mark.parametrize(
    ("exc", "name", "retryable", "stale"),
    [
        (httpx.RemoteProtocolError("Server disconnected without sending a response."),
         "ServerDisconnectedError", True, True),
        (httpx.ReadTimeout("read"), "TimeoutError", True, False),
        (TimeoutError(), "TimeoutError", True, False),
        (httpx.TooManyRedirects("many"), "TooManyRedirects", False, False),
        (httpx.UnsupportedProtocol("ftp"), "RedirectRefused", False, False),
        (httpx.ReadError("reset"), "ReadError", True, False),
        (httpx.DecodingError("bad gzip"), "DecodingError", True, False),
        (ValueError("surprise"), "ValueError", False, False),
    ],
)  # fmt: skip
def test_httpx_errors_map_like_aiohttp_ones(
    exc: BaseException, name: str, retryable: bool, stale: bool
) -> None:
    error = _classify(exc, via_proxy=False)
    assert (error.name, error.retryable, error.stale_connection) == (name, retryable, stale)


async def test_cookies_off_keeps_no_cookie(certs: Certs, kind: str) -> None:
    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return
        cookie = dict(scope["headers"]).get(b"cookie", b"")
        headers = [(b"set-cookie", b"seen=1; Path=/")]
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        await send({"type": "http.response.body", "body": cookie})

    async with serve_hypercorn(app, certs) as base:
        results = {}
        for cookies in (True, False):
            transport = make_transport(_settings(certs, kind, cookies=cookies))
            try:
                await _get(transport, f"{base}/")
                results[cookies] = (await _get(transport, f"{base}/")).body
            finally:
                await transport.close()
    assert results == {True: b"seen=1", False: b""}


def test_request_import_is_the_public_one() -> None:
    assert Request is RequestModel
