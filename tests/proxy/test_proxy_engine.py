"""The engine with a proxy pool, over a scripted transport (no network): which proxy
each request takes, retries on another proxy, the retry budget, bans, 407, the
all-down stop, and credentials kept out of what errbacks and stats see."""

from __future__ import annotations

import asyncio
import random
from collections import Counter
from collections.abc import Callable, Iterator
from typing import Any

import orjson
import pytest

from pooledcrawl import Engine, Failure, Request, Response, Settings, Spider
from pooledcrawl.proxy.endpoint import Proxy, ProxyConfig
from pooledcrawl.proxy.pool import ProxyPool
from pooledcrawl.transport.base import TransportError

SECRET = "zq-Pr0xyPass-771"

Behaviour = Callable[[Request, str | None], "Response | Exception"]


class ScriptedTransport:
    """Answers each fetch from ``behaviour(request, proxy_url)``; records the calls."""

    def __init__(self, behaviour: Behaviour, delay: float = 0.0) -> None:
        self.behaviour = behaviour
        self.delay = delay
        self.calls: list[tuple[str, str | None]] = []
        self.inflight: Counter[str | None] = Counter()
        self.peak: Counter[str | None] = Counter()

    async def fetch(self, request: Request, proxy: str | None = None) -> Response:
        self.calls.append((request.url, proxy))
        self.inflight[proxy] += 1
        self.peak[proxy] = max(self.peak[proxy], self.inflight[proxy])
        try:
            await asyncio.sleep(self.delay)
            outcome = self.behaviour(request, proxy)
        finally:
            self.inflight[proxy] -= 1
        if isinstance(outcome, Exception):
            raise outcome
        return outcome

    async def close(self) -> None:
        return None


def ok(request: Request, status: int = 200) -> Response:
    return Response(request.url, status, {}, b"<html></html>", request)


class PagesSpider(Spider):
    """Requests /0 .. /n-1 on one host; records what reached the callback and errback."""

    def __init__(self, n: int, host: str = "http://t.example", **kw: Any) -> None:
        super().__init__(**kw)
        self.n, self.host = n, host
        self.parsed: list[str] = []
        self.failures: list[Failure] = []

    async def start(self) -> Any:
        for i in range(self.n):
            yield Request(f"{self.host}/{i}", errback=self.failed)

    def parse(self, response: Response) -> Iterator[Any]:
        self.parsed.append(response.url)
        yield {"url": response.url}

    def failed(self, failure: Failure) -> None:
        self.failures.append(failure)


def proxies(n: int, *, creds: bool = True) -> list[Proxy]:
    return [
        Proxy("http", "127.0.0.1", 9000 + i, "user" if creds else None, SECRET if creds else None)
        for i in range(n)
    ]


def settings(**kw: Any) -> Settings:
    base: dict[str, Any] = {
        "concurrency": 8,
        "autothrottle": False,
        "retry_backoff_base": 0.001,
        "retry_backoff_cap": 0.01,
        "proxy_backoff_base": 0.01,
        "proxy_backoff_cap": 0.05,
    }
    base.update(kw)
    return Settings(**base)


def port_of(proxy_url: str | None) -> int:
    assert proxy_url is not None
    return int(proxy_url.rsplit(":", 1)[1])


async def test_rotating_gateway_slots_are_per_target() -> None:
    transport = ScriptedTransport(lambda r, p: ok(r), delay=0.001)
    spider = PagesSpider(20)
    config = ProxyConfig("rotating", tuple(proxies(1)), source="test")
    engine = Engine(spider, settings(), transport=transport, proxies=config)
    stats = await engine.run()
    assert len(spider.parsed) == 20
    assert all(p is not None and SECRET in p for _, p in transport.calls)  # sent to the proxy
    assert set(stats.domains) == {"t.example"}
    assert stats.extra["proxies"]["http://127.0.0.1:9000"]["requests"] == 20
    assert SECRET not in orjson.dumps(stats.to_dict(), option=orjson.OPT_NON_STR_KEYS).decode()


async def test_static_slots_are_domain_x_proxy_and_each_proxy_keeps_its_cap() -> None:
    transport = ScriptedTransport(lambda r, p: ok(r), delay=0.005)
    spider = PagesSpider(60)
    config = ProxyConfig("static", tuple(proxies(3)), source="test")
    engine = Engine(
        spider,
        settings(concurrency=16, proxy_concurrency=2, domain_concurrency=2),
        transport=transport,
        proxies=config,
    )
    stats = await engine.run()
    assert len(spider.parsed) == 60
    assert max(transport.peak.values()) <= 2  # the per-proxy cap
    assert len(transport.peak) == 3
    assert stats.max_inflight > 2  # 3 IPs carry 3x one IP's share of the domain
    assert set(stats.domains) == {f"t.example via http://127.0.0.1:{9000 + i}" for i in range(3)}
    assert all(d["peak_concurrency"] <= 2 for d in stats.domains.values())


