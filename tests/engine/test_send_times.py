"""The slot's policy gets its own send times back with every answer.

A policy tells its sends apart by time (which were close to the one before,
which came after a cut), and learns when each answered one was sent from
``now - latency``. That must be the time it was given in ``on_send``, not a
later one: a downloader middleware, or the worker's turn coming later, sits
between the hand-out and the fetch.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator, Mapping
from typing import Any

from pooledcrawl import Engine, Request, Response, Settings, Spider
from pooledcrawl.throttle.fixed import FixedPolicy
from pooledcrawl.transport.base import TransportError


class OfflineTransport:
    """Pages 0-9 link to the next; page 5 fails at the transport."""

    def __init__(self, settings: Settings) -> None: ...

    async def fetch(self, request: Request, proxy: str | None = None) -> Response:
        n = int(request.url.rsplit("/", 1)[1])
        await asyncio.sleep(0.002)
        if n == 5:
            raise TransportError("ConnectionResetError", "reset", retryable=False)
        body = f'<a href="/{n + 1}">next</a>' if n < 9 else "<p>end</p>"
        return Response(request.url, 200, {"Content-Type": "text/html"}, body.encode(), request)

    async def close(self) -> None: ...


class RecordingPolicy(FixedPolicy):
    sends: list[float] = []
    answered: list[float] = []  # now - latency, from every response and error

    def __init__(self, settings: Settings) -> None:
        super().__init__(2)

    def on_send(self, now: float) -> None:
        RecordingPolicy.sends.append(now)

    def on_response(
        self, now: float, status: int, latency: float, headers: Mapping[str, str]
    ) -> None:
        RecordingPolicy.answered.append(now - latency)

    def on_error(self, now: float, latency: float) -> None:
        RecordingPolicy.answered.append(now - latency)


class SlowSigner:
    """A downloader middleware that takes a while before the fetch."""

    async def process_request(self, request: Request, spider: Spider) -> None:
        await asyncio.sleep(0.005)


class Chain(Spider):
    start_urls = ["http://offline.test/0", "http://offline.test/6"]

    def parse(self, response: Response) -> Iterator[Any]:
        yield from response.follow_all(css="a")


async def test_every_answer_carries_the_time_its_send_was_handed_out() -> None:
    RecordingPolicy.sends, RecordingPolicy.answered = [], []
    settings = Settings(
        transport_class=OfflineTransport,
        policy_class=RecordingPolicy,
        middlewares=[SlowSigner],
        max_retries=0,
    )
    stats = await Engine(Chain(), settings).run()
    assert stats.pages == 9  # 0-4 and 6-9; 5 failed
    sends, answered = RecordingPolicy.sends, RecordingPolicy.answered
    assert len(answered) == len(sends) == 10
    for sent_at in answered:
        # the very time on_send was given (the fetch began 5 ms later)
        assert min(abs(sent_at - t) for t in sends) < 1e-9
