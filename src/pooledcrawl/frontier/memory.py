"""The in-memory frontier: the default, and the reference for the others."""

from __future__ import annotations

import bisect
import heapq
import itertools
from collections import deque
from collections.abc import Callable
from typing import Any, cast

from pooledcrawl.frontier.fingerprints import FingerprintSet
from pooledcrawl.http.request import Request, is_plain

__all__ = ["MemoryFrontier"]


# A fingerprint is Python's hash of the canonical URL as an unsigned 64-bit int: it
# only has to be stable within this process. They are kept packed, 8 bytes each
# (see FingerprintSet).
_FINGERPRINT_MASK = (1 << 64) - 1
# The Request fields a compacted entry restores; a Request with any other slot (a
# field added later) is never compacted, so nothing can be lost.
_COMPACTABLE = frozenset(Request.__slots__) == frozenset(
    {
        "_cb_kwargs", "_meta", "attempts", "body", "callback", "depth", "dont_filter",
        "errback", "headers", "method", "priority", "retries", "url",
    }
)  # fmt: skip

#: (callback, depth): what a plain pending request has besides its URL and priority
_Kind = tuple[Any, int]


class MemoryFrontier:
    """FIFO per priority level, with a set of 64-bit fingerprints for dedup.

    One deque per priority (crawls use few levels) instead of one heap entry per
    request. Most pending requests are plain (a GET with only a URL, a callback
    and a depth): those wait as their URL string after a shared ``(callback,
    depth)`` tuple, and become a Request again when popped. That makes a pending
    request cost its URL and two deque slots, plus its dedup entry, instead of
    a whole Request object.
    """

    def __init__(self) -> None:
        self.on_ready: Callable[[], None] = _noop
        self._seen = FingerprintSet()
        self._queues: dict[int, deque[Request | str | _Kind]] = {}
        self._kinds: dict[_Kind, _Kind] = {}  # interned, so each kind is stored once
        self._priorities: list[int] = []  # ascending; the last is served first
        self._delayed: list[tuple[float, int, Request]] = []
        self._seq = itertools.count()
        self._size = 0

    async def open(self) -> None:
        return None

    async def close(self) -> None:
        return None

    async def claim_seeding(self) -> bool:
        return True

    def seeding_done(self) -> None:
        return None

    def push(self, request: Request, canonical_url: str) -> bool:
        key = hash(canonical_url) & _FINGERPRINT_MASK
        if request.method != "GET" or request.body:
            key = hash((canonical_url, request.method, request.body)) & _FINGERPRINT_MASK
        # Seen even when dont_filter: a start URL found again later is a duplicate.
        if not self._seen.add(key) and not request.dont_filter:
            return False
        self._enqueue(request)
        return True

    async def add_seen(self, canonical_url: str) -> bool:
        return self._seen.add(hash(canonical_url) & _FINGERPRINT_MASK)

    def _enqueue(self, request: Request) -> None:
        queue = self._queues.get(request.priority)
        if queue is None:
            queue = self._queues[request.priority] = deque()
            bisect.insort(self._priorities, request.priority)
        if _plain(request):
            kind = (request.callback, request.depth)
            queue.append(self._kinds.setdefault(kind, kind))
            queue.append(request.url)
        else:
            queue.append(request)
        self._size += 1

    def push_later(self, request: Request, not_before: float) -> None:
        heapq.heappush(self._delayed, (not_before, next(self._seq), request))

    def pop(self, now: float) -> Request | None:
        delayed = self._delayed
        while delayed and delayed[0][0] <= now:
            self._enqueue(heapq.heappop(delayed)[2])
        if not self._size:
            return None
        priority = self._priorities[-1]
        queue = self._queues[priority]
        entry = queue.popleft()
        if isinstance(entry, Request):
            request = entry
        else:  # a compacted plain request: its kind, then its URL
            callback, depth = cast(_Kind, entry)
            request = Request(cast(str, queue.popleft()), callback, priority=priority)
            request.depth = depth
        if not queue:
            del self._queues[priority]
            self._priorities.pop()
        self._size -= 1
        return request

    def ack(self, request: Request) -> None:
        return None

    def next_due(self) -> float | None:
        return self._delayed[0][0] if self._delayed else None

    def exhausted(self) -> bool:
        return not self._size and not self._delayed

    def __len__(self) -> int:
        return self._size + len(self._delayed)

    @property
    def seen_count(self) -> int:
        return len(self._seen)


def _plain(request: Request) -> bool:
    """Nothing but URL, callback, priority and depth to remember (see MemoryFrontier)."""
    return _COMPACTABLE and type(request) is Request and is_plain(request)


def _noop() -> None:
    return None