async def test_a_proxy_fault_is_retried_on_another_proxy_charging_the_budget_once() -> None:
    dead = {9000, 9001}

    def behaviour(request: Request, proxy: str | None) -> Response | Exception:
        if port_of(proxy) in dead:
            return TransportError(
                "ClientProxyConnectionError",
                f"cannot connect to {proxy}",  # a library may well put the URL in
                retryable=True,
                proxy_fault=True,
            )
        return ok(request)

    transport = ScriptedTransport(behaviour)
    spider = PagesSpider(12)
    config = ProxyConfig("static", tuple(proxies(3)), source="test")
    engine = Engine(spider, settings(max_retries=1), transport=transport, proxies=config)
    stats = await engine.run()
    assert sorted(spider.parsed) == sorted(f"http://t.example/{i}" for i in range(12))
    assert not spider.failures and stats.failed == 0
    snap = stats.extra["proxies"]
    assert snap["http://127.0.0.1:9002"]["failures"] == 0
    assert snap["http://127.0.0.1:9000"]["failures"] >= 1
    assert snap["http://127.0.0.1:9000"]["state"] in ("resting", "probation")
    assert stats.extra["proxy_retries"] >= 2


async def test_retry_budget_is_used_once_across_many_proxy_faults() -> None:
    seen: list[int] = []

    def behaviour(request: Request, proxy: str | None) -> Response | Exception:
        seen.append(request.retries)
        if len(seen) <= 4:  # four proxy failures in a row, then a clean exit
            return TransportError(
                "ClientProxyConnectionError", "x", retryable=True, proxy_fault=True
            )
        return ok(request)

    transport = ScriptedTransport(behaviour)
    spider = PagesSpider(1)
    engine = Engine(
        spider,
        settings(max_retries=1, concurrency=1),
        transport=transport,
        proxies=ProxyPool(proxies(5), kind="static", backoff_base=0.01, backoff_cap=0.01),
    )
    await engine.run()
    assert spider.parsed == ["http://t.example/0"]
    assert seen == [0, 1, 1, 1, 1]  # charged at the first proxy failure only
    assert len({p for _, p in transport.calls}) == 5  # a different proxy each time


async def test_ban_status_benches_the_proxy_and_tries_another() -> None:
    def behaviour(request: Request, proxy: str | None) -> Response | Exception:
        return ok(request, 403 if port_of(proxy) == 9000 else 200)

    transport = ScriptedTransport(behaviour)
    spider = PagesSpider(10)
    config = ProxyConfig("static", tuple(proxies(2)), source="test")
    engine = Engine(spider, settings(concurrency=2), transport=transport, proxies=config)
    stats = await engine.run()
    assert len(spider.parsed) == 10 and not spider.failures
    assert stats.extra["proxies"]["http://127.0.0.1:9000"]["bans"] >= 1


async def test_a_page_forbidden_everywhere_reaches_the_errback() -> None:
    transport = ScriptedTransport(lambda r, p: ok(r, 403))
    spider = PagesSpider(1)
    config = ProxyConfig("static", tuple(proxies(3)), source="test")
    engine = Engine(spider, settings(concurrency=1), transport=transport, proxies=config)
    await engine.run()
    assert len(spider.failures) == 1
    assert spider.failures[0].response is not None and spider.failures[0].response.status == 403
    assert len(transport.calls) == 4  # three proxies tried, then the 403 is the answer


async def test_custom_ban_statuses() -> None:
    transport = ScriptedTransport(lambda r, p: ok(r, 403))
    spider = PagesSpider(1)
    config = ProxyConfig("rotating", tuple(proxies(1)), source="test")
    engine = Engine(spider, settings(ban_statuses=[]), transport=transport, proxies=config)
    stats = await engine.run()
    assert len(transport.calls) == 1  # 403 is not a ban here: no retry
    assert stats.extra["proxies"]["http://127.0.0.1:9000"]["bans"] == 0


async def test_every_proxy_down_stops_with_an_error_and_gives_nothing_up(
    caplog: pytest.LogCaptureFixture,
) -> None:
    def behaviour(request: Request, proxy: str | None) -> Response | Exception:
        return ok(request, 407)  # wrong credentials everywhere

    transport = ScriptedTransport(behaviour)
    spider = PagesSpider(30)
    config = ProxyConfig("static", tuple(proxies(2)), source="test")
    engine = Engine(
        spider,
        settings(proxy_down_timeout=0.3, shutdown_grace=1),
        transport=transport,
        proxies=config,
    )
    stats = await engine.run()
    assert engine.fatal is not None and "every proxy has been down" in engine.fatal
    assert stats.finish_reason == "all proxies down"
    assert stats.failed == 0 and not spider.failures and not spider.parsed
    assert len(engine.frontier) + engine.dispatcher.parked == 30  # all still queued
    assert caplog.text.count("all 2 proxies are down: crawl paused") == 1
    assert "refused the credentials" in caplog.text
    assert SECRET not in caplog.text


