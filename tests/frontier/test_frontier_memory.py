"""The --jobdir frontier at scale: many pending requests, most of them on disk, come
back exact (none lost, none doubled, in order). How much memory a million of them
take is a benchmark target (``python -m benchmarks.memory --only disk``), not a test."""

from __future__ import annotations

from pathlib import Path

from pooledcrawl import Request, Response, Spider
from pooledcrawl.frontier.sqlite import SQLiteFrontier

PENDING = 100_000
SERVED = 5000


class Big(Spider):
    name = "big"

    def parse(self, response: Response) -> None:
        return None


def url(i: int) -> str:
    return f"http://site{i % 50}.example/category/{i % 97}/item-{i}.html"


async def test_many_pending_requests_on_disk_stay_exact(tmp_path: Path) -> None:
    spider = Big()
    frontier = SQLiteFrontier(str(tmp_path / "job"), spider)
    await frontier.open()
    parse = spider.parse
    for i in range(PENDING):
        assert frontier.push(Request(url(i), parse), url(i))
        if i % 20_000 == 0:
            await frontier.checkpoint()  # most of them go to disk
    again = range(0, PENDING, 1000)
    assert not any(frontier.push(Request(url(i), parse), url(i)) for i in again)
    served = []
    for _ in range(SERVED):
        request = frontier.pop(0.0)
        assert request is not None
        served.append(request.url)
        frontier.ack(request)
    await frontier.checkpoint()
    assert len(frontier) == PENDING - SERVED
    await frontier.close()
    assert served == [url(i) for i in range(SERVED)]  # FIFO across checkpoints
    # reopened from disk: the rest, once each, in order
    frontier = SQLiteFrontier(str(tmp_path / "job"), spider)
    await frontier.open()
    try:
        assert len(frontier) == PENDING - SERVED
        assert not frontier.push(Request(url(7), parse), url(7))  # still seen
        rest = []
        while (request := frontier.pop(0.0)) is not None:
            rest.append(request.url)
            frontier.ack(request)
        assert rest == [url(i) for i in range(SERVED, PENDING)]
    finally:
        await frontier.close()
