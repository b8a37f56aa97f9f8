"""The Request model: what the frontier stores and the engine fetches."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

__all__ = ["Request", "is_plain"]

Callback = Callable[..., Any]


class Request:
    """One HTTP request to make, and what to do with its response.

    Slotted and lazily filled: a frontier may hold millions of these, so optional
    parts (headers, meta, cb_kwargs) stay ``None`` until someone asks for them.
    """

    __slots__ = (
        "_cb_kwargs",
        "_meta",
        "attempts",
        "body",
        "callback",
        "depth",
        "dont_filter",
        "errback",
        "headers",
        "method",
        "priority",
        "retries",
        "url",
    )

    def __init__(
        self,
        url: str,
        callback: Callback | None = None,
        *,
        method: str = "GET",
        headers: dict[str, str] | None = None,
        body: bytes | str | None = None,
        meta: dict[str, Any] | None = None,
        cb_kwargs: dict[str, Any] | None = None,
        priority: int = 0,
        dont_filter: bool = False,
        errback: Callback | None = None,
    ) -> None:
        if not isinstance(url, str):
            raise TypeError(f"Request url must be str, not {type(url).__name__}")
        self.url = url
        self.callback = callback
        # "GET" as given: no new string per request (a frontier may hold millions)
        self.method = method if method == "GET" else method.upper()
        self.headers = headers
        self.body = body.encode("utf-8") if isinstance(body, str) else body
        self._meta = meta
        self._cb_kwargs = cb_kwargs
        self.priority = priority
        self.dont_filter = dont_filter
        self.errback = errback
        self.depth = 0
        #: fetch attempts that failed so far (0 for a fresh request)
        self.attempts = 0
        #: retries charged to the retry budget (429s and stale connections are free)
        self.retries = 0

    @property
    def meta(self) -> dict[str, Any]:
        if self._meta is None:
            self._meta = {}
        return self._meta

    @property
    def cb_kwargs(self) -> dict[str, Any]:
        if self._cb_kwargs is None:
            self._cb_kwargs = {}
        return self._cb_kwargs

    def get_meta(self, key: str, default: Any = None) -> Any:
        """Read ``meta[key]`` without creating an empty meta dict."""
        return default if self._meta is None else self._meta.get(key, default)

    def replace(self, **changes: Any) -> Request:
        """A copy with some fields changed, as in Scrapy."""
        fields: dict[str, Any] = {
            "url": self.url,
            "callback": self.callback,
            "method": self.method,
            "headers": None if self.headers is None else dict(self.headers),
            "body": self.body,
            "meta": None if self._meta is None else dict(self._meta),
            "cb_kwargs": None if self._cb_kwargs is None else dict(self._cb_kwargs),
            "priority": self.priority,
            "dont_filter": self.dont_filter,
            "errback": self.errback,
        }
        fields.update(changes)
        new = Request(**fields)
        new.depth = self.depth
        return new

    def __repr__(self) -> str:
        return f"<Request {self.method} {self.url}>"


def is_plain(request: Request) -> bool:
    """Whether ``request`` is a bare GET: nothing to remember but its URL, callback,
    priority and depth. Frontiers store most requests so, in a compact form."""
    return (
        request.method == "GET"
        and request.body is None
        and request.headers is None
        and not request._meta
        and not request._cb_kwargs
        and request.errback is None
        and not request.dont_filter
        and not request.attempts
        and not request.retries
    )
