"""The in-memory frontier: the default, and the reference for the others."""

from __future__ import annotations

import bisect
import heapq
import itertools
from collections import deque
from collections.abc import Callable

from pooledcrawl.http.request import Request

__all__ = ["MemoryFrontier"]


class MemoryFrontier:
    """FIFO per priority level, with a set of 64-bit fingerprints for dedup.

    One deque per priority (crawls use few levels) instead of one heap entry per
    request keeps a pending request at the cost of the Request object itself.
    Python's ``hash`` of the canonical URL is the fingerprint: it is 64-bit and
    only has to be stable within this process.
    """

    def __init__(self) -> None:
        self.on_ready: Callable[[], None] = _noop
        self._seen: set[int] = set()
        self._queues: dict[int, deque[Request]] = {}
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
        key = hash(canonical_url)
        if request.method != "GET" or request.body:
            key = hash((canonical_url, request.method, request.body))
        if not request.dont_filter and key in self._seen:
            return False
        # Seen even when dont_filter: a start URL found again later is a duplicate.
        self._seen.add(key)
        self._enqueue(request)
        return True

    def _enqueue(self, request: Request) -> None:
        queue = self._queues.get(request.priority)
        if queue is None:
            queue = self._queues[request.priority] = deque()
            bisect.insort(self._priorities, request.priority)
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
        request = queue.popleft()
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


def _noop() -> None:
    return None
