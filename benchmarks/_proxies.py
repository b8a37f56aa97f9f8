"""Real proxies and a site that bans like real sites, all on loopback.

- :func:`squid_gateway`: squid as a rotating gateway with sticky sessions. It
  takes any credentials (``basic_fake_auth``); the exit address
  (``tcp_outgoing_address 127.0.0.N``) is chosen by ``proxy_auth_regex`` on the
  session part of the username (``...-session-<id>``), and at random (``random``
  ACLs) when there is none: what residential providers do.
- :func:`tinyproxy`: one fixed exit address (``Bind 127.0.0.N``): a datacenter IP.
- :class:`BanningSite`: bans a client address that makes more than ``limit``
  requests in ``window`` seconds, for ``ban_for`` seconds: a soft ban is a 200
  with a CAPTCHA page, a hard ban a 403. It sets a session cookie bound to the
  address it was given to; the cookie coming back from another address is
  suspicious, and bans that address at once. It may also block some addresses
  outright (a datacenter range).

Used by ``tests/proxy/test_sessions_live.py`` and ``python -m benchmarks.sessions``.
Every server binds 127.0.0.1 on an ephemeral port and is stopped on exit.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import secrets
import shutil
import socket
import string
import tempfile
import time
from collections import defaultdict, deque
from collections.abc import AsyncIterator, Iterable
from dataclasses import dataclass, field
from pathlib import Path

from aiohttp import web

__all__ = [
    "BanningSite",
    "ProxyServer",
    "exits",
    "fake_auth_helper",
    "free_port",
    "squid_gateway",
    "tinyproxy",
]

SESSION_ALPHABET = string.ascii_lowercase + string.digits
_FAKE_AUTH_PATHS = ("/usr/lib/squid/basic_fake_auth", "/usr/lib64/squid/basic_fake_auth")


class ToolMissing(RuntimeError):
    """A server binary (squid, tinyproxy) is not installed."""


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def exits(count: int, first: int = 10) -> list[str]:
    """``count`` loopback addresses to exit from: 127.0.0.<first>..."""
    return [f"127.0.0.{first + i}" for i in range(count)]


def fake_auth_helper() -> str:
    for path in _FAKE_AUTH_PATHS:
        if os.access(path, os.X_OK):
            return path
    raise ToolMissing("squid's basic_fake_auth helper was not found")


@dataclass
class ProxyServer:
    port: int
    process: asyncio.subprocess.Process
    workdir: Path
    exits: list[str]

    def url(self, auth: str = "") -> str:
        return f"http://{auth + '@' if auth else ''}127.0.0.1:{self.port}"


async def _wait_listening(port: int, process: asyncio.subprocess.Process, log: Path) -> None:
    for _ in range(300):  # up to ~15 s
        if process.returncode is not None:
            raise RuntimeError(f"proxy exited with {process.returncode}: {_tail(log)}")
        try:
            _, writer = await asyncio.open_connection("127.0.0.1", port)
            writer.close()
            await writer.wait_closed()
            return
        except OSError:
            await asyncio.sleep(0.05)
    raise RuntimeError("proxy did not start listening")


def _tail(log: Path) -> str:
    return log.read_text(errors="replace")[-2000:] if log.exists() else ""


def _write(path: Path, text: str) -> None:
    path.write_text(text)


def _workdir(prefix: str, name: str, config: str) -> Path:
    """A private directory holding ``config`` as ``name``; open to all, as squid and
    tinyproxy drop to their own users when started as root."""
    workdir = Path(tempfile.mkdtemp(prefix=prefix))
    workdir.chmod(0o777)
    (workdir / name).write_text(config)
    return workdir


async def _stop(process: asyncio.subprocess.Process) -> None:
    if process.returncode is None:
        process.terminate()
        try:
            await asyncio.wait_for(process.wait(), 5)
        except TimeoutError:
            process.kill()
            await process.wait()


def _session_acls(addresses: list[str]) -> list[str]:
    """``proxy_auth_regex`` ACLs: the last two characters of the session id pick the
    exit, so a session keeps its exit and a new id lands on any of them (up to 1,296)."""
    groups: list[list[str]] = [[] for _ in addresses]
    pairs = [a + b for a in SESSION_ALPHABET for b in SESSION_ALPHABET]
    for i, pair in enumerate(pairs):
        groups[i % len(addresses)].append(pair)
    return [
        f"acl sess{i} proxy_auth_regex -i [-]session-[a-z0-9]*({'|'.join(group)})$"
        for i, group in enumerate(groups)
        if group
    ]


def squid_config(port: int, workdir: Path, addresses: list[str], helper: str) -> str:
    n = len(addresses)
    lines = [
        f"http_port 127.0.0.1:{port}",
        f"pid_filename {workdir}/squid.pid",
        f"cache_log {workdir}/cache.log",
        "access_log none",
        "cache_store_log none",
        f"coredump_dir {workdir}",
        "cache deny all",  # a gateway, not a cache
        "cache_mem 0 MB",
        "pinger_enable off",
        "shutdown_lifetime 0 seconds",
        "via off",
        "forwarded_for delete",
        "max_filedescriptors 4096",
        f"auth_param basic program {helper}",
        "auth_param basic children 8 startup=2 idle=1",
        "auth_param basic credentialsttl 2 hours",
        "acl authed proxy_auth REQUIRED",
        "acl hasSession proxy_auth_regex -i [-]session-[a-z0-9][a-z0-9]+$",
        *_session_acls(addresses),
    ]
    # no session: a uniformly random exit, from a chain of random ACLs (1/n, 1/(n-1)...)
    for i in range(n - 1):
        lines.append(f"acl rand{i} random 1/{n - i}")
    for i, address in enumerate(addresses):
        lines.append(f"tcp_outgoing_address {address} hasSession sess{i}")
    for i, address in enumerate(addresses[:-1]):
        lines.append(f"tcp_outgoing_address {address} !hasSession rand{i}")
    lines.append(f"tcp_outgoing_address {addresses[-1]} !hasSession")
    lines += ["http_access allow authed", "http_access deny all"]
    return "\n".join(lines) + "\n"


@contextlib.asynccontextmanager
async def squid_gateway(addresses: list[str]) -> AsyncIterator[ProxyServer]:
    """squid on 127.0.0.1:<ephemeral> exiting from ``addresses`` (sticky per session)."""
    binary = shutil.which("squid")
    if binary is None:
        raise ToolMissing("squid is not installed")
    helper = fake_auth_helper()
    port = free_port()
    workdir = _workdir("pcrawl-squid-", "squid.conf", "")
    _write(workdir / "squid.conf", squid_config(port, workdir, addresses, helper))
    process = await asyncio.create_subprocess_exec(
        binary,
        "-N",
        "-f",
        str(workdir / "squid.conf"),
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.DEVNULL,
    )
    try:
        await _wait_listening(port, process, workdir / "cache.log")
        yield ProxyServer(port, process, workdir, list(addresses))
    finally:
        await _stop(process)
        shutil.rmtree(workdir, ignore_errors=True)


@contextlib.asynccontextmanager
async def tinyproxy(address: str) -> AsyncIterator[ProxyServer]:
    """tinyproxy on 127.0.0.1:<ephemeral> whose connections leave from ``address``."""
    binary = shutil.which("tinyproxy")
    if binary is None:
        raise ToolMissing("tinyproxy is not installed")
    port = free_port()
    user = "User nobody\nGroup nogroup\n" if os.geteuid() == 0 else ""
    workdir = _workdir("pcrawl-tinyproxy-", "tinyproxy.conf", "")
    _write(
        workdir / "tinyproxy.conf",
        f"Port {port}\nListen 127.0.0.1\nBind {address}\nTimeout 30\nMaxClients 200\n"
        f'{user}LogFile "{workdir}/tinyproxy.log"\nLogLevel Error\nDisableViaHeader Yes\n',
    )
    process = await asyncio.create_subprocess_exec(
        binary,
        "-d",
        "-c",
        str(workdir / "tinyproxy.conf"),
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.DEVNULL,
    )
    try:
        await _wait_listening(port, process, workdir / "tinyproxy.log")
        yield ProxyServer(port, process, workdir, [address])
    finally:
        await _stop(process)
        shutil.rmtree(workdir, ignore_errors=True)


CAPTCHA_PAGE = (
    "<html><head><title>Are you a robot?</title></head><body>"
    "<form id=captcha><p>Please solve this CAPTCHA to continue.</p></form></body></html>"
)


@dataclass
class BanningSite:
    """A link graph of ``pages`` pages that bans by client address."""

    pages: int
    limit: int = 60
    window: float = 10.0
    ban_for: float = 30.0
    hard: bool = False
    """A ban answers 403 (hard) or a 200 CAPTCHA page (soft)."""
    blocked: frozenset[str] = frozenset()
    """Addresses always refused (a datacenter range): as a ban."""
    links: int = 10
    # what happened
    requests: int = 0
    served: int = 0
    captchas: int = 0
    suspicious: int = 0
    bans: int = 0
    by_address: dict[str, int] = field(default_factory=lambda: defaultdict(int))
    #: session cookie -> the addresses it came back from
    cookie_addresses: dict[str, set[str]] = field(default_factory=lambda: defaultdict(set))
    _recent: dict[str, deque[float]] = field(default_factory=lambda: defaultdict(deque))
    _banned_until: dict[str, float] = field(default_factory=dict)
    _cookies: dict[str, str] = field(default_factory=dict)

    def page(self, i: int) -> str:
        links = "".join(
            f'<a href="/p/{(i * self.links + k) % self.pages}.html">{k}</a>'
            for k in range(1, self.links + 1)
        )
        head = f"<html><head><title>Page {i}</title></head>"
        return f"{head}<body><h1>Page {i}</h1>{links}</body></html>"

    def _refuse(self) -> web.Response:
        if self.hard:
            return web.Response(status=403, text="<h1>403 Forbidden</h1>", content_type="text/html")
        self.captchas += 1
        return web.Response(text=CAPTCHA_PAGE, content_type="text/html")

    async def handle(self, request: web.Request) -> web.StreamResponse:
        i = int(request.match_info["i"])
        if not 0 <= i < self.pages:
            raise web.HTTPNotFound()
        now = time.monotonic()
        address = request.remote or "?"
        self.requests += 1
        self.by_address[address] += 1
        if address in self.blocked:
            return self._refuse()
        cookie = request.cookies.get("sid")
        if cookie is not None:
            self.cookie_addresses[cookie].add(address)
            if self._cookies.get(cookie, address) != address:
                # a session cookie from another address: a shared or stolen session
                self.suspicious += 1
                self._ban(address, now)
        if self._banned_until.get(address, 0.0) > now:
            return self._refuse()
        recent = self._recent[address]
        recent.append(now)
        while recent and recent[0] < now - self.window:
            recent.popleft()
        if len(recent) > self.limit:
            self._ban(address, now)
            return self._refuse()
        self.served += 1
        response = web.Response(text=self.page(i), content_type="text/html")
        if cookie is None or cookie not in self._cookies:
            sid = secrets.token_hex(8)
            self._cookies[sid] = address
            response.set_cookie("sid", sid)
        return response

    def _ban(self, address: str, now: float) -> None:
        if self._banned_until.get(address, 0.0) <= now:
            self.bans += 1
        self._banned_until[address] = now + self.ban_for
        self._recent[address].clear()

    def app(self) -> web.Application:
        app = web.Application()
        app.router.add_get(r"/p/{i:\d+}.html", self.handle)
        return app


@contextlib.asynccontextmanager
async def serve_site(site: BanningSite) -> AsyncIterator[str]:
    runner = web.AppRunner(site.app(), access_log=None, shutdown_timeout=0.5)
    await runner.setup()
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    await web.SockSite(runner, sock).start()
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        await runner.cleanup()


def captcha_items(items: Iterable[dict[str, object]]) -> int:
    return sum(1 for item in items if "robot" in str(item.get("title", "")).lower())
