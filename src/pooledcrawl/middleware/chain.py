"""The middleware chain: per-hook lists built once, so an unused hook costs nothing."""

from __future__ import annotations

import inspect
from collections.abc import AsyncIterable, AsyncIterator, Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from pooledcrawl.components import build_components, load_object, ordered_entries
from pooledcrawl.errors import UsageError
from pooledcrawl.http.request import Request
from pooledcrawl.http.response import Response
from pooledcrawl.middleware.builtin import (
    BlockDetection,
    DefaultHeaders,
    OffsiteDepth,
    ProxyBan,
    Retry,
    UserAgent,
)
from pooledcrawl.middleware.httpcache import HttpCache
from pooledcrawl.middleware.robots import RobotsTxt

if TYPE_CHECKING:
    from pooledcrawl.settings import Settings
    from pooledcrawl.spider import Spider

__all__ = ["BASE_MIDDLEWARES", "BUILTIN_MIDDLEWARES", "MiddlewareChain", "checked_response"]

#: built-in middlewares on by default: short name -> order (lower runs first on the way
#: out to the network, last on the way back); docs/extending.md lists them.
#: RobotsTxt and OffsiteDepth come first: what they drop never reaches the others.
#: DefaultHeaders before UserAgent: a User-Agent among the default headers wins.
#: HttpCache sits just outside Retry: it stores only outcomes Retry let through, so a
#: replayed 503 or 429 can never loop through the retry budget.
#: BlockDetection is innermost: a CAPTCHA page is retried on a fresh session before
#: the cache could store it or the spider parse it. ProxyBan judges a response
#: through a proxy before any of them sees it.
BASE_MIDDLEWARES: Mapping[str, int] = {
    "RobotsTxt": 50,
    "OffsiteDepth": 100,
    "DefaultHeaders": 400,
    "UserAgent": 500,
    "HttpCache": 850,
    "Retry": 900,
    "BlockDetection": 950,
    "ProxyBan": 980,
}
#: every built-in middleware by short name
BUILTIN_MIDDLEWARES: Mapping[str, Any] = {
    "RobotsTxt": RobotsTxt,
    "OffsiteDepth": OffsiteDepth,
    "DefaultHeaders": DefaultHeaders,
    "UserAgent": UserAgent,
    "HttpCache": HttpCache,
    "Retry": Retry,
    "BlockDetection": BlockDetection,
    "ProxyBan": ProxyBan,
}

_ASYNC_HOOKS = ("process_request", "process_response", "process_exception")
_GENERATOR_HOOKS = ("process_start", "process_spider_output")
#: plain functions: per request (process_schedule, proxy_banned) or once, when the
#: engine is built (the rest)
_SYNC_HOOKS = (
    "process_schedule",
    "proxy_banned",
    "process_default_headers",
    "wrap_frontier",
    "wrap_policies",
)


