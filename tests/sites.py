"""Local test sites, served by aiohttp on 127.0.0.1 only. Shared by every test folder."""

from __future__ import annotations

import asyncio
import random
import socket
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass

from aiohttp import web

__all__ = ["PProxy", "link_graph_app", "link_graph_page", "pproxy", "serve", "url_of"]


def link_graph_page(i: int, n: int, links: int = 10, seed: int = 42) -> str:
    """Page ``i`` of an ``n``-page graph; breadth-first from page 0 reaches every page."""
    rnd = random.Random(seed * 1_000_003 + i)
    targets = {(i + 1) % n, (2 * i + 1) % n, (2 * i + 2) % n}
    while len(targets) < min(links, n):
        targets.add(rnd.randrange(n))
    items = "".join(f'<li><a href="/p/{j}.html">item {j}</a></li>' for j in sorted(targets))
    return (
        f"<html><head><title>Item {i}</title></head><body>"
        f'<h1 class="name">Item {i}</h1><span class="price">{i % 997}.99</span>'
        f"<ul>{items}</ul></body></html>"
    )


def link_graph_app(n: int, links: int = 10) -> web.Application:
    """An ``n``-page link graph at ``/p/{i}.html`` (the benchmark site's shape)."""

    async def page(request: web.Request) -> web.Response:
        i = int(request.match_info["i"])
        if not 0 <= i < n:
            raise web.HTTPNotFound()
        return web.Response(text=link_graph_page(i, n, links), content_type="text/html")

    app = web.Application()
    app.router.add_get(r"/p/{i:\d+}.html", page)
    return app


@asynccontextmanager
async def serve(app: web.Application, host: str = "127.0.0.1") -> AsyncIterator[str]:
    """Serve ``app`` on an ephemeral loopback port; yields ``http://host:port``."""
    runner = web.AppRunner(app, access_log=None, shutdown_timeout=0.5)
    await runner.setup()
    sock = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET)
    sock.bind((host, 0))
    port = sock.getsockname()[1]
    site = web.SockSite(runner, sock)
    await site.start()
    try:
        yield url_of(host, port)
    finally:
        await runner.cleanup()


def url_of(host: str, port: int) -> str:
    return f"http://[{host}]:{port}" if ":" in host else f"http://{host}:{port}"


@dataclass
class PProxy:
    """A running pproxy: its port, and its URL with or without credentials."""

    port: int
    process: asyncio.subprocess.Process
    scheme: str

    def url(self, auth: str = "") -> str:
        return f"{self.scheme}://{auth + '@' if auth else ''}127.0.0.1:{self.port}"

    def kill(self) -> None:
        if self.process.returncode is None:
            self.process.kill()


@asynccontextmanager
async def pproxy(scheme: str = "http", auth: str | None = None) -> AsyncIterator[PProxy]:
    """pproxy (``http`` or ``socks5``) on an ephemeral 127.0.0.1 port, in a subprocess,
    once it accepts connections; ``auth`` is ``user:pass``, checked on every request
    (``--auth 0``: pproxy otherwise trusts an IP once it authenticated)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    listen = f"{scheme}://127.0.0.1:{port}" + (f"#{auth}" if auth else "")
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-c",
        # pproxy installs uvloop when it can, then calls get_event_loop(), which
        # uvloop refuses: hide uvloop so a developer who has it installed can run this.
        "import sys; sys.modules['uvloop'] = None; sys.argv[0] = 'pproxy';"
        " from pproxy.server import main; main()",
        *("-l", listen, "--auth", "0"),
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.DEVNULL,
    )
    try:
        for _ in range(200):  # up to ~10 s for the interpreter to start
            try:
                _, writer = await asyncio.open_connection("127.0.0.1", port)
                writer.close()
                await writer.wait_closed()
                break
            except OSError:
                await asyncio.sleep(0.05)
        else:
            raise RuntimeError("pproxy did not start")
        yield PProxy(port, process, scheme)
    finally:
        if process.returncode is None:
            process.kill()
        await process.wait()
