"""The httpx transport's bounded Content-Encoding decoder, on its own (no sockets)."""

from __future__ import annotations

import gzip
import zlib
from collections.abc import Iterator

import brotli
import httpx
import pytest
from httpx._decoders import SUPPORTED_DECODERS  # private: guards against drift from httpx

from benchmarks.memory import bomb
from pooledcrawl.transport.base import TransportError
from pooledcrawl.transport.decoding import STEP, _Zstd, decodable, decoder_for

PAGE = b"<html><body>" + b"".join(b"<p>line %d</p>" % i for i in range(5000)) + b"</body></html>"


def deflate_raw(data: bytes) -> bytes:
    comp = zlib.compressobj(6, zlib.DEFLATED, -zlib.MAX_WBITS)
    return comp.compress(data) + comp.flush()


ENCODE = {
    "identity": lambda d: d,
    "gzip": gzip.compress,
    "deflate": zlib.compress,
    "br": brotli.compress,
}


def chunks(data: bytes, size: int) -> Iterator[bytes]:
    for i in range(0, len(data), size):
        yield data[i : i + size]


def decode_all(header: list[str], raw: bytes, size: int = 4096, step: int = STEP) -> bytes:
    decoder = decoder_for(header, step)
    out = [piece for chunk in chunks(raw, size) for piece in decoder.decode(chunk)]
    out += list(decoder.flush())
    return b"".join(out)


def httpx_decode(header: str, raw: bytes) -> bytes:
    """What httpx itself makes of the same response."""
    response = httpx.Response(200, headers={"Content-Encoding": header}, content=raw)
    return response.read()


def test_the_encodings_decoded_are_httpx_s() -> None:
    assert decodable() == frozenset(SUPPORTED_DECODERS)


@pytest.mark.parametrize(
    "header",
    [
        "gzip",
        "deflate",
        "br",
        "identity",
        "GZip ",
        "gzip, br",
        "deflate,gzip",
        "x-unknown",
        "gzip, x-unknown",
    ],
)
@pytest.mark.parametrize("size", [1, 7, 4096, 1 << 20])
def test_a_normal_body_decodes_as_httpx_decodes_it(header: str, size: int) -> None:
    raw = PAGE
    for name in (n.strip().lower() for n in header.split(",")):
        raw = ENCODE.get(name, lambda d: d)(raw)
    expected = httpx_decode(header, raw)
    got = decode_all([header], raw, size, step=1000)
    assert got == expected
    if "x-unknown" not in header:
        assert got == PAGE


def test_raw_deflate_without_the_zlib_wrapper_is_accepted_as_httpx_does() -> None:
    raw = deflate_raw(PAGE)
    assert decode_all(["deflate"], raw) == httpx_decode("deflate", raw) == PAGE


def test_each_piece_is_bounded_and_taken_lazily() -> None:
    """A 64 MiB bomb in one raw chunk: no piece over the step, and stopping after a few
    pieces leaves the rest undecoded (the cap stops it there)."""
    raw = bomb(64 * 1024 * 1024)
    decoder = decoder_for(["gzip"], step=STEP)
    pieces = decoder.decode(raw)
    taken = [next(pieces) for _ in range(16)]
    assert all(0 < len(p) <= STEP for p in taken)
    assert sum(map(len, taken)) == 16 * STEP


@pytest.mark.parametrize("encoding", ["gzip", "deflate", "br"])
def test_a_bomb_comes_out_in_bounded_pieces_that_add_up(encoding: str) -> None:
    size = 8 * 1024 * 1024
    raw = brotli.compress(bytes(size)) if encoding == "br" else bomb(size, encoding)
    decoder = decoder_for([encoding], step=STEP)
    # brotli's output buffer grows in blocks (32 KiB, then 64 KiB...): past the step by one
    bound = 2 * STEP if encoding == "br" else STEP
    total = 0
    for chunk in chunks(raw, 65536):
        for piece in decoder.decode(chunk):
            assert len(piece) <= bound
            total += len(piece)
    total += sum(map(len, decoder.flush()))
    assert total == size


def test_stacked_bombs_stay_bounded() -> None:
    raw = gzip.compress(bomb(8 * 1024 * 1024, "deflate"))
    decoder = decoder_for(["deflate, gzip"], step=STEP)
    sizes = [len(p) for chunk in chunks(raw, 65536) for p in decoder.decode(chunk)]
    assert max(sizes) <= STEP
    assert sum(sizes) == 8 * 1024 * 1024


def test_a_corrupt_body_is_a_retryable_decoding_error_like_httpx_s() -> None:
    raw = gzip.compress(PAGE)[:20] + b"\xff" * 50
    with pytest.raises(httpx.DecodingError):
        httpx_decode("gzip", raw)
    with pytest.raises(TransportError) as caught:
        decode_all(["gzip"], raw)
    assert caught.value.name == "DecodingError"
    assert caught.value.retryable


def test_zstd_frames_in_a_row_decode_in_bounded_pieces() -> None:
    zstd = pytest.importorskip("backports.zstd")
    stage = _Zstd(STEP)
    raw = zstd.compress(bytes(4 * 1024 * 1024)) + zstd.compress(PAGE)
    out = [p for chunk in chunks(raw, 999) for p in stage.feed(chunk)]
    out += list(stage.finish())
    assert max(map(len, out)) <= STEP
    assert b"".join(out) == bytes(4 * 1024 * 1024) + PAGE
