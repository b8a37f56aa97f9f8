"""The response size cap, the same for every transport: a ``Content-Length`` over
``max_response_size`` fails before the body is read, and a body is never buffered
past the cap, counted after decompression (so a gzip bomb stops at the cap)."""

from __future__ import annotations

from collections.abc import AsyncIterable

from pooledcrawl.transport.base import TransportError

__all__ = ["CappedBody", "check_length", "read_capped", "too_large"]


def too_large(cap: int, length: int | None = None) -> TransportError:
    """The error for a body over ``cap``: announced (``length``) or found while reading."""
    if length is None:
        return TransportError("ResponseTooLarge", f"body over the {cap}-byte cap", retryable=False)
    return TransportError(
        "ResponseTooLarge", f"Content-Length {length} over the {cap}-byte cap", retryable=False
    )


def check_length(length: int | None, cap: int) -> None:
    """Fail before reading a body whose announced ``length`` is over ``cap``."""
    if length is not None and length > cap:
        raise too_large(cap, length)


class CappedBody:
    """A body's chunks as they arrive; refuses to hold more than ``cap`` bytes.

    ``write`` has the file-like signature libcurl's write callback wants."""

    __slots__ = ("cap", "parts", "size")

    def __init__(self, cap: int) -> None:
        self.cap = cap
        self.parts: list[bytes] = []
        self.size = 0

    def write(self, data: bytes) -> int:
        self.size += len(data)
        if self.size > self.cap:
            raise too_large(self.cap)
        self.parts.append(data)
        return len(data)

    def value(self) -> bytes:
        return b"".join(self.parts)


async def read_capped(chunks: AsyncIterable[bytes], cap: int) -> bytes:
    """The body from ``chunks`` (decoded), or ResponseTooLarge once it passes ``cap``."""
    body = CappedBody(cap)
    async for chunk in chunks:
        body.write(chunk)
    return body.value()
