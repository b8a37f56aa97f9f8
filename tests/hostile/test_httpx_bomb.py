"""The httpx transport against compression bombs, and against compressed pages it must
read as httpx would. (The whole hostile crawl runs over aiohttp and curl; httpx names
some other failures differently, so its bomb checks live here.)"""

from __future__ import annotations

import gzip
import zlib

import brotli
import httpx
import pytest
from aiohttp import web
from hostile_server import hostile_server
from sites import serve

from pooledcrawl import Request, Settings
from pooledcrawl.transport.base import TransportError
from pooledcrawl.transport.httpx import HttpxTransport

CAP = 1024 * 1024
PAGE = b"<html><body>" + b"".join(b"<p>row %d</p>" % i for i in range(20000)) + b"</body></html>"


@pytest.mark.parametrize("path", ["/gzip-bomb", "/deflate-bomb"])
async def test_a_bomb_is_cut_off_at_the_cap_after_one_request(path: str) -> None:
    async with hostile_server() as hostile:
        transport = HttpxTransport(Settings(transport="httpx", max_response_size=CAP))
        try:
            with pytest.raises(TransportError) as caught:
                await transport.fetch(Request(hostile.app_url + path))
        finally:
            await transport.close()
    assert caught.value.name == "ResponseTooLarge"
    assert not caught.value.retryable
    assert "Content-Length" not in str(caught.value)  # found while decoding
    assert len(hostile.hits[path]) == 1


ENCODED = {
    "gzip": gzip.compress(PAGE),
    "deflate": zlib.compress(PAGE),
    "br": brotli.compress(PAGE),
    "gzip, br": brotli.compress(gzip.compress(PAGE)),
    "identity": PAGE,
    "x-unknown": b"raw bytes of an unknown coding",
}


@pytest.mark.parametrize("encoding", list(ENCODED))
async def test_a_compressed_page_reads_as_httpx_reads_it(encoding: str) -> None:
    async def handler(request: web.Request) -> web.Response:
        return web.Response(body=ENCODED[encoding], headers={"Content-Encoding": encoding})

    app = web.Application()
    app.router.add_get("/page", handler)
    async with serve(app) as url:
        transport = HttpxTransport(Settings(transport="httpx"))
        try:
            response = await transport.fetch(Request(url + "/page"))
        finally:
            await transport.close()
        async with httpx.AsyncClient() as client:
            expected = (await client.get(url + "/page")).content
    assert response.body == expected
    assert response.headers["Content-Encoding"] == encoding
