"""Content-Encoding decoding with a bounded output per step, for the httpx transport.

httpx's own decoders inflate a whole raw chunk at once: a 64 KiB chunk of a gzip
bomb becomes up to 64 MiB before the size cap sees a byte of it. These decoders
hand out at most about ``step`` bytes at a time (zlib's ``max_length`` with its
``unconsumed_tail``; brotli's ``output_buffer_limit``, which grows its buffer in
blocks and so may pass the step by one block, under twice the step), lazily, so
the caller's cap stops a bomb within a step or two past the cap.

Which encodings are decoded, and how, follows httpx (``httpx/_decoders.py``):
``Content-Encoding`` values split on commas, stripped and lower-cased, applied in
reverse; unknown values are skipped (the rest still decoded); ``deflate`` is tried
zlib-wrapped first, then raw; ``br`` only with ``brotli`` or ``brotlicffi``
installed; ``zstd`` only with ``zstandard`` installed (httpx's condition), several
frames in a row allowed. Limits: a ``brotli``/``brotlicffi`` older than 1.2 has
no output bound (each raw chunk is then inflated whole), and so has ``zstd``
unless ``backports.zstd`` (or Python 3.14's ``compression.zstd``) is installed.
"""

from __future__ import annotations

import functools
import zlib
from collections.abc import Iterable, Iterator
from importlib import import_module
from typing import Any, Protocol

from pooledcrawl.transport.base import TransportError

__all__ = ["STEP", "BoundedDecoder", "decodable", "decoder_for"]

#: most bytes one decode step hands out
STEP = 64 * 1024


@functools.cache
def _optional(*names: str) -> Any:
    """The first of ``names`` that imports, or None (asked once: a failed import is not
    cached by Python, and would search the path again for every response)."""
    for name in names:
        try:
            return import_module(name)
        except ImportError:
            continue
    return None


@functools.cache
def decodable() -> frozenset[str]:
    """The encodings httpx decodes with the packages installed (the rest pass raw)."""
    names = {"identity", "gzip", "deflate"}
    if _optional("brotli", "brotlicffi") is not None:
        names.add("br")
    if _optional("zstandard") is not None:
        names.add("zstd")
    return frozenset(names)


def _error(exc: BaseException | str) -> TransportError:
    # what the transport makes of httpx's DecodingError
    return TransportError("DecodingError", str(exc), retryable=True)


class _Stage(Protocol):
    def feed(self, data: bytes) -> Iterator[bytes]: ...

    def finish(self) -> Iterator[bytes]: ...


class _Zlib:
    """gzip (``wbits`` 31), or deflate: zlib-wrapped, else raw if the first chunk fails."""

    __slots__ = ("_d", "_first", "_step", "_wbits")

    def __init__(self, wbits: int, step: int) -> None:
        self._wbits = wbits
        self._d = zlib.decompressobj(wbits)
        self._step = step
        self._first = wbits == zlib.MAX_WBITS  # only deflate falls back

    def feed(self, data: bytes) -> Iterator[bytes]:
        if not data:
            return
        fallback, self._first = self._first, False
        while True:
            try:
                out = self._d.decompress(data, self._step)
            except zlib.error as exc:
                if fallback:  # nothing came out yet: try raw deflate, as httpx does
                    fallback = False
                    self._d = zlib.decompressobj(-zlib.MAX_WBITS)
                    continue
                raise _error(exc) from exc
            fallback = False
            if out:
                yield out
            data = self._d.unconsumed_tail
            # a full step may leave output pending inside zlib even with no input left
            if not data and len(out) < self._step:
                return

    def finish(self) -> Iterator[bytes]:
        try:
            out = self._d.flush()
        except zlib.error as exc:
            raise _error(exc) from exc
        if out:
            yield out


class _Brotli:
    """``br``: bounded with brotli >= 1.2 (``output_buffer_limit``), whole chunks before."""

    __slots__ = ("_d", "_module", "_process", "_seen", "_step")

    def __init__(self, module: Any, step: int) -> None:
        self._module = module
        self._d = module.Decompressor()
        # 'brotli' calls it process, 'brotlicffi' decompress
        self._process = getattr(self._d, "process", None) or self._d.decompress
        self._step = step
        self._seen = False

    def feed(self, data: bytes) -> Iterator[bytes]:
        if not data:
            return
        self._seen = True
        error = self._module.error
        try:
            if not hasattr(self._d, "can_accept_more_data"):
                yield self._process(data)
                return
            step = self._step
            out = self._process(data, output_buffer_limit=step)
            # a full piece may leave output pending, which can_accept_more_data()
            # does not tell (it is about input kept back)
            while out or not self._d.can_accept_more_data():
                if out:
                    yield out
                if len(out) < step and self._d.can_accept_more_data():
                    return
                out = self._process(b"", output_buffer_limit=step)
        except error as exc:
            raise _error(exc) from exc

    def finish(self) -> Iterator[bytes]:
        if self._seen and hasattr(self._d, "finish"):  # brotlicffi: checks for truncation
            try:
                self._d.finish()
            except self._module.error as exc:
                raise _error(exc) from exc
        return iter(())


