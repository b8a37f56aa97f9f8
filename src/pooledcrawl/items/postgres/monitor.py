"""The PostgreSQL pool monitor's I/O: every ``postgres.monitor_interval`` seconds, one
sample of ``pg_stat_activity`` for the sink's database, logged and judged by the pure
policy of :mod:`pooledcrawl.items.pgmonitor`."""

from __future__ import annotations

import asyncio
import dataclasses
import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from pooledcrawl.items.pgmonitor import ACTIVITY_SQL, Activity, monitor_warnings

__all__ = ["PoolMonitor", "PoolReading"]

log = logging.getLogger("pooledcrawl.items.postgres")


@dataclass(frozen=True, slots=True)
class PoolReading:
    """The sink's pool as the monitor sees it at a sample."""

    pool: Any
    checked_out: int
    size: int
    use: float
    """Time-weighted share of the pool checked out since the last sample."""


class PoolMonitor:
    """Samples ``pg_stat_activity`` and warns on a saturated pool, a transaction left
    idle or connections waiting on locks; counts what it saw for the stats."""

    def __init__(
        self, display: str, *, interval: float, timeout: float, idle_transaction_s: float
    ) -> None:
        self.display = display
        self.interval = interval
        self.timeout = timeout
        self.idle_transaction_s = idle_transaction_s
        self.samples = 0
        self.warnings = 0
        self.last: Activity | None = None

    async def run(self, read: Callable[[], PoolReading]) -> None:
        """Sample every ``interval`` seconds until cancelled; a failed sample is logged."""
        while True:
            await asyncio.sleep(self.interval)
            try:
                await self.sample(read(), self.interval)
            except Exception as exc:
                log.warning("pg monitor: sampling %s failed: %s", self.display, exc)

    async def sample(self, reading: PoolReading, window: float) -> None:
        async with asyncio.timeout(self.timeout):
            async with reading.pool.acquire() as conn:
                row = await conn.fetchrow(ACTIVITY_SQL, self.idle_transaction_s)
        activity = Activity(**dict(row))
        self.samples += 1
        self.last = activity
        log.info(
            "pg monitor: pool %d/%d checked out (%.0f%% over %.0fs), %d active, %d idle, "
            "%d idle in transaction",
            reading.checked_out,
            reading.size,
            reading.use * 100,
            window,
            activity.active,
            activity.idle,
            activity.idle_in_transaction,
        )
        for message in monitor_warnings(
            reading.use,
            activity,
            pool_size=reading.size,
            window_s=window,
            idle_threshold_s=self.idle_transaction_s,
        ):
            self.warnings += 1
            log.warning("pg monitor: %s", message)

    def stats(self) -> dict[str, Any]:
        return {
            "samples": self.samples,
            "warnings": self.warnings,
            "last": dataclasses.asdict(self.last) if self.last else None,
        }
