"""The extension protocols: what a custom component implements.

Everything a user plugs in is typed here, in one place:

- :class:`DownloaderMiddleware` and :class:`SpiderMiddleware`: listed in the
  ``middlewares`` setting;
- :class:`Extension`: listed in the ``extensions`` setting; connects to
  :mod:`pooledcrawl.signals`;
- :class:`Crawler`: what ``from_crawler(crawler)`` and ``bind(crawler)`` receive;
- :class:`Bound`: a component (a frontier, or an object handed to the engine's
  ``attached``) that needs the crawl it is part of declares ``bind(crawler)``;
- :class:`Frontier`, :class:`Transport`, :class:`Sink` and :class:`ConcurrencyPolicy`:
  the engine's I/O components and per-domain policy.

Protocols are structural: implement the methods, no base class needed.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Protocol

from pooledcrawl.frontier.base import Frontier
from pooledcrawl.items.base import Sink
from pooledcrawl.middleware.base import DownloaderMiddleware, SpiderMiddleware
from pooledcrawl.throttle.base import ConcurrencyPolicy
from pooledcrawl.transport.base import Transport, TransportError

if TYPE_CHECKING:
    from collections.abc import Callable

    from pooledcrawl.http.request import Request
    from pooledcrawl.http.response import Response
    from pooledcrawl.settings import Settings
    from pooledcrawl.signals import SignalBus
    from pooledcrawl.spider import Spider
    from pooledcrawl.stats import Stats

__all__ = [
    "Bound",
    "ConcurrencyPolicy",
    "Crawler",
    "DownloaderMiddleware",
    "Extension",
    "Frontier",
    "Middleware",
    "Sink",
    "SpiderMiddleware",
    "Transport",
    "TransportError",
]

#: either kind of middleware (one class may implement both)
Middleware = DownloaderMiddleware | SpiderMiddleware


class Crawler(Protocol):
    """The running crawl, as middlewares and extensions see it."""

    settings: Settings
    signals: SignalBus
    stats: Stats
    spider: Spider
    #: the crawl's clock (monotonic seconds)
    clock: Callable[[], float]

    def schedule(self, request: Request, parent: Request | None) -> None:
        """Queue a request (deduplicated and filtered like a spider's)."""

    def request_stop(self, reason: str, *, grace: float | None = None) -> None:
        """End the crawl: no new requests; in-flight ones get ``grace`` seconds."""

    async def fetch_aside(self, request: Request) -> Response:
        """Fetch outside the crawl's slots and stats (robots.txt does), through the
        downloader middlewares but never retried; raises ``TransportError``."""
        ...

    async def flush_items(self) -> None:
        """Write out the items buffered so far (a persistent frontier awaits it
        before it records requests as done, so a crash loses no item)."""

    def wake(self) -> None:
        """Something outside the frontier's ``push`` changed (permits, requests):
        let the dispatcher look again."""

    def demand(self, key: str) -> int:
        """Requests this process has for slot ``key``: in flight plus parked."""
        ...


class Bound(Protocol):
    """A component that needs the crawl it is part of. The engine calls ``bind`` once,
    when it is built (before the crawl runs), on its frontier and on each object
    passed as ``attached``; ``crawler`` is the same object ``from_crawler`` gets."""

    def bind(self, crawler: Crawler) -> None: ...


class Extension(Protocol):
    """Any class; built with ``from_crawler(crawler)`` when it defines one (else with no
    arguments), and returning None from ``from_crawler`` leaves it out."""

    @classmethod
    def from_crawler(cls, crawler: Crawler) -> Any: ...
