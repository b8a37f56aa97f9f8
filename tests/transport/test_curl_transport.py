"""The curl transport beyond the shared HTTP/2 suite: real proxies (tinyproxy with
CONNECT, pproxy as SOCKS5 and as an HTTPS proxy), pool metrics, redirects' methods,
impersonation, and the transport choice (setting, CLI flag, missing extra)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
import subprocess
import sys
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import orjson
import pytest
import trustme
from aiohttp import web
from h2site import Certs, GraphApp, make_certs, serve_hypercorn
from needs import require_tool, require_transport
from sites import serve

from pooledcrawl import Response, Spider
from pooledcrawl.engine.engine import Engine
from pooledcrawl.errors import UsageError
from pooledcrawl.http.request import Request
from pooledcrawl.proxy.endpoint import ProxyConfig, parse_proxy_url
from pooledcrawl.settings import Settings
from pooledcrawl.transport.base import TransportError
from pooledcrawl.transport.factory import make_transport, resolve_transport

pytestmark = pytest.mark.timeout(120)

USER = "crawler7"
SECRET = "Xq7-curl-S3cr3t-b2c4"  # distinctive: grepped for in every output


@pytest.fixture(autouse=True)
def _curl() -> None:
    require_transport("curl")


@pytest.fixture
def certs(tmp_path: Path) -> Certs:
    return make_certs(tmp_path)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


async def _wait_port(port: int, proc: asyncio.subprocess.Process, what: str) -> None:
    for _ in range(200):  # ~10 s for the process to start
        if proc.returncode is not None:
            pytest.fail(f"{what} exited with {proc.returncode}")
        try:
            _, writer = await asyncio.open_connection("127.0.0.1", port)
        except OSError:
            await asyncio.sleep(0.05)
            continue
        writer.close()
        await writer.wait_closed()
        return
    pytest.fail(f"{what} did not start")


@contextlib.asynccontextmanager
async def tinyproxy(tmp_path: Path) -> AsyncIterator[int]:
    """tinyproxy in the foreground on a free 127.0.0.1 port, Basic auth ``USER:SECRET``;
    no ``ConnectPort`` line, so CONNECT reaches any port (the test server's)."""
    binary = require_tool("tinyproxy")
    port = free_port()
    conf = tmp_path / "tinyproxy.conf"
    conf.write_text(
        f"Port {port}\nListen 127.0.0.1\nTimeout 30\nMaxClients 100\n"
        f"LogLevel Critical\nBasicAuth {USER} {SECRET}\n"
    )
    proc = await asyncio.create_subprocess_exec(
        binary, "-d", "-c", str(conf), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    try:
        await _wait_port(port, proc, "tinyproxy")
        yield port
    finally:
        if proc.returncode is None:
            proc.terminate()
        async with asyncio.timeout(10):
            await proc.wait()


@contextlib.asynccontextmanager
async def pproxy(port: int, listen: str, *extra: str) -> AsyncIterator[None]:
    """pproxy on ``port`` (``--auth 0``: credentials checked on every connection)."""
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-c",
        "import sys; sys.modules['uvloop'] = None; sys.argv[0] = 'pproxy';"
        " from pproxy.server import main; main()",
        "-l",
        listen,
        "--auth",
        "0",
        *extra,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        await _wait_port(port, proc, "pproxy")
        yield
    finally:
        if proc.returncode is None:
            proc.kill()
        await proc.wait()


class GraphSpider(Spider):
    name = "graph"

    def parse(self, response: Response) -> Iterator[Any]:
        yield {"url": response.url, "version": response.http_version}
        yield from response.follow_all(css="a")


class ListSink:
    def __init__(self) -> None:
        self.items: list[Any] = []

    async def open(self, spider: Spider) -> None: ...
    async def write(self, items: Any) -> None:
        self.items.extend(items)

    async def flush(self) -> None: ...
    async def close(self) -> None: ...
    def emergency_flush(self) -> None: ...
    def stats(self) -> dict[str, Any]:
        return {}


def _all_log_text(caplog: pytest.LogCaptureFixture) -> str:
    formatter = logging.Formatter()
    parts = []
    for record in caplog.records:
        parts.append(record.getMessage())
        if record.exc_info:
            parts.append(formatter.formatException(record.exc_info))
    return "\n".join(parts)


# ---- proxies ----------------------------------------------------------------------------
async def test_an_http2_crawl_through_tinyproxy_connect_completes_without_leaking(
    certs: Certs, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    app = GraphApp(40)
    caplog.set_level(logging.DEBUG)
    async with tinyproxy(tmp_path) as port, serve_hypercorn(app, certs) as base:
        url = f"http://{USER}:{SECRET}@127.0.0.1:{port}"
        config = ProxyConfig("rotating", (parse_proxy_url(url, where="test"),), "test")
        GraphSpider.start_urls = [f"{base}/p/0.html"]
        sink = ListSink()
        settings = Settings(
            http2=True, transport="curl", concurrency=8, ca_bundle=str(certs.ca), max_retries=0
        )
        engine = Engine(GraphSpider(), settings, sinks=[sink], proxies=config)
        stats = await engine.run()
    assert len(sink.items) == 40
    assert {item["version"] for item in sink.items} == {"HTTP/2"}
    assert app.versions == {"2": 40}  # the target saw HTTP/2: a CONNECT tunnel, not forwarding
    assert stats.finish_reason == "finished" and stats.failed == 0
    shown = orjson.dumps(stats.to_dict()).decode() + orjson.dumps(sink.items).decode()
    shown += _all_log_text(caplog) + repr(engine.transport)
    assert SECRET not in shown and f"{USER}:" not in shown


async def test_wrong_credentials_at_tinyproxy_blame_the_proxy_without_the_secret(
    certs: Certs, tmp_path: Path
) -> None:
    async with tinyproxy(tmp_path) as port, serve_hypercorn(GraphApp(3), certs) as base:
        transport = make_transport(Settings(transport="curl", http2=True, ca_bundle=str(certs.ca)))
        wrong = f"http://{USER}:not-{SECRET}@127.0.0.1:{port}"
        try:
            with pytest.raises(TransportError) as caught:
                await transport.fetch(Request(f"{base}/p/1.html"), wrong)
        finally:
            await transport.close()
    assert caught.value.name == "ProxyAuthenticationRequired"
    assert caught.value.proxy_fault and caught.value.retryable
    assert SECRET not in str(caught.value) and USER not in str(caught.value)


# hypercorn, closing a TLS connection relayed by pproxy, may find libcurl's last bytes
# after its close_notify and report it from its own shutdown (seen 1 run in ~5): a
# server-side complaint in teardown, after every assertion's data was fetched
@pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning")
async def test_socks5_with_credentials_carries_https_and_http(certs: Certs) -> None:
    port = free_port()
    app = GraphApp(5)
    async with (
        pproxy(port, f"socks5://127.0.0.1:{port}#{USER}:{SECRET}"),
        serve_hypercorn(app, certs) as tls_base,
        serve_hypercorn(app, None) as plain_base,
    ):
        transport = make_transport(Settings(transport="curl", http2=True, ca_bundle=str(certs.ca)))
        good = f"socks5://{USER}:{SECRET}@127.0.0.1:{port}"
        try:
            tls = await transport.fetch(Request(f"{tls_base}/p/1.html"), good)
            plain = await transport.fetch(Request(f"{plain_base}/p/2.html"), good)
            with pytest.raises(TransportError) as refused:
                await transport.fetch(
                    Request(f"{tls_base}/p/3.html"), f"socks5://{USER}:wrong@127.0.0.1:{port}"
                )
        finally:
            await transport.close()
    assert (tls.status, tls.http_version) == (200, "HTTP/2")
    assert (plain.status, plain.http_version) == (200, "HTTP/1.1")
    assert app.versions == {"2": 1, "1.1": 1}
    assert refused.value.proxy_fault
    assert SECRET not in str(refused.value)


async def test_an_https_proxy_is_spoken_to_over_tls(tmp_path: Path) -> None:
    """pproxy as an HTTP proxy behind TLS (``http+ssl``), its certificate from our CA."""
    authority = trustme.CA()
    ca = tmp_path / "ca.pem"
    authority.cert_pem.write_to_path(str(ca))
    cert = authority.issue_cert("127.0.0.1")
    chain = tmp_path / "proxy.pem"
    cert.private_key_and_cert_chain_pem.write_to_path(str(chain))
    port = free_port()
    app = web.Application()
    seen: list[str] = []

    async def page(request: web.Request) -> web.Response:
        seen.append(request.path)
        return web.Response(text="<title>via tls proxy</title>", content_type="text/html")

    app.router.add_get("/page", page)
    async with (
        pproxy(port, f"http+ssl://127.0.0.1:{port}#{USER}:{SECRET}", "--ssl", f"{chain},{chain}"),
        serve(app) as base,
    ):
        transport = make_transport(Settings(transport="curl", ca_bundle=str(ca)))
        try:
            response = await transport.fetch(
                Request(f"{base}/page"), f"https://{USER}:{SECRET}@127.0.0.1:{port}"
            )
        finally:
            await transport.close()
    assert response.status == 200 and response.css("title::text").get() == "via tls proxy"
    assert seen == ["/page"]


# ---- metrics ----------------------------------------------------------------------------
async def test_reuse_and_pool_wait_are_measured_over_http11() -> None:
    app = web.Application()

    async def page(request: web.Request) -> web.Response:
        await asyncio.sleep(0.05)
        return web.Response(text="ok")

    app.router.add_get("/{n}", page)
    async with serve(app) as base:
        # one connection for four requests at once: three wait in libcurl's queue
        settings = Settings(transport="curl", connector_limit=1, concurrency=4)
        transport = make_transport(settings)
        try:
            first = await asyncio.gather(
                *(transport.fetch(Request(f"{base}/{i}")) for i in range(4))
            )
            later = await transport.fetch(Request(f"{base}/9"))
        finally:
            await transport.close()
    timings = [r.timing for r in first if r.timing]
    assert sum(t.opened for t in timings) == 1
    assert sum(t.reused for t in timings) == 3
    # the last to get the connection waited for three responses of 50 ms each
    assert max(t.conn_wait for t in timings) > 0.1
    assert later.timing is not None and (later.timing.opened, later.timing.reused) == (0, 1)
    assert 0 < later.timing.headers <= later.timing.body


# ---- redirects --------------------------------------------------------------------------
async def test_a_303_after_a_post_is_followed_with_a_get_and_no_body() -> None:
    app = web.Application()
    got: list[tuple[str, str, bytes]] = []

    async def form(request: web.Request) -> web.Response:
        got.append((request.method, request.path, await request.read()))
        raise web.HTTPSeeOther("/done")

    async def done(request: web.Request) -> web.Response:
        got.append((request.method, request.path, await request.read()))
        return web.Response(text="done")

    app.router.add_post("/form", form)
    app.router.add_get("/done", done)
    async with serve(app) as base:
        transport = make_transport(Settings(transport="curl"))
        try:
            response = await transport.fetch(Request(f"{base}/form", method="POST", body=b"a=1"))
        finally:
            await transport.close()
    assert got == [("POST", "/form", b"a=1"), ("GET", "/done", b"")]
    assert response.url == f"{base}/done" and response.body == b"done"
    assert response.timing is not None and response.timing.reused == 1  # the second hop


# ---- choosing the transport -------------------------------------------------------------
def test_http2_prefers_curl_and_impersonate_requires_it() -> None:
    assert resolve_transport(Settings()) == "aiohttp"
    assert resolve_transport(Settings(http2=True)) == "curl"
    assert resolve_transport(Settings(http2=True, transport="httpx")) == "httpx"
    assert resolve_transport(Settings(impersonate="chrome")) == "curl"
    with pytest.raises(UsageError, match="impersonate needs the curl transport"):
        Settings(impersonate="chrome", transport="httpx")
    with pytest.raises(UsageError, match=r"HTTP/1\.1 only"):
        Settings(http2=True, transport="aiohttp")
    with pytest.raises(UsageError, match="setting transport"):
        Settings(transport="requests")


def test_an_unknown_browser_is_a_usage_error_naming_the_known_ones() -> None:
    with pytest.raises(UsageError, match=r"no browser 'netscape'.*chrome"):
        make_transport(Settings(impersonate="netscape"))


def test_curl_without_the_extra_is_a_clear_exit_2(tmp_path: Path) -> None:
    """A crawl asking for curl where curl_cffi cannot be imported: one line, exit 2."""
    spider = tmp_path / "s.py"
    spider.write_text(
        "from pooledcrawl import Spider\n"
        "class S(Spider):\n    name = 's'\n    start_urls = []\n"
        "    def parse(self, response):\n        yield {}\n"
    )
    hide = tmp_path / "hide"
    hide.mkdir()
    # a None entry in sys.modules makes every import of the name fail
    (hide / "sitecustomize.py").write_text("import sys\nsys.modules['curl_cffi'] = None\n")
    env_path = f"{hide}:{Path(__file__).resolve().parents[2] / 'src'}"
    proc = subprocess.run(
        [sys.executable, "-m", "pooledcrawl", "crawl", str(spider), "--transport", "curl"],
        capture_output=True,
        text=True,
        env={"PYTHONPATH": env_path, "PATH": "/usr/bin:/bin"},
        timeout=60,
        check=False,
    )
    assert proc.returncode == 2, proc.stderr
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and "pip install 'pooledcrawl[curl]'" in lines[0], proc.stderr
    assert "Traceback" not in proc.stderr


# ---- mapping libcurl's answers ----------------------------------------------------------
@pytest.mark.parametrize(
    ("code", "name", "retryable"),
    [
        (28, "TimeoutError", True),
        (7, "ClientConnectorError", True),
        (6, "ClientConnectorDNSError", True),
        (18, "ClientPayloadError", True),
        (8, "BadHttpMessage", True),
        (52, "ServerDisconnectedError", True),
        (56, "ClientOSError", True),
        (60, "SSLCertVerificationError", False),
        (63, "ResponseTooLarge", False),
        (3, "InvalidURL", False),
        (99, "CurlError99", False),
    ],
)  # fmt: skip
def test_curl_errors_map_like_aiohttp_ones(code: int, name: str, retryable: bool) -> None:
    from curl_cffi import Curl, CurlError

    from pooledcrawl.transport.curl_errors import classify as _classify

    handle = Curl()
    try:
        error = _classify(handle, CurlError("failed", code), None, 100)
    finally:
        handle.close()
    assert (error.name, error.retryable, error.proxy_fault) == (name, retryable, False)


def test_only_the_last_responses_headers_are_kept() -> None:
    from pooledcrawl.transport.curl_http import parse_headers as _parse_headers

    raw = (
        b"HTTP/1.1 301 Moved\r\nLocation: /b\r\nX-Hop: 1\r\n\r\n"
        b"HTTP/1.1 100 Continue\r\n\r\n"
        b"HTTP/2 200\r\ncontent-type: text/html\r\nx-latin: caf\xe9\r\nset-cookie: a=1\r\n"
        b"set-cookie: b=2\r\n\r\n"
    )
    headers = _parse_headers(raw)
    assert "X-Hop" not in headers and "Location" not in headers
    assert headers["Content-Type"] == "text/html"
    assert headers["X-Latin"] == "café"  # not UTF-8: read as Latin-1
    assert headers.getall("Set-Cookie") == ["a=1", "b=2"]
