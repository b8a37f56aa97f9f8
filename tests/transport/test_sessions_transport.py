"""The transport's side of sticky sessions and cost: one HTTP session (connections and
cookie jar) per proxy identity, closed when retired or past the LRU bound; and the
bytes on the wire counted as a raw socket server sees them."""

from __future__ import annotations

import asyncio
import gzip
import os
import shutil
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))  # the repo's `benchmarks`

from benchmarks._proxies import BanningSite, serve_site, tinyproxy
from pooledcrawl import Request, Settings
from pooledcrawl.transport.aiohttp import AiohttpTransport
from pooledcrawl.transport.httpx import HttpxTransport

BODY = gzip.compress(b"<html>" + b"x" * 5000 + b"</html>")


@asynccontextmanager
async def raw_server() -> AsyncIterator[tuple[int, list[int]]]:
    """An HTTP/1.1 server on a raw socket: counts every byte read and written."""
    counted = [0]

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while True:
            try:
                head = await reader.readuntil(b"\r\n\r\n")
            except (asyncio.IncompleteReadError, ConnectionError):
                break
            counted[0] += len(head)
            response = (
                b"HTTP/1.1 200 OK\r\nContent-Type: text/html\r\nContent-Encoding: gzip\r\n"
                + f"Content-Length: {len(BODY)}\r\nSet-Cookie: a=1\r\n\r\n".encode()
                + BODY
            )
            counted[0] += len(response)
            writer.write(response)
            await writer.drain()
        writer.close()

    server = await asyncio.start_server(handle, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    try:
        yield port, counted
    finally:
        server.close()
        await server.wait_closed()


@pytest.mark.parametrize("transport_cls", [AiohttpTransport, HttpxTransport])
async def test_wire_bytes_match_what_the_server_read_and_wrote(
    transport_cls: type[AiohttpTransport] | type[HttpxTransport],
) -> None:
    async with raw_server() as (port, counted):
        if transport_cls is HttpxTransport:
            transport: AiohttpTransport | HttpxTransport = HttpxTransport(
                Settings(http2=True), verify=True
            )
        else:
            transport = AiohttpTransport(Settings())
        transport.count_bytes = True
        total = 0
        for i in range(3):
            response = await transport.fetch(Request(f"http://127.0.0.1:{port}/p/{i}?q=1"))
            assert response.body.startswith(b"<html>xxx")  # decompressed for the spider
            total += response.wire_bytes
        await transport.close()
    assert total == counted[0]  # compressed body, both header blocks, request lines


@pytest.fixture
def tinyproxy_required() -> None:
    if shutil.which("tinyproxy") is None:
        if os.environ.get("PCRAWL_REQUIRE_SERVICES"):
            pytest.fail("tinyproxy is not installed and PCRAWL_REQUIRE_SERVICES is set")
        pytest.skip("tinyproxy is not installed")


@pytest.mark.usefixtures("tinyproxy_required")
async def test_each_identity_has_its_own_cookies_and_retired_ones_are_closed() -> None:
    site = BanningSite(pages=5, limit=10**6)
    async with serve_site(site) as base, tinyproxy("127.0.0.3") as proxy:
        transport = AiohttpTransport(Settings())
        transport.max_sessions = 2
        a, b, c = (proxy.url(f"user-session-{x}:pw") for x in "abc")
        for identity in (a, a, b, b):
            await transport.fetch(Request(f"{base}/p/1.html"), identity)
        # a's second request sent the cookie a's first got; b started without one
        assert len(site.cookie_addresses) == 2
        assert site.served == 4 and len(site._cookies) == 2
        session_a = transport._sessions[a]
        transport.discard(a)
        await transport.fetch(Request(f"{base}/p/2.html"), b)  # a is idle: closed now
        assert a not in transport._sessions and session_a.closed
        for identity in (a, b, c):  # three identities, a bound of two: the LRU goes
            await transport.fetch(Request(f"{base}/p/3.html"), identity)
        assert list(transport._sessions) == [b, c]
        await transport.close()
