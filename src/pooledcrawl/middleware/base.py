"""The middleware protocols (typing only: a middleware implements any subset)."""

from __future__ import annotations

from collections.abc import AsyncIterable, AsyncIterator
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from pooledcrawl.http.request import Request
    from pooledcrawl.http.response import Response
    from pooledcrawl.spider import Spider

__all__ = ["DownloaderMiddleware", "SpiderMiddleware"]


class DownloaderMiddleware(Protocol):
    """Hooks around a download, with Scrapy's meaning of what they return.

    ``process_request`` runs in the listed order before the fetch: None goes on to the
    next middleware and then the network; a Response skips the network (and the later
    ``process_request`` hooks) and goes through every ``process_response``; a Request
    is scheduled instead of this one (the same object goes back to the frontier as a
    retry, a new one through the duplicate filter).

    ``process_response`` runs in reverse order on each response, after the built-in
    retry and proxy-ban handling: None or the response passes it on, another Response
    replaces it, a Request is scheduled instead.

    ``process_exception`` runs in reverse order when a fetch failed for good (retries
    spent): None passes it on (the errback gets it), a Response recovers, a Request is
    scheduled instead.
    """

    async def process_request(
        self, request: Request, spider: Spider
    ) -> Request | Response | None: ...

    async def process_response(
        self, request: Request, response: Response, spider: Spider
    ) -> Request | Response | None: ...

    async def process_exception(
        self, request: Request, exception: BaseException, spider: Spider
    ) -> Request | Response | None: ...


class SpiderMiddleware(Protocol):
    """Hooks around the spider: its start requests, each callback's outputs, and each
    request about to be queued.

    ``process_start`` and ``process_spider_output`` are async generators over an async
    iterable; they may drop, change or add outputs (``response`` is a Failure for an
    errback's outputs). A crawl whose middlewares define neither iterates the spider
    directly.

    ``process_schedule`` is plain (no await: it runs for every link found) and sees
    every request about to be queued, whoever scheduled it, with its canonical URL and
    its depth set: None lets it through, a string drops it and says why (the
    ``request_dropped`` signal's ``reason``). The built-in ``OffsiteDepth`` is one.
    """

    def process_schedule(
        self, request: Request, canonical_url: str, spider: Spider
    ) -> str | None: ...

    def process_start(self, start: AsyncIterator[Any], spider: Spider) -> AsyncIterator[Any]: ...

    def process_spider_output(
        self, response: Response, result: AsyncIterable[Any], spider: Spider
    ) -> AsyncIterator[Any]: ...
