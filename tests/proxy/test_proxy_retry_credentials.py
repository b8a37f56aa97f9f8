"""A request refused by one proxy and retried on another, each with its own account:
nothing crosses over. Two real squids check Basic credentials against their own
password files (``basic_ncsa_auth``) and log the ``Proxy-Authorization`` each request
brought. Proxy A no longer accepts its account (it answers 407), so every page goes
through proxy B, over plain HTTP and through CONNECT, for each transport.

What must hold: A only ever sees A's credentials and B only B's; the targets see no
proxy credential; neither secret is in the logs, stats, errors, reprs or output."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import logging
import os
import shutil
import ssl
import subprocess
import sys
import tempfile
from collections import Counter
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import unquote

import orjson
import pytest
import trustme
from aiohttp import web
from needs import TRANSPORTS, require_tool, require_transport
from sites import link_graph_app, serve

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))  # the repo's `benchmarks`

from benchmarks._proxies import _stop, _wait_listening, free_port
from pooledcrawl import Engine, Request, Response, Settings, Spider
from pooledcrawl.proxy.endpoint import ProxyConfig, parse_proxy_url

pytestmark = pytest.mark.timeout(150)

# distinctive, so a grep of any output finds them
USER_A, SECRET_A = "acct-alpha-31", "Zr8-alpha-S3cr3t-k4"
USER_B, SECRET_B = "acct-bravo-57", "Wm2-bravo-S3cr3t-p9"
PAGES = 12  # per site; one plain-HTTP site and one HTTPS site


def basic(user: str, password: str) -> str:
    return "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()


FORBIDDEN = (
    SECRET_A,
    SECRET_B,
    f"{USER_A}:",
    f"{USER_B}:",
    basic(USER_A, SECRET_A).split()[1],
    basic(USER_B, SECRET_B).split()[1],
)


def assert_no_secret(where: str, text: str) -> None:
    for secret in FORBIDDEN:
        assert secret not in text, f"{secret!r} leaked into {where}"


# ---- squid with real Basic authentication ------------------------------------------------
@dataclass
class AuthSquid:
    port: int
    #: (method, URL or authority, status, Proxy-Authorization or "-"), read at exit
    seen: list[tuple[str, str, int, str]] = field(default_factory=list)

    def url(self, user: str, password: str) -> str:
        return f"http://{user}:{password}@127.0.0.1:{self.port}"

    def credentials(self) -> Counter[str]:
        return Counter(auth for *_, auth in self.seen if auth != "-")


def htpasswd_line(openssl: str, user: str, password: str) -> str:
    digest = subprocess.run(
        [openssl, "passwd", "-apr1", "-stdin"],
        input=password,
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    return f"{user}:{digest}\n"


def squid_config(user: str, password: str) -> tuple[int, Path]:
    """A private directory with squid.conf and a password file admitting ``user`` with
    ``password`` alone; also the port squid is to listen on."""
    openssl = require_tool("openssl")
    helper = "/usr/lib/squid/basic_ncsa_auth"
    if not os.access(helper, os.X_OK):
        helper = require_tool("basic_ncsa_auth")
    port = free_port()
    workdir = Path(tempfile.mkdtemp(prefix="pcrawl-authsquid-"))
    workdir.chmod(0o777)  # squid started as root drops to its own user
    passwords = workdir / "passwd"
    passwords.write_text(htpasswd_line(openssl, user, password))
    passwords.chmod(0o644)
    config = [
        f"http_port 127.0.0.1:{port}",
        f"pid_filename {workdir}/squid.pid",
        f"cache_log {workdir}/cache.log",
        "logformat seen %rm %ru %>Hs %{Proxy-Authorization}>h",
        f"access_log stdio:{workdir}/access.log seen",
        "buffered_logs off",
        "cache_store_log none",
        f"coredump_dir {workdir}",
        "cache deny all",
        "cache_mem 0 MB",
        "pinger_enable off",
        "shutdown_lifetime 0 seconds",
        "via off",
        "forwarded_for delete",
        f"auth_param basic program {helper} {passwords}",
        "auth_param basic children 4 startup=1 idle=1",
        "auth_param basic credentialsttl 1 minute",
        "acl authed proxy_auth REQUIRED",
        "http_access allow authed",
        "http_access deny all",
    ]
    (workdir / "squid.conf").write_text("\n".join(config) + "\n")
    return port, workdir


def read_access_log(path: Path) -> list[tuple[str, str, int, str]]:
    """The requests squid logged; not the readiness probes (connections that sent nothing)."""
    seen = []
    if path.exists():
        for line in path.read_text(errors="replace").splitlines():
            method, target, status, auth = line.split(" ", 3)
            if method != "-":
                seen.append((method, target, int(status), unquote(auth)))
    return seen


@contextlib.asynccontextmanager
async def auth_squid(user: str, password: str) -> AsyncIterator[AuthSquid]:
    """squid on 127.0.0.1:<ephemeral> that admits ``user:password`` alone and logs the
    ``Proxy-Authorization`` header of every request it received."""
    squid = require_tool("squid")
    port, workdir = squid_config(user, password)
    process = await asyncio.create_subprocess_exec(
        squid,
        "-N",
        "-f",
        str(workdir / "squid.conf"),
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.DEVNULL,
    )
    server = AuthSquid(port)
    try:
        await _wait_listening(port, process, workdir / "cache.log")
        yield server
    finally:
        await _stop(process)  # squid flushes its log as it exits
        server.seen = read_access_log(workdir / "access.log")
        shutil.rmtree(workdir, ignore_errors=True)


# ---- targets that record what reached them -----------------------------------------------
def recording(app: web.Application, seen: list[dict[str, str]]) -> web.Application:
    @web.middleware
    async def record(request: web.Request, handler: Any) -> web.StreamResponse:
        seen.append({str(k): v for k, v in request.headers.items()})
        response: web.StreamResponse = await handler(request)
        return response

    app.middlewares.append(record)
    return app


@contextlib.asynccontextmanager
async def serve_tls(app: web.Application, ca: trustme.CA) -> AsyncIterator[str]:
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("127.0.0.1").configure_cert(context)
    runner = web.AppRunner(app, access_log=None, shutdown_timeout=0.5)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0, ssl_context=context)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
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


class Links(Spider):
    name = "links"

    def __init__(self, starts: list[str], **kw: Any) -> None:
        super().__init__(**kw)
        self.starts = starts
        self.parsed: Counter[str] = Counter()
        self.failures: list[str] = []

    async def start(self) -> Any:
        for url in self.starts:
            yield Request(url, errback=self.failed)

    def parse(self, response: Response) -> Iterator[Any]:
        self.parsed[response.url] += 1
        yield {"url": response.url, "status": response.status}
        for request in response.follow_all(css="a"):
            request.errback = self.failed
            yield request

    def failed(self, failure: Any) -> None:
        self.failures.append(f"{failure!s} {failure!r} {failure.exception!r}")


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


def check_proxies(a: AuthSquid, b: AuthSquid, pages: int) -> None:
    """Each squid saw its own account only; A refused it, B carried every page."""
    assert a.seen, "proxy A was never tried: the test proves nothing"
    assert set(a.credentials()) == {basic(USER_A, SECRET_A)}
    assert {status for _, _, status, _ in a.seen} == {407}
    assert set(b.credentials()) == {basic(USER_B, SECRET_B)}
    plain = [t for m, t, s, x in b.seen if m == "GET" and s == 200]
    tunnels = [t for m, t, s, x in b.seen if m == "CONNECT" and s == 200]
    assert len(plain) == pages  # every plain-HTTP page went through B ...
    assert tunnels  # ... and the HTTPS site through B's CONNECT tunnels
    # a request A refused was sent again, through B
    retried = {t for m, t, s, x in a.seen if m == "GET"}
    assert retried and retried <= set(plain)


def check_targets(*seen: list[dict[str, str]]) -> None:
    for headers in (h for site in seen for h in site):
        lowered = {k.lower(): v for k, v in headers.items()}
        assert "proxy-authorization" not in lowered and "authorization" not in lowered
        assert_no_secret("a target's request headers", orjson.dumps(headers).decode())


# ---- tests -------------------------------------------------------------------------------
@pytest.mark.parametrize("transport", TRANSPORTS)
async def test_a_request_refused_by_one_proxy_goes_through_another_with_its_own_account(
    transport: str, ca: tuple[trustme.CA, Path], caplog: pytest.LogCaptureFixture
) -> None:
    require_transport(transport)
    caplog.set_level(logging.DEBUG)
    authority, ca_path = ca
    http_seen: list[dict[str, str]] = []
    https_seen: list[dict[str, str]] = []
    async with (
        # A's account was rotated: the password we hold is no longer the right one
        auth_squid(USER_A, "rotated-elsewhere") as a,
        auth_squid(USER_B, SECRET_B) as b,
        serve(recording(link_graph_app(PAGES, links=3), http_seen)) as http_base,
        serve_tls(recording(link_graph_app(PAGES, links=3), https_seen), authority) as https,
    ):
        config = ProxyConfig(
            "static",
            (
                parse_proxy_url(a.url(USER_A, SECRET_A), where="test"),
                parse_proxy_url(b.url(USER_B, SECRET_B), where="test"),
            ),
            source="test",
        )
        settings = Settings(
            transport=transport,
            concurrency=4,
            ca_bundle=str(ca_path),
            autothrottle=False,
            proxy_backoff_base=0.2,
            proxy_backoff_cap=0.5,
        )
        spider = Links([f"{http_base}/p/0.html", f"{https}/p/0.html"])
        engine = Engine(spider, settings, proxies=config)
        reprs = [repr(engine), repr(config), *(repr(p) for p in config.proxies)]
        stats = await engine.run()
    # every page, once, through B; none lost to A's refusals
    assert len(spider.parsed) == 2 * PAGES and set(spider.parsed.values()) == {1}
    assert stats.failed == 0 and not spider.failures
    snap = stats.extra["proxies"]
    assert snap[f"http://127.0.0.1:{a.port}"]["failures"] >= 1
    assert snap[f"http://127.0.0.1:{b.port}"]["failures"] == 0
    assert any("refused the credentials" in r.getMessage() for r in caplog.records)
    check_proxies(a, b, PAGES)
    check_targets(http_seen, https_seen)
    assert len(https_seen) == PAGES
    assert_no_secret("the log", caplog.text)
    assert_no_secret("the stats", orjson.dumps(stats.to_dict(), default=str).decode())
    assert_no_secret("the summary", stats.summary())
    assert_no_secret("the errors", repr(stats.errors))
    assert_no_secret("a repr", " ".join(reprs) + repr(stats.extra))


async def test_the_cli_retries_on_the_second_proxy_and_shows_neither_account(
    tmp_path: Path, ca: tuple[trustme.CA, Path]
) -> None:
    """The same from the command line (a rotating pair given as two ``--proxy``, the
    credentials from the environment): stdout, stderr at DEBUG, items and stats."""
    authority, ca_path = ca
    http_seen: list[dict[str, str]] = []
    https_seen: list[dict[str, str]] = []
    (tmp_path / "spider.py").write_text(SPIDER, encoding="utf-8")
    async with (
        auth_squid(USER_A, "rotated-elsewhere") as a,
        auth_squid(USER_B, SECRET_B) as b,
        serve(recording(link_graph_app(PAGES, links=3), http_seen)) as http_base,
        serve_tls(recording(link_graph_app(PAGES, links=3), https_seen), authority) as https,
    ):
        process = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "pooledcrawl", "crawl", "spider.py",
            "-a", f"starts={http_base}/p/0.html,{https}/p/0.html",
            "--proxy", f"http://${{A_USER}}:${{A_PASS}}@127.0.0.1:{a.port}",
            "--proxy", f"http://${{B_USER}}:${{B_PASS}}@127.0.0.1:{b.port}",
            "-s", f"ca_bundle={ca_path}", "-s", "proxy_backoff_base=0.2",
            "-s", "proxy_backoff_cap=0.5",
            "-O", "items.jsonl", "--stats", "stats.json", "--log-level", "DEBUG",
            env={
                **os.environ,
                "A_USER": USER_A, "A_PASS": SECRET_A, "B_USER": USER_B, "B_PASS": SECRET_B,
            },
            cwd=tmp_path, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
        )  # fmt: skip
        out, err = await asyncio.wait_for(process.communicate(), 120)
    assert process.returncode == 0, err.decode()
    items = (tmp_path / "items.jsonl").read_text(encoding="utf-8")
    stats_text = (tmp_path / "stats.json").read_text(encoding="utf-8")
    stats = orjson.loads(stats_text)
    assert stats["pages"] == 2 * PAGES and stats["failed"] == 0
    assert len(items.splitlines()) == 2 * PAGES
    assert stats["proxies"][f"http://127.0.0.1:{a.port}"]["failures"] >= 1
    check_proxies(a, b, PAGES)
    check_targets(http_seen, https_seen)
    for where, text in (
        ("stdout", out.decode()),
        ("stderr", err.decode()),
        ("the items", items),
        ("the stats", stats_text),
    ):
        assert_no_secret(where, text)
