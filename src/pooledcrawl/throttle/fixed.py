"""A fixed per-slot cap: what ``autothrottle = false`` gives."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

__all__ = ["FixedPolicy"]


class FixedPolicy:
    """Exactly ``limit`` in flight, no pacing."""

    def __init__(self, limit: int) -> None:
        if limit < 1:
            raise ValueError("limit must be >= 1")
        self._limit = limit

    def limit(self) -> int:
        return self._limit

    def ready_at(self) -> float:
        return 0.0

    def on_send(self, now: float) -> None:
        return None

    def on_response(
        self, now: float, status: int, latency: float, headers: Mapping[str, str]
    ) -> None:
        return None

    def on_error(self, now: float, latency: float) -> None:
        return None

    def snapshot(self) -> dict[str, Any]:
        return {"concurrency": self._limit, "rate": None}
