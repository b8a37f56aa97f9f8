"""The PostgreSQL sink's asyncpg pool and its accounting: connections checked out (now,
at most, and time-weighted for the monitor), the time spent waiting for one, and the
pre-ping of a connection that sat idle (a server restart or a firewall may have killed
it while it waited)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncIterator, Mapping
from typing import Any

import asyncpg

from pooledcrawl.items.pgmonitor import PoolUsage
from pooledcrawl.items.postgres.monitor import PoolReading

__all__ = ["Connections"]

log = logging.getLogger("pooledcrawl.items.postgres")

_PING_TIMEOUT = 5.0
_CLOSE_TIMEOUT = 10.0


class Connections:
    """A pool of ``size`` connections (``max_size`` with the overflow); ``pool`` is None
    before :meth:`open` and after :meth:`close`."""

    def __init__(self, *, idle_check: float, acquire_timeout: float) -> None:
        self.idle_check = idle_check
        self.acquire_timeout = acquire_timeout
        self.pool: Any = None
        self.size = 0
        self.max_size = 0
        self.checked_out = 0
        self.max_checked_out = 0
        self.wait_s = 0.0
        self.stale = 0
        self.usage = PoolUsage(time.monotonic())
        self._last_used: dict[int, float] = {}

    async def open(
        self, dsn: str, size: int, max_size: int, connect_args: Mapping[str, Any]
    ) -> None:
        self.size, self.max_size = size, max_size
        self.pool = await asyncpg.create_pool(
            dsn,
            min_size=size,
            max_size=max_size,
            max_inactive_connection_lifetime=300.0,
            **connect_args,
        )
        self.usage = PoolUsage(time.monotonic())

    async def close(self) -> None:
        pool, self.pool = self.pool, None
        if pool is None:
            return
        try:
            await asyncio.wait_for(pool.close(), timeout=_CLOSE_TIMEOUT)
        except (Exception, asyncio.CancelledError):
            pool.terminate()

    @contextlib.asynccontextmanager
    async def connection(self) -> AsyncIterator[Any]:
        """A pool connection, checked with ``SELECT 1`` if idle for ``idle_check`` seconds
        (the pre-ping), with the accounting the stats and the monitor read."""
        pool = self.pool
        if pool is None:
            raise ConnectionError("the PostgreSQL sink is closed")
        conn = await self._acquire(pool)
        self.checked_out += 1
        self.max_checked_out = max(self.max_checked_out, self.checked_out)
        self.usage.set(time.monotonic(), self.checked_out)
        try:
            yield conn
        finally:
            self.checked_out -= 1
            now = time.monotonic()
            self.usage.set(now, self.checked_out)
            try:
                self._last_used[conn.get_server_pid()] = now
                await pool.release(conn)
            except Exception as exc:  # the pool replaces a connection it cannot reset
                log.debug("releasing a connection failed: %s", exc)

    async def _acquire(self, pool: Any) -> Any:
        for _ in range(self.max_size + 1):
            started = time.monotonic()
            conn = await pool.acquire(timeout=self.acquire_timeout)
            now = time.monotonic()
            self.wait_s += now - started
            last = self._last_used.get(conn.get_server_pid())
            if last is None or now - last < self.idle_check:
                return conn
            try:
                await conn.execute("SELECT 1", timeout=_PING_TIMEOUT)
                return conn
            except Exception:
                self.stale += 1  # dead after idling: get another one
                self._last_used.pop(conn.get_server_pid(), None)
                await pool.release(conn)
        raise ConnectionError("no live PostgreSQL connection in the pool")

    def reading(self) -> PoolReading:
        """What the monitor samples: the pool and its use since the last reading."""
        use = self.usage.take(time.monotonic(), self.size)
        return PoolReading(self.pool, self.checked_out, self.size, use)

    def stats(self) -> dict[str, Any]:
        return {
            "pool_size": self.size,
            "pool_max": self.max_size,
            "pool_open": self.pool.get_size() if self.pool is not None else 0,
            "checked_out": self.checked_out,
            "max_checked_out": self.max_checked_out,
            "connection_wait_s": round(self.wait_s, 3),
            "stale_connections": self.stale,
        }
