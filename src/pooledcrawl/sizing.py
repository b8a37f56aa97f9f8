"""Pool-sizing math: Little's Law (L = λW) for HTTP connections, PostgreSQL's
``max_connections`` for database pools. Pure functions, no I/O."""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from pooledcrawl.settings import Settings

__all__ = [
    "HEADROOM",
    "PoolSizeError",
    "little_law",
    "pg_pool_size",
    "session_connector_limit",
    "with_headroom",
]

#: the margin over the computed need, for bursts and slow responses
HEADROOM = 1.3


class PoolSizeError(ValueError):
    """A pool configuration that cannot work (it would pass the server's limit)."""


def little_law(rps: float, latency_s: float) -> int:
    """Requests in flight needed to sustain ``rps`` at ``latency_s``: L = lambda * W."""
    if rps <= 0 or latency_s <= 0:
        raise ValueError("rps and latency must be > 0")
    return max(1, round(rps * latency_s))


def with_headroom(need: int, headroom: float = 1.3) -> int:
    """``need`` plus headroom (default 30%), so a latency spike does not serialize traffic."""
    if headroom < 1:
        raise ValueError("headroom must be >= 1")
    return max(need, round(need * headroom))


def pg_pool_size(max_connections: int, reserved: int, workers: int, max_overflow: int) -> int:
    """Connections per worker: ``floor((max_connections - reserved) / workers) - max_overflow``.

    Raises :class:`PoolSizeError` when that leaves no connection, i.e. when
    ``workers * (pool_size + max_overflow)`` would pass the server's limit.
    """
    if workers < 1:
        raise PoolSizeError(f"workers must be >= 1, got {workers}")
    if reserved < 0 or max_overflow < 0:
        raise PoolSizeError("reserved and max_overflow must be >= 0")
    available = max_connections - reserved
    size = math.floor(available / workers) - max_overflow
    if size < 1:
        raise PoolSizeError(
            f"{workers} workers x (pool + {max_overflow} overflow) cannot fit in "
            f"max_connections {max_connections} - {reserved} reserved"
        )
    return size


def session_connector_limit(settings: Settings) -> int:
    """aiohttp's ``limit`` for one session (one per proxy) when not set explicitly: the
    requests one session may carry (``concurrency``, or the per-proxy cap) plus 30%."""
    if settings.connector_limit is not None:
        return settings.connector_limit
    inflight = settings.concurrency
    if settings.proxy_concurrency is not None:
        inflight = min(inflight, settings.proxy_concurrency)
    return with_headroom(max(inflight, 1), HEADROOM)
