"""A custom transport, frontier and concurrency policy, named in settings."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from pooledcrawl import Engine, Request, Response, Settings, Spider, UsageError
from pooledcrawl.frontier.memory import MemoryFrontier
from pooledcrawl.throttle.fixed import FixedPolicy


class OfflineTransport:
    """Serves a three-page site from memory: nothing touches the network."""

    fetched: list[str] = []

    def __init__(self, settings: Settings) -> None:
        self.agent = settings.user_agent

    async def fetch(self, request: Request, proxy: str | None = None) -> Response:
        OfflineTransport.fetched.append(request.url)
        n = int(request.url.rsplit("/", 1)[1])
        body = f'<a href="/{n + 1}">next</a>' if n < 2 else "<p>end</p>"
        return Response(request.url, 200, {"Content-Type": "text/html"}, body.encode(), request)

    async def close(self) -> None: ...


class CountingFrontier(MemoryFrontier):
    built = 0

    @classmethod
    def from_settings(cls, settings: Settings) -> CountingFrontier:
        cls.built += 1
        return cls()


class OneAtATime(FixedPolicy):
    per_domain: list[int] = []

    def __init__(self, settings: Settings) -> None:
        super().__init__(1)
        OneAtATime.per_domain.append(1)


class Chain(Spider):
    start_urls = ["http://offline.test/0"]

    def parse(self, response: Response) -> Iterator[Any]:
        yield {"url": response.url}
        yield from response.follow_all(css="a")


async def test_named_transport_frontier_and_policy_are_used() -> None:
    settings = Settings(
        transport_class=f"{__name__}.OfflineTransport",
        frontier_class=CountingFrontier,
        policy_class=OneAtATime,
        concurrency=4,
    )
    engine = Engine(Chain(), settings)
    assert isinstance(engine.transport, OfflineTransport)
    assert isinstance(engine.frontier, CountingFrontier) and CountingFrontier.built == 1
    stats = await engine.run()
    assert OfflineTransport.fetched == [f"http://offline.test/{i}" for i in range(3)]
    assert stats.pages == 3 and stats.items == 3
    assert stats.max_inflight == 1  # the policy's limit, for the one domain
    assert len(OneAtATime.per_domain) >= 2  # one checked up front, then one per domain


@pytest.mark.parametrize(
    ("key", "value", "message"),
    [
        ("transport_class", "nowhere.T", "cannot import 'nowhere'"),
        ("frontier_class", dict, r"frontier_class dict: has no push\(\), push_later\(\)"),
        ("policy_class", 3, "expected a class or a dotted path"),
    ],
)
def test_bad_component_settings_are_usage_errors(key: str, value: Any, message: str) -> None:
    with pytest.raises(UsageError, match=message):
        Engine(Chain(), Settings.layered(("test", {key: value})))
