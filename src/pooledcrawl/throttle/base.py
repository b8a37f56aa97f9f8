"""The concurrency-policy interface: how much each slot (domain) may take at once."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, Protocol

__all__ = ["ConcurrencyPolicy", "PolicyFactory"]


class ConcurrencyPolicy(Protocol):
    """Pure policy for one slot, fed events and a clock; never sleeps, never does I/O.

    It answers two questions: how many requests may be in flight (``limit``) and
    when the next one may be sent (``ready_at``). Times are the engine's clock
    (``time.monotonic`` in production, a fake clock in tests).
    """

    def limit(self) -> int: ...

    def ready_at(self) -> float:
        """Earliest time the next request may go; 0.0 means no pacing."""
        ...

    def on_send(self, now: float) -> None: ...

    def on_response(
        self, now: float, status: int, latency: float, headers: Mapping[str, str]
    ) -> None: ...

    def on_error(self, now: float, latency: float) -> None: ...

    def snapshot(self) -> dict[str, Any]:
        """Current state for stats: at least ``concurrency`` and ``rate`` (None if unpaced)."""
        ...


#: Builds the policy for a new slot, given the slot key (e.g. ``"example.com"``).
PolicyFactory = Callable[[str], ConcurrencyPolicy]