class MiddlewareChain:
    """Runs the hooks of ``middlewares`` in order (requests, start) or in reverse
    (responses, exceptions, callback outputs), as Scrapy does."""

    def __init__(self, middlewares: Sequence[Any]) -> None:
        self.middlewares = list(middlewares)
        for mw in self.middlewares:
            _check(mw)
        forward, backward = self.middlewares, self.middlewares[::-1]
        self._requests = [m.process_request for m in forward if _has(m, "process_request")]
        #: in the order they run; the engine iterates it itself (one coroutine less
        #: per response than process_response())
        self.response_hooks = [m.process_response for m in backward if _has(m, "process_response")]
        self._responses = self.response_hooks
        self._exceptions = [m.process_exception for m in backward if _has(m, "process_exception")]
        self._starts = [m.process_start for m in forward if _has(m, "process_start")]
        self._outputs = [
            m.process_spider_output for m in backward if _has(m, "process_spider_output")
        ]
        #: sync: runs for every request about to be queued, its URL already canonical
        self.schedule_hooks = [m.process_schedule for m in forward if _has(m, "process_schedule")]
        #: sync, for each response through a proxy: is it a ban of that proxy?
        self.ban_hooks: list[Callable[[Request, Response, frozenset[int]], bool]] = [
            m.proxy_banned for m in forward if _has(m, "proxy_banned")
        ]
        #: once, when the engine is built: each transport's default headers, the
        #: frontier the dispatcher pops from, and each slot's policy
        self.header_hooks = [
            m.process_default_headers for m in forward if _has(m, "process_default_headers")
        ]
        self.frontier_hooks = [m.wrap_frontier for m in forward if _has(m, "wrap_frontier")]
        self.policy_hooks = [m.wrap_policies for m in forward if _has(m, "wrap_policies")]
        #: which hooks anyone implements: the engine skips the others entirely
        self.on_request = bool(self._requests)
        self.on_response = bool(self._responses)
        self.on_exception = bool(self._exceptions)
        self.on_start = bool(self._starts)
        self.on_output = bool(self._outputs)

    @classmethod
    def from_crawler(cls, crawler: Any) -> MiddlewareChain:
        """The chain the ``middlewares`` setting describes, built-ins included."""
        entries = ordered_entries(BASE_MIDDLEWARES, crawler.settings.middlewares)
        return cls(build_components(entries, crawler, "middleware", BUILTIN_MIDDLEWARES))

    @classmethod
    def for_default_headers(cls, crawler: Any) -> MiddlewareChain:
        """The chain of the ``middlewares`` setting's entries that shape the default
        headers (``process_default_headers``), for what fetches pages without a crawl
        (``pooledcrawl fetch``, ``parse``, ``shell``, ``probe``): the others are not
        built, so their ``from_crawler`` never meets a crawler with no engine behind it."""
        entries = ordered_entries(BASE_MIDDLEWARES, crawler.settings.middlewares)
        resolved = [
            (BUILTIN_MIDDLEWARES.get(e) or load_object(e, "middleware"))
            if isinstance(e, str)
            else e
            for e in entries
        ]
        shaping = [e for e in resolved if _has(e, "process_default_headers")]
        return cls(build_components(shaping, crawler, "middleware", BUILTIN_MIDDLEWARES))

    async def process_request(self, request: Request, spider: Spider) -> Request | Response | None:
        for hook in self._requests:
            result = await hook(request, spider)
            if result is not None:
                return _checked(hook, result)
        return None

    async def process_response(
        self, request: Request, response: Response, spider: Spider
    ) -> Request | Response:
        for hook in self._responses:
            result = await hook(request, response, spider)
            if result is None:
                continue
            if isinstance(result, Request):
                return result
            if not isinstance(result, Response):
                _checked(hook, result)  # raises: neither a Request nor a Response
            response = result
        return response

    async def process_exception(
        self, request: Request, exception: BaseException, spider: Spider
    ) -> Request | Response | None:
        for hook in self._exceptions:
            result = await hook(request, exception, spider)
            if result is not None:
                return _checked(hook, result)
        return None

    def default_headers(self, settings: Settings, spider: Spider) -> dict[str, str]:
        """The headers a transport built with ``settings`` sends by default."""
        headers: dict[str, str] = {}
        for hook in self.header_hooks:
            headers = hook(headers, settings, spider)
        return headers

    def proxy_banned(self, request: Request, response: Response, statuses: frozenset[int]) -> bool:
        """Whether a response through a proxy means the proxy is banned."""
        return any(hook(request, response, statuses) for hook in self.ban_hooks)

    def process_start(self, start: AsyncIterator[Any], spider: Spider) -> AsyncIterator[Any]:
        for hook in self._starts:
            start = hook(start, spider)
        return start

    def process_spider_output(
        self, response: Any, result: AsyncIterable[Any], spider: Spider
    ) -> AsyncIterable[Any]:
        for hook in self._outputs:
            result = hook(response, result, spider)
        return result

    def __repr__(self) -> str:
        return f"<MiddlewareChain {[type(m).__name__ for m in self.middlewares]}>"


def _has(mw: Any, hook: str) -> bool:
    return callable(getattr(mw, hook, None))


def _check(mw: Any) -> None:
    name = type(mw).__name__
    every = (*_ASYNC_HOOKS, *_GENERATOR_HOOKS, *_SYNC_HOOKS)
    hooks = [h for h in every if _has(mw, h)]
    if not hooks:
        raise UsageError(f"middleware {name} defines none of {', '.join(every)}")
    for hook in hooks:
        method = getattr(mw, hook)
        if hook in _ASYNC_HOOKS and not inspect.iscoroutinefunction(method):
            raise UsageError(f"middleware {name}.{hook} must be async (async def)")
        if hook in _GENERATOR_HOOKS and not inspect.isasyncgenfunction(method):
            raise UsageError(
                f"middleware {name}.{hook} must be an async generator (async def ... yield)"
            )
        if hook in _SYNC_HOOKS and inspect.iscoroutinefunction(method):
            raise UsageError(f"middleware {name}.{hook} must be a plain function (def)")


def checked_response(hook: Any, result: Any) -> Response:
    """``result`` if it is a Response; else a TypeError naming the hook."""
    if isinstance(result, Response):
        return result
    _checked(hook, result)  # raises: neither a Request nor a Response
    raise AssertionError  # pragma: no cover - _checked raised


def _checked(hook: Any, result: Any) -> Request | Response:
    if isinstance(result, Request | Response):
        return result
    raise TypeError(
        f"{getattr(hook, '__qualname__', hook)} returned {type(result).__name__}; "
        "expected None, a Request or a Response"
    )
