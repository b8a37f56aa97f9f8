"""A real HTTP/2 server for tests: hypercorn on 127.0.0.1 with trustme certificates,
serving the shared link graph as a bare ASGI app."""

from __future__ import annotations

import asyncio
import contextlib
import socket
import ssl
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import trustme
from hypercorn.asyncio import serve
from hypercorn.config import Config
from sites import link_graph_page

__all__ = ["Certs", "GraphApp", "make_certs", "serve_hypercorn"]


@dataclass
class Certs:
    ca: Path
    """The CA bundle a client must trust (``ca_bundle``)."""
    chain: Path
    """The server's key and certificate chain, one PEM file."""


def make_certs(folder: Path, *names: str) -> Certs:
    """A CA and a server certificate for ``names`` (default: 127.0.0.1 and localhost)."""
    ca = trustme.CA()
    cert = ca.issue_cert(*(names or ("127.0.0.1", "localhost")))
    certs = Certs(folder / "ca.pem", folder / "server.pem")
    ca.cert_pem.write_to_path(str(certs.ca))
    cert.private_key_and_cert_chain_pem.write_to_path(str(certs.chain))
    return certs


@dataclass
class GraphApp:
    """``/p/{i}.html`` of an ``n``-page link graph; records what each request looked like."""

    n: int
    delay: float = 0.0
    versions: dict[str, int] = field(default_factory=dict)
    inflight: int = 0
    peak: int = 0

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] == "lifespan":
            while (await receive())["type"] != "lifespan.shutdown":
                await send({"type": "lifespan.startup.complete"})
            await send({"type": "lifespan.shutdown.complete"})
            return
        version = scope.get("http_version", "?")
        self.versions[version] = self.versions.get(version, 0) + 1
        self.inflight += 1
        self.peak = max(self.peak, self.inflight)
        try:
            if self.delay:
                await asyncio.sleep(self.delay)
            status, body = self._page(scope["path"])
        finally:
            self.inflight -= 1
        headers = [(b"content-type", b"text/html; charset=utf-8")]
        await send({"type": "http.response.start", "status": status, "headers": headers})
        await send({"type": "http.response.body", "body": body})

    def _page(self, path: str) -> tuple[int, bytes]:
        name = path.removeprefix("/p/").removesuffix(".html")
        if path.startswith("/p/") and name.isdigit() and int(name) < self.n:
            return 200, link_graph_page(int(name), self.n).encode()
        return 404, b"not found"


@asynccontextmanager
async def serve_hypercorn(
    app: Any,
    certs: Certs | None,
    *,
    alpn: tuple[str, ...] = ("h2", "http/1.1"),
    max_streams: int = 100,
) -> AsyncIterator[str]:
    """Serve ``app`` on an ephemeral 127.0.0.1 port (TLS when ``certs``); yields the base URL."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    config = Config()
    config.bind = [f"fd://{sock.detach()}"]
    config.alpn_protocols = list(alpn)
    config.h2_max_concurrent_streams = max_streams
    config.keep_alive_max_requests = 1_000_000
    config.accesslog = None
    config.errorlog = None
    config.graceful_timeout = 0.5
    if certs is not None:
        config.certfile = str(certs.chain)
        config.keyfile = str(certs.chain)
    stop = asyncio.Event()
    task = asyncio.create_task(serve(app, config, shutdown_trigger=stop.wait))  # type: ignore[arg-type]
    scheme = "https" if certs is not None else "http"
    try:
        await _wait_listening(port, task)
        yield f"{scheme}://127.0.0.1:{port}"
    finally:
        stop.set()
        # hypercorn's own TLS shutdown may find the client's last bytes after its
        # close_notify (a connection relayed by a proxy, ~1 run in 5) and raise it from
        # serve(): the server's teardown, after every assertion of the test has run
        with contextlib.suppress(ssl.SSLError):
            async with asyncio.timeout(5):
                await task


async def _wait_listening(port: int, task: asyncio.Task[None]) -> None:
    for _ in range(100):
        if task.done():
            task.result()  # raise what stopped it
        try:
            _, writer = await asyncio.open_connection("127.0.0.1", port)
        except OSError:
            await asyncio.sleep(0.02)
            continue
        writer.close()
        await writer.wait_closed()
        return
    raise RuntimeError("hypercorn did not start")