class _Zstd:
    """``zstd``, frames in a row; bounded with ``compression.zstd``/``backports.zstd``."""

    __slots__ = ("_d", "_make", "_seen", "_step", "_zstd")

    def __init__(self, step: int) -> None:
        self._zstd = _optional("compression.zstd", "backports.zstd")
        if self._zstd is not None:
            self._make = self._zstd.ZstdDecompressor
        else:
            zstandard = import_module("zstandard")
            self._make = lambda: zstandard.ZstdDecompressor().decompressobj()
        self._d = self._make()
        self._step = step
        self._seen = False

    def feed(self, data: bytes) -> Iterator[bytes]:
        if not data:
            return
        self._seen = True
        try:
            if self._zstd is None:
                yield from self._feed_unbounded(data)
            else:
                yield from self._feed_bounded(data)
        except TransportError:
            raise
        except Exception as exc:  # ZstdError of either package
            raise _error(exc) from exc

    def _feed_unbounded(self, data: bytes) -> Iterator[bytes]:
        yield self._d.decompress(data)
        while self._d.eof and self._d.unused_data:
            rest = self._d.unused_data
            self._d = self._make()
            yield self._d.decompress(rest)

    def _feed_bounded(self, data: bytes) -> Iterator[bytes]:
        while True:
            if self._d.eof:
                data = self._d.unused_data + data
                if not data:
                    return
                self._d = self._make()
            out = self._d.decompress(data, self._step)
            data = b""
            if out:
                yield out
            if self._d.eof:
                if not self._d.unused_data:
                    return
            elif self._d.needs_input:
                return

    def finish(self) -> Iterator[bytes]:
        if self._seen and not self._d.eof:
            raise _error("Zstandard data is incomplete")
        return iter(())


def _stage(encoding: str, step: int) -> _Stage | None:
    if encoding == "gzip":
        return _Zlib(zlib.MAX_WBITS | 16, step)
    if encoding == "deflate":
        return _Zlib(zlib.MAX_WBITS, step)
    if encoding not in decodable() or encoding == "identity":
        return None  # unknown, or its package missing: passed through, as httpx does
    if encoding == "br":
        return _Brotli(_optional("brotli", "brotlicffi"), step)
    return _Zstd(step)


class BoundedDecoder:
    """Decodes a body given as raw chunks, stacked encodings included, handing out
    pieces of at most about ``step`` bytes each, and only as they are asked for."""

    __slots__ = ("_stages",)

    def __init__(self, encodings: Iterable[str], step: int = STEP) -> None:
        stages = [_stage(e, step) for e in encodings]
        # the last encoding applied is the first to undo
        self._stages = [s for s in reversed(stages) if s is not None]

    @property
    def passthrough(self) -> bool:
        """Nothing to decode: the raw bytes are the body."""
        return not self._stages

    def decode(self, data: bytes) -> Iterator[bytes]:
        """The decoded pieces of the next raw chunk ``data``, made as they are taken."""
        return self._through(0, iter((data,)))

    def flush(self) -> Iterator[bytes]:
        """What the decoders still hold once the raw body has ended."""
        return self._flush(0)

    def _through(self, index: int, pieces: Iterator[bytes]) -> Iterator[bytes]:
        if index == len(self._stages):
            yield from (p for p in pieces if p)
            return
        stage = self._stages[index]
        for piece in pieces:
            yield from self._through(index + 1, stage.feed(piece))

    def _flush(self, index: int) -> Iterator[bytes]:
        # each stage's tail goes through the stages after it, which then flush too
        if index == len(self._stages):
            return
        yield from self._through(index + 1, self._stages[index].finish())
        yield from self._flush(index + 1)


def decoder_for(content_encoding: Iterable[str], step: int = STEP) -> BoundedDecoder:
    """The decoder for a response's ``Content-Encoding`` header values, as httpx reads them."""
    names = [part.strip().lower() for value in content_encoding for part in value.split(",")]
    return BoundedDecoder(names, step)
