"""An HTTP cache for developing spiders: store every response on disk, replay it later.

Rerunning a spider while its parsing is being written should not hit the site again,
and should work with the site gone. This is a downloader middleware rather than a
client-side cache such as hishel (httpx only) or aiohttp-client-cache (aiohttp only):
as a middleware it serves every transport, and a hit skips the slot's rate policy, the
proxy pool and the network alike. Like Scrapy's ``HttpCacheMiddleware`` with its
``DummyPolicy``, it is a replay cache, not an RFC 9111 cache: it does not revalidate,
so a page is what it was when stored until it expires.

Off by default, and then left out of the chain, so a crawl without it pays nothing.
"""

from __future__ import annotations

import asyncio
import dataclasses
import hashlib
import os
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import orjson
from multidict import CIMultiDict, CIMultiDictProxy

from pooledcrawl.http.response import Response

if TYPE_CHECKING:
    from pooledcrawl.http.request import Request
    from pooledcrawl.spider import Spider

__all__ = ["CACHE_MODES", "CacheMiss", "CachePolicy", "FilesystemCacheStorage", "HttpCache"]

#: ``normal``: serve fresh entries, fetch and store the rest; ``refresh``: always fetch,
#: and store what comes back; ``offline``: never touch the network, a miss fails
CACHE_MODES = ("normal", "refresh", "offline")


class CacheMiss(Exception):
    """An offline-mode request that the cache does not hold."""


@dataclasses.dataclass(frozen=True, slots=True)
class CachePolicy:
    """What may be served and what is stored: pure, so it is tested with a fake clock."""

    mode: str = "normal"
    #: seconds an entry stays fresh; 0: forever
    expiration: float = 0.0
    #: statuses never stored (a 503 page is not worth replaying)
    ignore_statuses: frozenset[int] = frozenset()

    def serves(self, stored_at: float, now: float) -> bool:
        if self.mode == "refresh":
            return False
        if self.mode == "offline" or self.expiration <= 0:
            return True
        return now - stored_at < self.expiration

    def stores(self, status: int) -> bool:
        return self.mode != "offline" and status not in self.ignore_statuses


@dataclasses.dataclass(frozen=True, slots=True)
class CachedResponse:
    url: str
    status: int
    headers: list[tuple[str, str]]
    body: bytes
    http_version: str
    stored_at: float


def request_fingerprint(request: Request) -> str:
    """Method, URL and body, as Scrapy's default fingerprint; headers are left out, so
    a change of user agent or cookies still replays the same page."""
    digest = hashlib.sha1(usedforsecurity=False)
    digest.update(request.method.encode())
    digest.update(b"\n")
    digest.update(request.url.encode())
    digest.update(b"\n")
    digest.update(request.body or b"")
    return digest.hexdigest()


class FilesystemCacheStorage:
    """One file per request under a two-level fan-out: a JSON header line, then the
    body. Written to a temporary file and renamed into place, so a crash never leaves
    a torn entry that a later run would replay."""

    def __init__(self, root: Path) -> None:
        self.root = root

    def _path(self, fingerprint: str) -> Path:
        return self.root / fingerprint[:2] / fingerprint

    def load(self, fingerprint: str) -> CachedResponse | None:
        try:
            raw = self._path(fingerprint).read_bytes()
        except FileNotFoundError:
            return None
        head, sep, body = raw.partition(b"\n")
        if not sep:
            return None
        try:
            meta = orjson.loads(head)
            return CachedResponse(
                url=meta["url"],
                status=meta["status"],
                headers=[(k, v) for k, v in meta["headers"]],
                body=body,
                http_version=meta["http_version"],
                stored_at=meta["stored_at"],
            )
        except (orjson.JSONDecodeError, KeyError, TypeError, ValueError):
            return None  # written by something else: a miss, not a crash

    def store(self, fingerprint: str, entry: CachedResponse) -> None:
        path = self._path(fingerprint)
        path.parent.mkdir(parents=True, exist_ok=True)
        head = orjson.dumps(
            {
                "url": entry.url,
                "status": entry.status,
                "headers": entry.headers,
                "http_version": entry.http_version,
                "stored_at": entry.stored_at,
            }
        )
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".tmp-")
        try:
            with os.fdopen(fd, "wb") as out:
                out.write(head + b"\n" + entry.body)
            os.replace(tmp, path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise


class HttpCache:
    """The downloader middleware: answers from the cache before the network, stores
    what the network answered. Set ``meta["dont_cache"]`` to bypass it per request;
    a replayed response has ``meta["cached"] = True``."""

    def __init__(
        self,
        storage: FilesystemCacheStorage,
        policy: CachePolicy,
        stats: dict[str, int],
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.storage = storage
        self.policy = policy
        self.stats = stats
        self._clock = clock

    @classmethod
    def from_crawler(cls, crawler: Any) -> HttpCache | None:
        settings = crawler.settings
        if not settings.http_cache.dir:
            return None
        policy = CachePolicy(
            mode=settings.http_cache.mode,
            expiration=settings.http_cache.expiration,
            ignore_statuses=frozenset(settings.http_cache.ignore_http_codes),
        )
        stats = {"hits": 0, "misses": 0, "stored": 0}
        crawler.stats.extra["http_cache"] = stats
        return cls(FilesystemCacheStorage(Path(settings.http_cache.dir)), policy, stats)

    async def process_request(self, request: Request, spider: Spider) -> Response | None:
        if request.meta.get("dont_cache"):
            return None
        entry = None
        if self.policy.mode != "refresh":
            entry = await asyncio.to_thread(self.storage.load, request_fingerprint(request))
        if entry is not None and self.policy.serves(entry.stored_at, self._clock()):
            self.stats["hits"] += 1
            request.meta["cached"] = True
            response = Response(
                entry.url,
                entry.status,
                CIMultiDictProxy(CIMultiDict(entry.headers)),
                entry.body,
                request,
                entry.http_version,
            )
            return response
        self.stats["misses"] += 1
        if self.policy.mode == "offline":
            raise CacheMiss(f"offline cache has no {request.method} {request.url}")
        return None

    async def process_response(
        self, request: Request, response: Response, spider: Spider
    ) -> Response:
        meta = request.meta
        if meta.get("cached") or meta.get("dont_cache") or not self.policy.stores(response.status):
            return response
        entry = CachedResponse(
            url=response.url,
            status=response.status,
            headers=list(response.headers.items()),
            body=response.body,
            http_version=response.http_version,
            stored_at=self._clock(),
        )
        await asyncio.to_thread(self.storage.store, request_fingerprint(request), entry)
        self.stats["stored"] += 1
        return response
