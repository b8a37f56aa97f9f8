"""The frontier interface: where pending requests wait, and where dedup happens."""

from __future__ import annotations

from collections.abc import Callable
from typing import Protocol

from pooledcrawl.http.request import Request

__all__ = ["Frontier"]


class Frontier(Protocol):
    """Pending requests, deduplicated by canonical URL, in priority order.

    ``pop`` is synchronous so the engine's hot path never awaits a backend that
    is in memory; a backend on disk or on Redis keeps a window of requests in
    memory, refills it in the background, and calls ``on_ready`` when it has
    more. Popped requests are *leased* until ``ack``; a backend that persists
    hands leases that were never acknowledged out again after a crash.
    """

    on_ready: Callable[[], None]
    """Set by the engine: call it when requests arrive from outside ``push``."""

    async def open(self) -> None: ...

    async def close(self) -> None: ...

    async def claim_seeding(self) -> bool:
        """Whether this process should enqueue the spider's start requests. A shared
        frontier says yes to one worker of a job only."""
        ...

    def seeding_done(self) -> None:
        """The start requests are all pushed."""
        ...

    def push(self, request: Request, canonical_url: str) -> bool:
        """Queue ``request`` unless its fingerprint was seen; False for a duplicate."""
        ...

    async def add_seen(self, canonical_url: str) -> bool:
        """Record a GET URL that a redirect led to, as ``push`` would; False when it was
        seen already, so the page is (or will be) fetched under that URL anyway."""
        ...

    def push_later(self, request: Request, not_before: float) -> None:
        """Queue a retry, not deduplicated, due at ``not_before`` (monotonic seconds)."""
        ...

    def pop(self, now: float) -> Request | None:
        """The highest-priority request that is due, or None."""
        ...

    def ack(self, request: Request) -> None:
        """``request`` is done: its callback's items and requests are stored."""
        ...

    def next_due(self) -> float | None:
        """When the earliest delayed request falls due, if any."""
        ...

    def exhausted(self) -> bool:
        """Nothing pending and nothing delayed, here or (for shared backends) anywhere."""
        ...

    def __len__(self) -> int: ...
