"""What a response leads to: its callback or errback, and each output scheduled
(a request) or stored (an item)."""

from __future__ import annotations

import types
from collections.abc import Callable
from typing import Any

from pooledcrawl.engine.callbacks import outputs_of
from pooledcrawl.engine.failure import Failure
from pooledcrawl.errors import CloseSpider, UsageError
from pooledcrawl.frontier.base import Frontier
from pooledcrawl.http.request import Request
from pooledcrawl.http.response import Response
from pooledcrawl.http.url import InvalidURL, canonical_or_raise
from pooledcrawl.items.base import is_item
from pooledcrawl.items.processor import ItemProcessor
from pooledcrawl.middleware.chain import MiddlewareChain
from pooledcrawl.settings import Settings
from pooledcrawl.spider import Spider
from pooledcrawl.stats import ErrorLog, Stats

__all__ = ["ResponseHandler"]


class ResponseHandler:
    """The parse half of the engine: each response to its callback or errback, and
    each output to the frontier (a request) or the sinks (an item). Runs once per
    response, from the engine's workers."""

    def __init__(
        self, engine: Any, schedule: Callable[[Request, Request | None], None], errors: ErrorLog
    ) -> None:
        self.spider: Spider = engine.spider
        self.settings: Settings = engine.settings
        self.stats: Stats = engine.stats
        self.frontier: Frontier = engine.frontier
        self.items: ItemProcessor = engine.items
        self.middleware: MiddlewareChain = engine.middleware
        self._clock: Callable[[], float] = engine.clock
        self._stop: Callable[[str], None] = engine.request_stop
        self._schedule = schedule
        self._errors = errors
        self._drop_tracking = self.settings.drop_tracking_params
        self._handle_statuses: frozenset[int] = frozenset(
            getattr(self.spider, "handle_httpstatus_list", ())
        )

    async def handle(self, request: Request, response: Response) -> None:
        """A response for the spider: to the errback if its status is an error the
        spider does not handle, else to its callback (unless it is a duplicate reached
        through a redirect, or past ``max_pages``)."""
        status = response.status
        if (
            (status < 200 or status >= 300)
            and status not in self._handle_statuses
            and not (request.get_meta("handle_httpstatus_all"))
        ):
            if request.errback is not None:
                failure = Failure(request, None, response, request.attempts + 1)
                await self.run_callback(request, request.errback, failure)
            return
        if response.url != request.url and not await self._redirect_is_new(request, response):
            self.stats.duplicates_filtered += 1
            return
        max_pages = self.settings.max_pages
        if max_pages is not None and self.stats.pages >= max_pages:
            # stopping: responses still in flight are not parsed past the limit, and
            # go back unparsed, so a resumed job (--jobdir) still has them
            self.frontier.push_later(request, self._clock())
            return
        self.stats.pages += 1
        if max_pages is not None and self.stats.pages >= max_pages:
            self._stop("max_pages reached")
        callback = request.callback or self.spider.parse
        await self.run_callback(request, callback, response)

    async def _redirect_is_new(self, request: Request, response: Response) -> bool:
        """Whether a page reached through a redirect is one the crawl has not queued
        under its own URL: if it has, that request parses it (as Scrapy's dupefilter
        drops the redirected request)."""
        if request.dont_filter or request.method != "GET":
            return True
        try:
            canonical = canonical_or_raise(response.url, drop_tracking=self._drop_tracking)
            if canonical == canonical_or_raise(request.url, drop_tracking=self._drop_tracking):
                return True  # the same URL, only spelled differently by the client
        except InvalidURL:
            return True
        return await self.frontier.add_seen(canonical)

    async def run_callback(self, request: Request, callback: Callable[..., Any], arg: Any) -> None:
        items: list[Any] = []
        kwargs = request._cb_kwargs or {}
        try:
            result = callback(arg, **kwargs)
            if self.middleware.on_output:
                stream = self.middleware.process_spider_output(arg, outputs_of(result), self.spider)
                async for output in stream:
                    self._take_output(output, request, items)
            elif type(result) is types.GeneratorType:
                # the usual callback: a plain generator, iterated without an async wrapper
                for output in result:
                    self._take_output(output, request, items)
            else:
                async for output in outputs_of(result):
                    self._take_output(output, request, items)
        except CloseSpider as exc:
            self._stop(f"closed by spider: {exc.reason}")
        except UsageError:
            raise  # e.g. a callback a persistent frontier cannot store: stop, exit 2
        except Exception as exc:
            name = getattr(callback, "__name__", "callback")
            self._errors.record(f"{type(self.spider).__name__}.{name}", exc)
        if items and not await self.items.process(items):
            self._stop("max_items reached")

    def _take_output(self, output: Any, request: Request, items: list[Any]) -> None:
        if isinstance(output, Request):
            self._schedule(output, request)
        elif is_item(output):
            items.append(output)
        elif output is not None:
            self.stats.errors["UnsupportedOutput"] += 1
