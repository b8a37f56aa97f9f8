"""The size cap every transport applies: an announced length over it fails before the
body is read, and a body is never held past it, whatever the chunking."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from pooledcrawl.transport.base import TransportError
from pooledcrawl.transport.capped import CappedBody, check_length, read_capped


async def chunks(*parts: bytes) -> AsyncIterator[bytes]:
    for part in parts:
        yield part


async def test_a_body_up_to_the_cap_is_read_whole() -> None:
    assert await read_capped(chunks(b"ab", b"", b"cd"), 4) == b"abcd"


async def test_a_body_past_the_cap_fails_without_keeping_the_rest() -> None:
    body = CappedBody(4)
    body.write(b"abc")
    with pytest.raises(TransportError) as caught:
        body.write(b"de")
    assert (caught.value.name, caught.value.retryable) == ("ResponseTooLarge", False)
    assert str(caught.value) == "ResponseTooLarge: body over the 4-byte cap"
    assert body.value() == b"abc"
    with pytest.raises(TransportError, match="body over the 4-byte cap"):
        await read_capped(chunks(b"abc", b"de"), 4)


def test_an_announced_length_over_the_cap_fails_before_reading() -> None:
    check_length(None, 4)
    check_length(4, 4)
    with pytest.raises(TransportError, match="Content-Length 5 over the 4-byte cap"):
        check_length(5, 4)
