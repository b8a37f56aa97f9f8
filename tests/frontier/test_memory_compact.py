"""MemoryFrontier keeps plain pending requests compact and gives them back intact."""

from __future__ import annotations

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


def test_a_plain_request_waits_as_its_url_not_as_the_request() -> None:
    """What makes a pending request cheap: a plain one is rebuilt when popped (the
    frontier kept its URL and a shared callback/depth, not the object), a special one
    comes back as itself. The bytes it costs are a benchmark target
    (``python -m benchmarks.memory``: at most 250 per pending request)."""
    spider = S()
    frontier = MemoryFrontier()
    plain = [Request(f"http://h.test/p/{i}.html", spider.parse) for i in range(1000)]
    for request in plain:
        request.depth = 2
        assert frontier.push(request, request.url)
    got = [frontier.pop(0.0) for _ in plain]
    assert [r.url for r in got if r is not None] == [r.url for r in plain]
    assert not any(back is sent for back, sent in zip(got, plain, strict=True))
    # and each comes back with its callback and depth
    assert all(r is not None and r.callback == spider.parse and r.depth == 2 for r in got)
