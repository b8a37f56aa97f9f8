"""MemoryFrontier keeps plain pending requests compact and gives them back intact."""

from __future__ import annotations

import tracemalloc
from typing import Any

from pooledcrawl import Request, Response, Spider
from pooledcrawl.frontier.memory import MemoryFrontier


class S(Spider):
    def parse(self, response: Response) -> None:
        return None

    def other(self, response: Response) -> None:
        return None


def fields(request: Request) -> dict[str, Any]:
    return {name: getattr(request, name) for name in Request.__slots__}


def test_plain_requests_come_back_with_every_field() -> None:
    spider = S()
    frontier = MemoryFrontier()
    sent = [
        Request("http://h.test/a", spider.parse),
        Request("http://h.test/b", spider.other, priority=5),
        Request("http://h.test/c"),
        Request("http://h.test/d", spider.parse, meta={}),  # empty: nothing to keep
    ]
    for depth, request in enumerate(sent):
        request.depth = depth
        assert frontier.push(request, request.url)
    got = [frontier.pop(0.0) for _ in sent]
    assert frontier.pop(0.0) is None
    by_url = {r.url: r for r in got if r is not None}
    for request in sent:
        back = fields(by_url[request.url])
        expected = fields(request)
        expected["_meta"] = back["_meta"] = None if not expected["_meta"] else expected["_meta"]
        assert back == expected
    assert [r.url for r in got if r is not None] == [
        "http://h.test/b",
        "http://h.test/a",
        "http://h.test/c",
        "http://h.test/d",
    ]


def test_requests_with_more_state_are_kept_as_they_are() -> None:
    spider = S()
    frontier = MemoryFrontier()
    special = [
        Request("http://h.test/1", meta={"k": 1}),
        Request("http://h.test/2", headers={"X": "y"}),
        Request("http://h.test/3", method="POST", body=b"x"),
        Request("http://h.test/4", cb_kwargs={"a": 1}),
        Request("http://h.test/5", errback=spider.other),
        Request("http://h.test/6", dont_filter=True),
    ]
    plain = Request("http://h.test/7", spider.parse)
    for request in [*special[:3], plain, *special[3:]]:
        assert frontier.push(request, request.url)
    got = [frontier.pop(0.0) for _ in range(7)]
    assert [r.url for r in got if r is not None] == [
        f"http://h.test/{i}" for i in (1, 2, 3, 7, 4, 5, 6)
    ]
    for request in special:
        assert any(r is request for r in got)


def test_retried_requests_keep_their_attempts() -> None:
    frontier = MemoryFrontier()
    request = Request("http://h.test/r")
    request.attempts = request.retries = 1
    frontier.push_later(request, 1.0)
    assert frontier.pop(2.0) is request


def test_duplicates_are_still_refused() -> None:
    frontier = MemoryFrontier()
    assert frontier.push(Request("http://h.test/a"), "http://h.test/a")
    assert not frontier.push(Request("http://h.test/a"), "http://h.test/a")
    assert frontier.push(Request("http://h.test/a", method="POST"), "http://h.test/a")


async def test_a_redirect_target_is_seen_once() -> None:
    frontier = MemoryFrontier()
    assert frontier.push(Request("http://h.test/a"), "http://h.test/a")
    assert not await frontier.add_seen("http://h.test/a")  # queued under its own URL
    assert await frontier.add_seen("http://h.test/b")
    assert not await frontier.add_seen("http://h.test/b")
    assert not frontier.push(Request("http://h.test/b"), "http://h.test/b")
    assert len(frontier) == 1


def test_a_pending_plain_request_costs_under_250_bytes() -> None:
    spider = S()
    frontier = MemoryFrontier()
    count = 20_000
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        for i in range(count):
            request = Request(f"http://127.0.0.1:8080/p/{i}.html", spider.parse)
            request.depth = 2
            frontier.push(request, request.url)
        added = tracemalloc.get_traced_memory()[0] - before
    finally:
        tracemalloc.stop()
    assert len(frontier) == count
    assert added / count < 250
