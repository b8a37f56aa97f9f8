"""The PostgreSQL pool monitor's policy, apart from its I/O: how busy the
pool was between two samples, and which warnings a sample of ``pg_stat_activity``
deserves. Pure: the caller passes the clock."""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["ACTIVITY_SQL", "Activity", "PoolUsage", "monitor_warnings"]

#: One sample of the sink's own database; $1 is the idle-transaction threshold in seconds.
ACTIVITY_SQL = """
SELECT
    count(*) FILTER (WHERE state = 'active') AS active,
    count(*) FILTER (WHERE state = 'idle') AS idle,
    count(*) FILTER (WHERE state = 'idle in transaction') AS idle_in_transaction,
    count(*) FILTER (WHERE state = 'idle in transaction'
                     AND now() - state_change > make_interval(secs => $1)) AS stale_transactions,
    count(*) FILTER (WHERE wait_event_type = 'Lock') AS lock_waits
FROM pg_stat_activity
WHERE datname = current_database() AND pid <> pg_backend_pid()
"""


class PoolUsage:
    """Time-weighted share of the pool checked out since the last :meth:`take`.

    An average over the whole window, not a point sample, so a warning means the
    pool *stayed* busy rather than happened to be busy at the sampling instant.
    """

    def __init__(self, now: float) -> None:
        self._since = now
        self._last = now
        self._level = 0
        self._area = 0.0

    def set(self, now: float, checked_out: int) -> None:
        self._area += self._level * max(0.0, now - self._last)
        self._last = now
        self._level = checked_out

    def take(self, now: float, capacity: int) -> float:
        """The average fraction of ``capacity`` in use since the last call; starts a window."""
        self.set(now, self._level)
        span = now - self._since
        use = self._area / (span * capacity) if span > 0 and capacity > 0 else 0.0
        self._since = now
        self._area = 0.0
        return use


@dataclass(frozen=True, slots=True)
class Activity:
    """Counts from one ``pg_stat_activity`` sample (other backends of the database)."""

    active: int = 0
    idle: int = 0
    idle_in_transaction: int = 0
    stale_transactions: int = 0
    lock_waits: int = 0


def monitor_warnings(
    pool_use: float,
    activity: Activity,
    *,
    pool_size: int,
    window_s: float,
    idle_threshold_s: float,
    high_use: float = 0.85,
    lock_waits: int = 3,
) -> list[str]:
    """The warnings one monitor sample calls for (empty when all is well)."""
    warnings: list[str] = []
    if pool_use > high_use:
        warnings.append(
            f"PostgreSQL pool busy: {pool_use:.0%} of {pool_size} connections checked out "
            f"on average over the last {window_s:.0f}s; raise pg_pool_size or lower concurrency"
        )
    if activity.stale_transactions:
        warnings.append(
            f"PostgreSQL: {activity.stale_transactions} transaction(s) idle for more than "
            f"{idle_threshold_s:g}s on this database; something holds a transaction open"
        )
    if activity.lock_waits >= lock_waits:
        warnings.append(
            f"PostgreSQL: {activity.lock_waits} connections waiting on locks on this database"
        )
    return warnings
