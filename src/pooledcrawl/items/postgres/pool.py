"""How many connections the PostgreSQL sink's pool may hold: every worker's pool, with
its overflow, must fit in the server's ``max_connections`` less ``postgres.reserved``
(:func:`pooledcrawl.sizing.pg_pool_size`)."""

from __future__ import annotations

from pooledcrawl.errors import UsageError
from pooledcrawl.settings import Settings
from pooledcrawl.sizing import PoolSizeError, pg_pool_size

__all__ = ["DEFAULT_POOL_CAP", "plan_pool"]

#: Pool size when the formula allows more: a crawl writes batches, it needs few connections.
DEFAULT_POOL_CAP = 4


def plan_pool(max_connections: int, settings: Settings) -> tuple[int, int]:
    """(pool size, max size with overflow) per worker.

    Raises a one-line UsageError for a configuration the server cannot hold:
    ``postgres.workers * (size + postgres.max_overflow)`` must fit in
    ``max_connections - postgres.reserved``.
    """
    workers, overflow = settings.postgres.workers, settings.postgres.max_overflow
    try:
        fits = pg_pool_size(max_connections, settings.postgres.reserved, workers, overflow)
    except PoolSizeError as exc:
        raise UsageError(
            f"PostgreSQL pool: {exc}; lower postgres.workers, postgres.max_overflow or "
            "postgres.reserved, or raise the server's max_connections"
        ) from None
    wanted, reserved = settings.postgres.pool_size, settings.postgres.reserved
    if wanted is not None and wanted > fits:
        raise UsageError(
            f"PostgreSQL pool: postgres.pool_size {wanted} x {workers} worker(s) + {overflow} "
            f"overflow passes max_connections {max_connections} - {reserved} reserved "
            f"(at most {fits} fits)"
        )
    size = wanted if wanted is not None else min(fits, DEFAULT_POOL_CAP)
    return size, size + overflow