async def test_proxy_errors_are_scrubbed_of_credentials() -> None:
    def behaviour(request: Request, proxy: str | None) -> Response | Exception:
        error = TransportError(
            "ClientHttpProxyError", f"502, url={proxy!r}", retryable=False, proxy_fault=False
        )
        error.__cause__ = RuntimeError(f"underlying {proxy}")
        return error

    spider = PagesSpider(1)
    config = ProxyConfig("rotating", tuple(proxies(1)), source="test")
    engine = Engine(spider, settings(), transport=ScriptedTransport(behaviour), proxies=config)
    stats = await engine.run()
    (failure,) = spider.failures
    assert failure.exception is not None
    shown = f"{failure.reason} {failure.exception!r} {failure.exception.__cause__!r}"
    assert SECRET not in shown and "***" in failure.reason
    assert SECRET not in orjson.dumps(stats.to_dict(), option=orjson.OPT_NON_STR_KEYS).decode()


async def test_target_errors_do_not_bench_the_proxy() -> None:
    calls = Counter[str]()

    def behaviour(request: Request, proxy: str | None) -> Response | Exception:
        calls[request.url] += 1
        if calls[request.url] == 1:
            return TransportError("TimeoutError", "timed out", retryable=True)
        return ok(request)

    spider = PagesSpider(5)
    config = ProxyConfig("rotating", tuple(proxies(1)), source="test")
    engine = Engine(spider, settings(), transport=ScriptedTransport(behaviour), proxies=config)
    stats = await engine.run()
    assert len(spider.parsed) == 5
    snap = stats.extra["proxies"]["http://127.0.0.1:9000"]
    assert snap == {"requests": 10, "failures": 0, "bans": 0, "state": "healthy", "inflight": 0}


async def test_pool_with_a_seeded_rng_is_accepted() -> None:
    pool = ProxyPool(proxies(2, creds=False), kind="static", cap=1, rng=random.Random(1))
    spider = PagesSpider(4)
    engine = Engine(
        spider, settings(), transport=ScriptedTransport(lambda r, p: ok(r)), proxies=pool
    )
    await engine.run()
    assert len(spider.parsed) == 4


# ---- proxy bans -----------------------------------------------------------------------------


def banned_body(request: Request, proxy: str | None) -> Response:
    """The first proxy's exit is refused with a 200 page saying so."""
    if proxy is not None and proxy.endswith(":9000"):
        return Response(request.url, 200, {}, b"<html>IP banned</html>", request)
    return ok(request)


class BodySpider(PagesSpider):
    def __init__(self, n: int) -> None:
        super().__init__(n)
        self.bodies_banned = 0

    def parse(self, response: Response) -> Iterator[Any]:
        self.bodies_banned += b"banned" in response.body
        yield from super().parse(response)


class BodyBan:
    """A replacement ProxyBan: this provider says "banned" in a 200 page."""

    def proxy_banned(self, request: Request, response: Response, statuses: frozenset[int]) -> bool:
        return response.status in statuses or b"banned" in response.body


@pytest.mark.parametrize("replaced", [False, True])
async def test_a_custom_proxy_ban_middleware_replaces_the_default(replaced: bool) -> None:
    transport = ScriptedTransport(banned_body)
    spider = BodySpider(6)
    config = ProxyConfig("static", tuple(proxies(2)), source="test")
    mws: dict[Any, Any] = {"ProxyBan": None, BodyBan: 980} if replaced else {}
    engine = Engine(spider, settings(middlewares=mws), transport=transport, proxies=config)
    stats = await engine.run()
    bans = stats.extra["proxies"]["http://127.0.0.1:9000"]["bans"]
    assert len(spider.parsed) == 6
    if replaced:
        # the ban page never reached the spider: each was sent again through :9001
        assert bans >= 1 and not spider.bodies_banned
        assert len(transport.calls) > 6
    else:
        assert bans == 0 and spider.bodies_banned  # a 200 is never a ban for the built-in


async def test_disabling_proxy_ban_leaves_a_403_to_the_spider() -> None:
    transport = ScriptedTransport(lambda r, p: ok(r, 403))
    spider = PagesSpider(1)
    config = ProxyConfig("rotating", tuple(proxies(1)), source="test")
    engine = Engine(
        spider, settings(middlewares={"ProxyBan": None}), transport=transport, proxies=config
    )
    stats = await engine.run()
    assert len(transport.calls) == 1  # not a ban: not retried through another proxy
    assert stats.extra["proxies"]["http://127.0.0.1:9000"]["bans"] == 0
    assert len(spider.failures) == 1 and spider.failures[0].response is not None
