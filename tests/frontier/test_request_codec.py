"""One codec for both persistent frontiers: a request survives the Redis row and the
SQLite columns alike, and bare GETs take the compact form."""

from __future__ import annotations

import orjson
import pytest

from pooledcrawl.errors import UsageError
from pooledcrawl.frontier.codec import RequestCodec
from pooledcrawl.http.request import Request, is_plain
from pooledcrawl.spider import Spider


class Shop(Spider):
    name = "shop"

    def parse(self, response: object) -> None:
        return None

    def failed(self, failure: object) -> None:
        return None


def fields(request: Request) -> tuple[object, ...]:
    return (
        request.url,
        request.callback,
        request.method,
        request.headers,
        request.body,
        request.get_meta("k"),
        request._cb_kwargs,
        request.priority,
        request.depth,
        request.dont_filter,
        request.errback,
        request.attempts,
        request.retries,
    )


def full_request(spider: Shop) -> Request:
    request = Request(
        "http://shop.test/cart",
        spider.parse,
        method="POST",
        headers={"X-A": "1"},
        body=b"a=\xe9",
        meta={"k": [1, 2]},
        cb_kwargs={"page": 3},
        priority=-4,
        dont_filter=True,
        errback=spider.failed,
    )
    request.depth, request.attempts, request.retries = 2, 3, 1
    return request


def test_a_request_survives_both_layouts() -> None:
    spider = Shop()
    codec = RequestCodec(spider)
    request = full_request(spider)
    assert fields(codec.decode(codec.encode(request))) == fields(request)
    url, callback, depth, extra = codec.columns(request)
    assert extra is not None
    back = codec.request(url, callback, request.priority, depth, orjson.loads(extra))
    assert fields(back) == fields(request)


def test_a_bare_get_has_no_extras() -> None:
    spider = Shop()
    codec = RequestCodec(spider)
    request = Request("http://shop.test/", spider.parse, priority=5)
    request.depth = 1
    assert is_plain(request)
    assert codec.columns(request) == ("http://shop.test/", "parse", 1, None)
    assert orjson.loads(codec.encode(request)) == ["http://shop.test/", "parse", 5, 1]
    assert fields(codec.decode(codec.encode(request))) == fields(request)


@pytest.mark.parametrize(
    "change",
    [
        {"method": "POST"},
        {"headers": {}},
        {"body": b""},
        {"meta": {"a": 1}},
        {"cb_kwargs": {"a": 1}},
        {"dont_filter": True},
    ],
)
def test_anything_besides_url_callback_priority_and_depth_is_not_plain(
    change: dict[str, object],
) -> None:
    assert not is_plain(Request("http://shop.test/", **change))  # type: ignore[arg-type]


def test_a_callback_that_is_not_a_spider_method_is_refused_with_where_it_goes() -> None:
    codec = RequestCodec(Shop(), store="job dir j (--jobdir)", restart=" --fresh starts over")
    with pytest.raises(UsageError, match=r"job dir j \(--jobdir\).*must be methods of Shop"):
        codec.encode(Request("http://shop.test/", lambda response: None))
    with pytest.raises(UsageError, match=r"names the callback 'gone'.*--fresh starts over"):
        codec.request("http://shop.test/", "gone", 0, 0, None)
