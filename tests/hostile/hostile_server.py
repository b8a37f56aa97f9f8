"""One hostile server on 127.0.0.1: an aiohttp app for what aiohttp can send, and a raw
asyncio socket server for what no well-behaved HTTP library would (a malformed status
line, endless chunked encoding, slowloris headers, truncated bodies, resets).

Every hit is recorded with a server-side ``time.monotonic()`` timestamp, so tests can
assert on retry spacing without measuring wall time from the client.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import struct
import sys
import time
from collections import defaultdict
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path

from aiohttp import web
from sites import serve

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))  # the repo's `benchmarks`

from benchmarks.memory import BOMB_SIZE, bomb  # one bomb for the tests and the benchmark

__all__ = ["BOMB_SIZE", "GOOD_PAGES", "Hostile", "bomb", "hostile_server"]

#: well-behaved pages, /ok/0.html .. /ok/{GOOD_PAGES-1}.html, all reachable from /ok/0.html
GOOD_PAGES = 30
#: the header line slowloris drips, one byte at a time
_DRIP = 0.05


@dataclass
class Hostile:
    """Where the two servers listen, and every hit they saw."""

    app_url: str = ""
    raw_url: str = ""
    hits: defaultdict[str, list[float]] = field(default_factory=lambda: defaultdict(list))

    def hit(self, path: str) -> int:
        """Record a hit on ``path``; returns how many there were before it."""
        times = self.hits[path]
        times.append(time.monotonic())
        return len(times) - 1


def _good_page(i: int) -> str:
    links = "".join(
        f'<a href="/ok/{j}.html">{j}</a>' for j in {(i + 1) % GOOD_PAGES, (2 * i) % GOOD_PAGES}
    )
    return f"<html><head><title>ok {i}</title></head><body>{links}</body></html>"


def _app(state: Hostile, bombs: dict[str, bytes]) -> web.Application:
    routes = web.RouteTableDef()

    @routes.get(r"/ok/{i:\d+}.html")
    async def ok(request: web.Request) -> web.Response:
        i = int(request.match_info["i"])
        state.hit(request.path)
        return web.Response(text=_good_page(i), content_type="text/html")

    @routes.get("/slow-body")
    async def slow_body(request: web.Request) -> web.StreamResponse:
        state.hit(request.path)
        resp = web.StreamResponse(headers={"Content-Type": "text/html"})
        resp.content_length = 1000
        await resp.prepare(request)
        await resp.write(b"<html>")
        await asyncio.sleep(30)  # far past sock_read; the client hangs up first
        return resp

    @routes.get("/too-big")
    async def too_big(request: web.Request) -> web.Response:
        state.hit(request.path)
        return web.Response(body=b"x" * (2 * 1024 * 1024), content_type="text/plain")

    @routes.get("/too-big-streamed")
    async def too_big_streamed(request: web.Request) -> web.StreamResponse:
        state.hit(request.path)
        resp = web.StreamResponse(headers={"Content-Type": "text/plain"})
        resp.enable_chunked_encoding()
        await resp.prepare(request)
        with contextlib.suppress(ConnectionError):
            for _ in range(64):  # 4 MiB in all, with no Content-Length to warn of it
                await resp.write(b"y" * 65536)
        return resp

    @routes.get("/{encoding:gzip|deflate}-bomb")
    async def bomb_handler(request: web.Request) -> web.Response:
        state.hit(request.path)
        encoding = request.match_info["encoding"]
        return web.Response(
            body=bombs[encoding],
            headers={"Content-Encoding": encoding, "Content-Type": "text/html"},
        )

    @routes.get("/loop/{name}")
    async def loop(request: web.Request) -> web.Response:
        state.hit(request.path)
        other = "b" if request.match_info["name"] == "a" else "a"
        raise web.HTTPFound(f"/loop/{other}")

    @routes.get(r"/chain/{n:\d+}")
    async def chain(request: web.Request) -> web.Response:
        state.hit(request.path)
        n = int(request.match_info["n"])
        if n == 0:
            return web.Response(text="<title>end of the chain</title>", content_type="text/html")
        raise web.HTTPFound(f"/chain/{n - 1}")

    @routes.get("/to-file")
    async def to_file(request: web.Request) -> web.Response:
        state.hit(request.path)
        raise web.HTTPFound("file:///etc/passwd")

    @routes.get("/flaky-503")
    async def flaky(request: web.Request) -> web.Response:
        if state.hit(request.path) < 3:
            return web.Response(status=503, text="try again")
        return web.Response(text="<title>recovered</title>", content_type="text/html")

    @routes.get("/retry-after")
    async def retry_after(request: web.Request) -> web.Response:
        if state.hit(request.path) == 0:
            return web.Response(status=429, headers={"Retry-After": "2"}, text="slow down")
        return web.Response(text="<title>after the pause</title>", content_type="text/html")

    @routes.get("/charset")
    async def charset(request: web.Request) -> web.Response:
        state.hit(request.path)
        body = "<html><head><title>café ünïcode</title></head></html>".encode()
        return web.Response(body=body, headers={"Content-Type": "text/html; charset=x-klingon-9"})

    @routes.get("/empty")
    async def empty(request: web.Request) -> web.Response:
        state.hit(request.path)
        return web.Response(status=200)

    app = web.Application()
    app.add_routes(routes)
    return app


# ---- the raw socket server ---------------------------------------------------------

RawHandler = Callable[[asyncio.StreamWriter, int], Awaitable[None]]


async def _slowloris(writer: asyncio.StreamWriter, n: int) -> None:
    writer.write(b"HTTP/1.1 200 OK\r\nX-Slow: ")
    for _ in range(10_000):  # bounded, but far longer than any client timeout
        writer.write(b"a")
        await writer.drain()
        await asyncio.sleep(_DRIP)


async def _reset_once(writer: asyncio.StreamWriter, n: int) -> None:
    body = b"<html><title>survived a reset</title>" + b"." * 20_000 + b"</html>"
    writer.write(b"HTTP/1.1 200 OK\r\nContent-Type: text/html\r\n")
    writer.write(b"Content-Length: %d\r\n\r\n" % len(body))
    if n > 0:
        writer.write(body)
        await writer.drain()
        return
    writer.write(body[:5000])
    await writer.drain()
    await asyncio.sleep(0.05)
    sock = writer.get_extra_info("socket")
    # SO_LINGER 0: close() sends RST instead of FIN, a reset mid-body
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    writer.transport.abort()


async def _endless_chunked(writer: asyncio.StreamWriter, n: int) -> None:
    writer.write(
        b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nTransfer-Encoding: chunked\r\n\r\n"
    )
    chunk = b"%x\r\n%s\r\n" % (4096, b"z" * 4096)
    for _ in range(1_000_000):  # bounded; the client gives up long before
        writer.write(chunk)
        await writer.drain()


async def _malformed_status(writer: asyncio.StreamWriter, n: int) -> None:
    writer.write(b"HTTP/1.1 banana Not A Status\r\nContent-Length: 2\r\n\r\nhi")
    await writer.drain()


async def _truncated(writer: asyncio.StreamWriter, n: int) -> None:
    writer.write(b"HTTP/1.1 200 OK\r\nContent-Type: text/html\r\nContent-Length: 1000\r\n\r\n")
    writer.write(b"<html>" + b"t" * 400)
    await writer.drain()  # then close: 594 bytes short


async def _bad_headers(writer: asyncio.StreamWriter, n: int) -> None:
    body = b"<html><head><title>odd headers</title></head></html>"
    writer.write(
        b"HTTP/1.1 200 OK\r\n"
        b"Content-Type: text/html; charset=\xff\xfe-nonsense\r\n"
        b"Retry-After: whenever you like\r\n"
        b"X-Latin: caf\xe9\r\n"
        b"Content-Length: %d\r\n\r\n%s" % (len(body), body)
    )
    await writer.drain()


RAW_ROUTES: dict[str, RawHandler] = {
    "/slowloris": _slowloris,
    "/reset-once": _reset_once,
    "/endless-chunked": _endless_chunked,
    "/malformed-status": _malformed_status,
    "/truncated": _truncated,
    "/bad-headers": _bad_headers,
}


async def _raw_client(
    state: Hostile, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
) -> None:
    """One request per connection, then close: these responses are never reusable."""
    try:
        head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 5)
        path = head.split(b" ", 2)[1].decode("ascii", "replace")
        handler = RAW_ROUTES.get(path)
        if handler is None:
            writer.write(b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n")
            await writer.drain()
        else:
            await handler(writer, state.hit(path))
    except (ConnectionError, TimeoutError, asyncio.IncompleteReadError, IndexError):
        pass
    finally:
        writer.close()
        with contextlib.suppress(ConnectionError):
            await writer.wait_closed()


@asynccontextmanager
async def hostile_server() -> AsyncIterator[Hostile]:
    """Both servers on ephemeral 127.0.0.1 ports, for the duration of the block."""
    state = Hostile()
    raw = await asyncio.start_server(
        lambda r, w: _raw_client(state, r, w), host="127.0.0.1", port=0
    )
    port = raw.sockets[0].getsockname()[1]
    state.raw_url = f"http://127.0.0.1:{port}"
    try:
        bombs = {encoding: bomb(BOMB_SIZE, encoding) for encoding in ("gzip", "deflate")}
        async with serve(_app(state, bombs)) as url:
            state.app_url = url
            yield state
    finally:
        raw.close()
        # close() stops listening; handlers still dripping end when their client hangs up
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(raw.wait_closed(), 2)
