"""Compact serialization of requests for frontiers that store them outside the process.

A request becomes its URL, callback name, priority and depth, plus a dict of the
fields that differ from a bare GET (:meth:`RequestCodec.extras`). The Redis frontier
stores that as one orjson array; the SQLite frontier keeps the first four in columns
and the dict as orjson. Callbacks and errbacks are stored by name and must be
methods of the spider, because a function cannot be stored and found again in
another process or after a restart.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import orjson

from pooledcrawl.errors import UsageError
from pooledcrawl.http.request import Request, is_plain

if TYPE_CHECKING:
    from pooledcrawl.spider import Spider

__all__ = ["RequestCodec"]


class RequestCodec:
    """Encodes requests to bytes and back, resolving callbacks by name on ``spider``.

    ``store`` names where the requests go, and ``restart`` how to start over, for the
    error messages."""

    def __init__(self, spider: Spider, *, store: str = "a shared frontier", restart: str = ""):
        self._spider = spider
        self._store = store
        self._restart = restart
        self._names: dict[Any, str] = {}  # function -> name, for validated callbacks
        self._methods: dict[str, Any] = {}  # name -> bound method, for stored callbacks

    # ---- encoding ------------------------------------------------------------------
    def name_of(self, func: Any, role: str, url: str) -> str:
        """The spider method ``func`` is, by name; a UsageError if it is not one."""
        spider = self._spider
        if getattr(func, "__self__", None) is spider:
            name = self._names.get(getattr(func, "__func__", None))
            if name is not None:
                return name
        name = getattr(func, "__name__", None)
        if (
            name is None
            or getattr(func, "__self__", None) is not spider
            or getattr(spider, name, None) != func
        ):
            raise UsageError(
                f"the {role} of a request to {url} is {func!r}: requests in {self._store} "
                f"keep their {role}s by name, so {role}s must be methods of {type(spider).__name__}"
            )
        self._names[func.__func__] = name
        return str(name)

    def extras(self, request: Request) -> dict[str, Any]:
        """The fields of ``request`` besides URL, callback, priority and depth that are
        not a bare GET's, under short keys; empty for a bare GET."""
        extras: dict[str, Any] = {}
        if request.method != "GET":
            extras["m"] = request.method
        if request.headers:
            extras["h"] = request.headers
        if request.body:
            extras["b"] = request.body.decode("latin-1")
        if request._meta:
            extras["mt"] = request._meta
        if request._cb_kwargs:
            extras["k"] = request._cb_kwargs
        if request.errback is not None:
            extras["e"] = self.name_of(request.errback, "errback", request.url)
        if request.dont_filter:
            extras["df"] = 1
        if request.attempts or request.retries:
            extras["a"] = [request.attempts, request.retries]
        return extras

    def dumps(self, value: Any, url: str) -> bytes:
        """``value`` (a request's row or extras) as orjson; a UsageError if it can't be."""
        try:
            return orjson.dumps(value)
        except TypeError as exc:
            raise UsageError(
                f"the request to {url} cannot be stored in {self._store}: its meta, "
                f"cb_kwargs or headers hold a value JSON cannot represent ({exc})"
            ) from None

    def encode(self, request: Request) -> bytes:
        """``[url, callback, priority, depth]``, plus the extras when there are any."""
        callback = request.callback
        row: list[Any] = [
            request.url,
            None if callback is None else self.name_of(callback, "callback", request.url),
            request.priority,
            request.depth,
        ]
        extras = self.extras(request)
        if extras:
            row.append(extras)
        return self.dumps(row, request.url)

    def columns(self, request: Request) -> tuple[str, str, int, bytes | None]:
        """``(url, callback name or "", depth, extras as orjson or None)``: a request as
        the SQLite frontier's columns (its priority is in the row's key)."""
        callback = request.callback
        name = "" if callback is None else self.name_of(callback, "callback", request.url)
        if is_plain(request):
            return request.url, name, request.depth, None
        return request.url, name, request.depth, self.dumps(self.extras(request), request.url)

    # ---- decoding ------------------------------------------------------------------
    def decode(self, data: bytes | str) -> Request:
        row = orjson.loads(data)
        url, callback_name, priority, depth = row[:4]
        return self.request(url, callback_name, priority, depth, row[4] if len(row) > 4 else None)

    def request(
        self,
        url: str,
        callback: str | None,
        priority: int,
        depth: int,
        extras: dict[str, Any] | None,
    ) -> Request:
        """The request stored as these parts (``callback`` None or "" for none)."""
        method = self.method(callback) if callback else None
        if not extras:
            request = Request(url, method, priority=priority)
        else:
            body = extras.get("b")
            errback = extras.get("e")
            request = Request(
                url,
                method,
                method=extras.get("m", "GET"),
                headers=extras.get("h"),
                body=None if body is None else body.encode("latin-1"),
                meta=extras.get("mt"),
                cb_kwargs=extras.get("k"),
                priority=priority,
                dont_filter=bool(extras.get("df")),
                errback=None if errback is None else self.method(errback),
            )
            request.attempts, request.retries = extras.get("a", (0, 0))
        request.depth = depth
        return request

    def method(self, name: str) -> Any:
        """The spider's method ``name``; a UsageError if the spider has none."""
        method = self._methods.get(name)
        if method is None:
            method = getattr(self._spider, name, None)
            if method is None or not callable(method):
                raise UsageError(
                    f"a request stored in {self._store} names the callback {name!r}, which "
                    f"{type(self._spider).__name__} does not have (was the spider changed "
                    f"since the job started?{self._restart})"
                )
            self._methods[name] = method
        return method
