"""Compact serialization of requests for frontiers that store them outside the process.

A request becomes one orjson array. Callbacks and errbacks are stored by name and
must be methods of the spider, because a function cannot be stored and found
again in another process or after a restart.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import orjson

from pooledcrawl.errors import UsageError
from pooledcrawl.http.request import Request

if TYPE_CHECKING:
    from pooledcrawl.spider import Spider

__all__ = ["RequestCodec"]


class RequestCodec:
    """Encodes requests to bytes and back, resolving callbacks by name on ``spider``."""

    def __init__(self, spider: Spider) -> None:
        self._spider = spider

    def _name_of(self, func: Any, role: str, url: str) -> str | None:
        if func is None:
            return None
        name = getattr(func, "__name__", None)
        if (
            name is None
            or getattr(func, "__self__", None) is not self._spider
            or getattr(self._spider, name, None) != func
        ):
            raise UsageError(
                f"the {role} of a request to {url} is {func!r}: a persistent frontier can only "
                f"store {role}s that are methods of the spider"
            )
        return str(name)

    def encode(self, request: Request) -> bytes:
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
            extras["e"] = self._name_of(request.errback, "errback", request.url)
        if request.dont_filter:
            extras["df"] = 1
        if request.attempts or request.retries:
            extras["a"] = [request.attempts, request.retries]
        row: list[Any] = [
            request.url,
            self._name_of(request.callback, "callback", request.url),
            request.priority,
            request.depth,
        ]
        if extras:
            row.append(extras)
        try:
            return orjson.dumps(row)
        except TypeError as exc:
            raise UsageError(
                f"request to {request.url} cannot be stored: meta or cb_kwargs hold a value "
                f"JSON cannot represent ({exc})"
            ) from None

    def decode(self, data: bytes | str) -> Request:
        row = orjson.loads(data)
        url, callback_name, priority, depth = row[:4]
        extras: dict[str, Any] = row[4] if len(row) > 4 else {}
        body = extras.get("b")
        errback_name = extras.get("e")
        request = Request(
            url,
            self._resolve(callback_name),
            method=extras.get("m", "GET"),
            headers=extras.get("h"),
            body=body.encode("latin-1") if body is not None else None,
            meta=extras.get("mt"),
            cb_kwargs=extras.get("k"),
            priority=priority,
            dont_filter=bool(extras.get("df")),
            errback=self._resolve(errback_name),
        )
        request.depth = depth
        request.attempts, request.retries = extras.get("a", (0, 0))
        return request

    def _resolve(self, name: str | None) -> Any:
        if name is None:
            return None
        method = getattr(self._spider, name, None)
        if method is None or not callable(method):
            raise UsageError(
                f"stored request names callback {name!r}, which {type(self._spider).__name__} "
                f"does not have (was the spider changed since the job started?)"
            )
        return method
