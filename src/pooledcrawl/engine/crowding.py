"""How many requests a host may have in flight while many hosts have work.

In a broad crawl the global ``concurrency`` is filled by host diversity alone: with
at least as many hosts waiting as there are workers, a second request to a host in
flight buys no throughput (another host's request would have used the worker), and
costs a connection to open: DNS from cache, a socket, a TCP handshake, aiohttp's
connection setup, about as much CPU as the exchange itself on a fast network. So
while the crawl is *crowded* each host is held to ``cap`` requests in flight (one:
its kept-alive connection, reused back to back), and the hosts beyond the workers
wait their turn. When fewer hosts have work (a single-site crawl, the tail of a
broad one) the cap lifts and each host goes up to its own limit again, so no
worker stays idle for it.

Crowded from ``workers`` hosts with work on, and until they drop below half of
that: a host finishing and the next one starting would otherwise flip the state
on every page, letting second connections through in each gap.
"""

from __future__ import annotations

import sys

__all__ = ["CrowdCap"]

#: no cap: above any in-flight count
UNCAPPED = sys.maxsize


class CrowdCap:
    """The per-host in-flight cap for the number of hosts with work. Pure: the
    dispatcher tells it how many slots have requests in flight or parked."""

    __slots__ = ("_cap", "_crowded", "_off_below", "_on_at", "lifted")

    def __init__(self, workers: int, cap: int | None) -> None:
        """``workers``: the global concurrency; ``cap``: in flight per host while
        crowded (None: never capped)."""
        if cap is not None and cap < 1:
            raise ValueError(f"cap must be >= 1, got {cap}")
        if cap is None or workers < 1:
            self._cap = self._on_at = UNCAPPED  # never crowded
        else:
            self._cap, self._on_at = cap, workers
        self._off_below = max(workers // 2, 1)
        self._crowded = False
        #: set when the cap lifts: the caller requeues the hosts it held (and clears it)
        self.lifted = False

    @property
    def crowded(self) -> bool:
        return self._crowded

    def limit(self, busy: int) -> int:
        """In flight a host may have now, with ``busy`` hosts (slots) having work."""
        if self._crowded:
            if busy < self._off_below:
                self._crowded = False
                self.lifted = True
                return UNCAPPED
            return self._cap
        if busy >= self._on_at:
            self._crowded = True
            return self._cap
        return UNCAPPED
