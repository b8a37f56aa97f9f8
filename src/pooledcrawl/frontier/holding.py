"""A frontier in front of another that holds requests back until a background task
(a robots.txt fetch, a DNS lookup) has decided where they go.

The robots.txt filter and ``politeness_key=ip`` routing are both this shape: the
dispatcher reads through them, and they pass the rest of the Frontier protocol on.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import deque
from collections.abc import Awaitable, Callable
from typing import Any

from pooledcrawl.frontier.base import Frontier
from pooledcrawl.http.request import Request

__all__ = ["HoldingFrontier"]


def _noop() -> None:
    return None


class HoldingFrontier:
    """Passes the Frontier protocol to ``inner``. A subclass takes requests in
    :meth:`_take` and may hold some back (counted in ``_held``), then puts them in
    ``_ready`` and calls ``_on_ready``. Held requests and running tasks keep the crawl
    from being exhausted; :meth:`close` cancels the tasks."""

    def __init__(self, inner: Frontier) -> None:
        self._inner = inner
        self._ready: deque[Request] = deque()
        self._held = 0  # requests held back, and those in _ready
        self._tasks: set[asyncio.Task[None]] = set()
        self._on_ready: Callable[[], None] = _noop

    # ---- for subclasses ----------------------------------------------------------------
    def _take(self, now: float) -> Request | None:
        """The next request that may go now, holding back those that may not."""
        return self._inner.pop(now)

    def _spawn(self, name: str, work: Callable[..., Awaitable[None]], *args: Any) -> None:
        """Run ``work(*args)`` in the background; see :meth:`_run`."""
        task = asyncio.get_running_loop().create_task(self._run(work, *args), name=name)
        self._tasks.add(task)

    async def _run(self, work: Callable[..., Awaitable[None]], *args: Any) -> None:
        try:
            await work(*args)
        finally:
            # in the same step as the wake-up ``work`` gave, not in a done-callback
            # after it: a dispatcher woken then must see the task finished, or it
            # may wait for nothing
            task = asyncio.current_task()
            if task is not None:
                self._tasks.discard(task)

    # ---- wiring ------------------------------------------------------------------------
    @property
    def on_ready(self) -> Callable[[], None]:
        return self._on_ready

    @on_ready.setter
    def on_ready(self, callback: Callable[[], None]) -> None:
        self._on_ready = callback
        self._inner.on_ready = callback

    async def close(self) -> None:
        tasks = list(self._tasks)
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._tasks.clear()  # a task cancelled before it started never ran its finally

    # ---- the Frontier protocol, as the dispatcher uses it ------------------------------
    async def open(self) -> None:
        await self._inner.open()

    async def claim_seeding(self) -> bool:
        return await self._inner.claim_seeding()

    def seeding_done(self) -> None:
        self._inner.seeding_done()

    def push(self, request: Request, canonical_url: str) -> bool:
        return self._inner.push(request, canonical_url)

    async def add_seen(self, canonical_url: str) -> bool:
        return await self._inner.add_seen(canonical_url)

    def push_later(self, request: Request, not_before: float) -> None:
        self._inner.push_later(request, not_before)

    def ack(self, request: Request) -> None:
        self._inner.ack(request)

    def pop(self, now: float) -> Request | None:
        if self._ready:
            self._held -= 1
            return self._ready.popleft()
        return self._take(now)

    def next_due(self) -> float | None:
        return self._inner.next_due()

    def exhausted(self) -> bool:
        return not self._held and not self._tasks and self._inner.exhausted()

    def __len__(self) -> int:
        return len(self._inner) + self._held
