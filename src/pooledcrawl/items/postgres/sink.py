"""The PostgreSQL sink: ``-o postgresql://user@host/db?table=items`` through asyncpg.

Rows go out in batches (COPY; flushed on size or time) over a pool sized so that every
worker's pool fits in the server's ``max_connections`` (:mod:`.pool`). Every row
carries a uuid ``item_id`` with a unique index, so a batch whose outcome was lost with
its connection is written again without duplicates.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime
import logging
import os
import random
import time
from collections import Counter
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import asyncpg

from pooledcrawl.backoff import full_jitter
from pooledcrawl.errors import UsageError
from pooledcrawl.items.base import Item
from pooledcrawl.items.models import model_for
from pooledcrawl.items.postgres.connections import Connections
from pooledcrawl.items.postgres.layout import Row, TableLayout, prepare_table
from pooledcrawl.items.postgres.monitor import PoolMonitor
from pooledcrawl.items.postgres.pool import plan_pool
from pooledcrawl.items.postgres.spill import spill_rows, write_in_thread
from pooledcrawl.items.postgres.target import parse_target
from pooledcrawl.settings import Settings
from pooledcrawl.stats import ErrorLog

if TYPE_CHECKING:
    from pooledcrawl.spider import Spider

__all__ = ["IDLE_TRANSACTION_S", "PostgresSink"]

log = logging.getLogger("pooledcrawl.items.postgres")

#: Stale transactions: idle in a transaction longer than this (seconds) is suspicious.
IDLE_TRANSACTION_S = 5.0
_BACKOFF_BASE, _BACKOFF_CAP = 0.1, 5.0
_EMERGENCY_TIMEOUT = 5.0


def _backoff(attempt: int, rnd: random.Random) -> float:
    """Full-jitter exponential backoff, so many writers don't reconnect in step."""
    return full_jitter(attempt + 1, _BACKOFF_BASE, _BACKOFF_CAP, rnd)


def _is_row_error(exc: BaseException) -> bool:
    """An error caused by the data of some row (retrying the batch would fail again)."""
    return isinstance(
        exc,
        asyncpg.DataError  # SQLSTATE 22: a value the column type rejects
        | asyncpg.IntegrityConstraintViolationError
        | ValueError  # asyncpg's client-side DataError: a value it cannot encode
        | TypeError
        | UnicodeError,
    )


# ---- the sink ------------------------------------------------------------------------
class PostgresSink:
    """Writes items to a PostgreSQL table, in batches, through an asyncpg pool.

    Back-pressure: a worker that fills a batch waits for it to be written, and batches
    in flight are bounded by the pool, so a slow database slows the crawl. A batch that
    fails on a connection error is retried with backoff for ``postgres.retry_timeout``
    seconds; if the server is still away, its rows go to a local JSON-lines file
    (``pooledcrawl-unsent-TABLE-PID.jsonl``) rather than being lost.
    """

    #: ``write`` may wait on the database; the processor writes such sinks last.
    may_block = True

    def __init__(
        self,
        target: str,
        settings: Settings | None = None,
        *,
        overwrite: bool = False,
        spill_dir: str | os.PathLike[str] = ".",
        idle_transaction_s: float = IDLE_TRANSACTION_S,
    ) -> None:
        if overwrite:
            raise UsageError("-O cannot overwrite a PostgreSQL table: use -o to append rows")
        self.target = parse_target(target)
        self.settings = settings or Settings()
        self._spill_path = (
            Path(spill_dir) / f"pooledcrawl-unsent-{self.target.table}-{os.getpid()}.jsonl"
        )
        self._monitor = PoolMonitor(
            self.target.display,
            interval=self.settings.postgres.monitor_interval,
            timeout=self.settings.postgres.command_timeout,
            idle_transaction_s=idle_transaction_s,
        )
        self._layout = TableLayout()
        self._insert_sql = ""
        self._spider_name = ""
        self._conns = Connections(
            idle_check=self.settings.postgres.idle_check,
            acquire_timeout=self.settings.postgres.command_timeout,
        )
        self._max_connections = 0
        self._tasks: list[asyncio.Task[None]] = []
        self._connect_args: dict[str, Any] = {}
        self._pending: list[Row] = []
        self._pending_since = 0.0
        self._inflight: dict[int, list[Row]] = {}
        self._idle: asyncio.Event | None = None
        self._rnd = random.Random()
        self._errors = ErrorLog(log, Counter())
        self._retry_kinds: set[str] = set()
        self._opened_at = time.monotonic()
        self._rate_mark = (self._opened_at, 0)
        self._rate = 0.0
        self._closed = False
        # stats
        self.rows = 0
        self.rows_failed = 0
        self.rows_spilled = 0
        self.batches = 0
        self.batches_retried = 0
        self.retries = 0

    # ---- lifecycle -------------------------------------------------------------------
    async def open(self, spider: Spider) -> None:
        settings = self.settings
        self._spider_name = spider.name
        self._layout = TableLayout.for_model(model_for(settings.item_model, spider))
        self._insert_sql = self._layout.insert_sql(self.target.qualified)
        self._idle = asyncio.Event()
        self._idle.set()
        self._connect_args = connect_args = {
            "command_timeout": settings.postgres.command_timeout,
            "statement_cache_size": settings.postgres.statement_cache_size,
            "server_settings": {
                "application_name": f"pooledcrawl:{self.target.table}"[:63],
                "statement_timeout": str(int(settings.postgres.statement_timeout * 1000)),
            },
        }
        try:
            probe = await asyncpg.connect(
                self.target.dsn, timeout=settings.postgres.command_timeout, **connect_args
            )
        except Exception as exc:
            raise UsageError(
                f"cannot connect to {self.target.display}: {type(exc).__name__}: {exc}"
            ) from None
        try:
            self._max_connections = int(await probe.fetchval("SHOW max_connections"))
            pool_size, pool_max = plan_pool(self._max_connections, settings)
            await prepare_table(probe, self._layout, self.target)
        finally:
            await probe.close()
        try:
            await self._conns.open(self.target.dsn, pool_size, pool_max, connect_args)
        except Exception as exc:
            raise UsageError(
                f"cannot open a pool of {pool_size} connections to "
                f"{self.target.display}: {type(exc).__name__}: {exc}"
            ) from None
        self._opened_at = time.monotonic()
        self._rate_mark = (self._opened_at, 0)
        self._tasks.append(asyncio.create_task(self._flush_on_time(), name="pg-flush"))
        if settings.postgres.monitor:
            monitoring = self._monitor.run(self._conns.reading)
            self._tasks.append(asyncio.create_task(monitoring, name="pg-monitor"))
        log.info(
            "writing items to %s: pool %d (+%d overflow), max_connections %d, %d worker(s)",
            self.target.display,
            pool_size,
            pool_max - pool_size,
            self._max_connections,
            settings.postgres.workers,
        )

    async def write(self, items: Sequence[Item]) -> None:
        now = datetime.datetime.now(datetime.UTC)
        spider, layout = self._spider_name, self._layout
        if not self._pending:
            self._pending_since = time.monotonic()
        self._pending.extend(layout.rows(items, spider, now))
        size = self.settings.postgres.batch_size
        while len(self._pending) >= size:
            await self._write_batch(self._take(size))

    async def flush(self) -> None:
        """Write every pending row and wait for the batches other tasks have in flight."""
        while self._pending:
            await self._write_batch(self._take(self.settings.postgres.batch_size))
        if self._idle is not None:
            await self._idle.wait()

    async def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        try:
            if self._pending and self._conns.pool is not None:
                log.info("%s: writing the last %d rows", self.target.display, len(self._pending))
            if self._conns.pool is not None:
                await self.flush()
        except BaseException:
            rows = self._unsent()
            self._pending.clear()
            self._spill(rows, "the sink was interrupted while closing")
            raise
        finally:
            await self._conns.close()

    def emergency_flush(self) -> None:
        """Second Ctrl-C: write what is pending or in flight through a fresh connection in a
        helper thread (the event loop is busy), else save it to the local file."""
        rows = self._unsent()
        if not rows:
            return
        written = write_in_thread(
            self.target.dsn,
            self._connect_args,
            self._insert_sql,
            rows,
            display=self.target.display,
            timeout=_EMERGENCY_TIMEOUT,
        )
        if written:
            self.rows += len(rows)
            self._pending.clear()
            self._inflight.clear()
            log.warning("%s: wrote the last %d rows before exiting", self.target.display, len(rows))
        else:
            self._spill(rows, "exiting before PostgreSQL answered")

    def status(self) -> str:
        """One line for the live display: pool use, write rate, backlog, trouble."""
        now = time.monotonic()
        then, rows_then = self._rate_mark
        if now - then >= 1.0:
            self._rate = (self.rows - rows_then) / (now - then)
            self._rate_mark = (now, self.rows)
        pending = len(self._pending) + sum(len(b) for b in self._inflight.values())
        conns = self._conns
        line = (
            f"postgresql {self.target.table}: pool {conns.checked_out}/{conns.size}"
            f" (+{conns.max_size - conns.size})  rows {self.rows:,} ({self._rate:,.0f}/s)"
            f"  pending {pending:,}  retried {self.batches_retried}"
            f"  conn wait {conns.wait_s:.1f}s"
        )
        if self.rows_failed:
            line += f"  failed {self.rows_failed:,}"
        if self.rows_spilled:
            line += f"  saved to file {self.rows_spilled:,}"
        return line

    def stats(self) -> dict[str, Any]:
        elapsed = max(1e-9, time.monotonic() - self._opened_at)
        data: dict[str, Any] = {
            "type": "postgresql",
            "target": self.target.display,
            "rows": self.rows,
            "rows_per_s": round(self.rows / elapsed, 1),
            "rows_failed": self.rows_failed,
            "rows_spilled": self.rows_spilled,
            "pending": len(self._pending) + sum(len(b) for b in self._inflight.values()),
            "batches": self.batches,
            "batches_retried": self.batches_retried,
            "retries": self.retries,
            **self._conns.stats(),
            "max_connections": self._max_connections,
        }
        if self.rows_spilled:
            data["spill_file"] = str(self._spill_path)
        if self.settings.postgres.monitor:
            data["monitor"] = self._monitor.stats()
        return data

    # ---- batches ---------------------------------------------------------------------
    def _take(self, size: int) -> list[Row]:
        batch = self._pending[:size]
        del self._pending[:size]
        if self._pending:
            self._pending_since = time.monotonic()
        return batch

    def _unsent(self) -> list[Row]:
        rows = list(self._pending)
        for batch in self._inflight.values():
            rows.extend(batch)
        return rows

    async def _write_batch(self, rows: list[Row]) -> None:
        """Write ``rows`` durably. If the caller is cancelled first, the rows go back to the
        pending list (written again later, idempotently), so a cancel never loses them."""
        key = id(rows)
        self._inflight[key] = rows
        assert self._idle is not None
        self._idle.clear()
        try:
            await self._write_with_retry(rows)
        except BaseException:
            self._pending[:0] = rows
            raise
        finally:
            del self._inflight[key]
            if not self._inflight:
                self._idle.set()

    async def _write_with_retry(self, rows: list[Row]) -> None:
        attempt = 0
        deadline = 0.0
        while True:
            try:
                async with self._conns.connection() as conn:
                    await self._insert(conn, rows)
                self.rows += len(rows)
                self.batches += 1
                return
            except Exception as exc:
                if _is_row_error(exc):
                    await self._write_rows_alone(rows, exc)
                    return
                attempt += 1
                self.retries += 1
                if attempt == 1:
                    self.batches_retried += 1
                    deadline = time.monotonic() + self.settings.postgres.retry_timeout
                self._warn_retry(exc)
                if time.monotonic() >= deadline or self._conns.pool is None:
                    self._spill(rows, f"{type(exc).__name__}: {exc}")
                    return
                await asyncio.sleep(_backoff(attempt, self._rnd))

    def _warn_retry(self, exc: Exception) -> None:
        kind = type(exc).__name__
        if kind not in self._retry_kinds:  # once per kind: a flapping server would flood
            self._retry_kinds.add(kind)
            log.warning(
                "writing to %s failed (%s: %s); retrying with backoff for up to %gs "
                "(further failures of this kind are only counted)",
                self.target.display,
                kind,
                exc,
                self.settings.postgres.retry_timeout,
            )

    async def _insert(self, conn: Any, rows: list[Row]) -> None:
        try:
            await conn.copy_records_to_table(
                self.target.table,
                records=rows,
                columns=self._layout.columns,
                schema_name=self.target.schema,
            )
        except asyncpg.UniqueViolationError:
            # An earlier attempt did commit some of these rows before its connection
            # died; the idempotent insert skips those.
            await conn.executemany(self._insert_sql, rows)

    async def _write_rows_alone(self, rows: list[Row], exc: Exception) -> None:
        """A batch that the data itself broke: write its rows one at a time so only the bad
        ones fail (counted, and logged once per kind)."""
        if len(rows) > 1:
            for row in rows:
                await self._write_with_retry([row])
            return
        self.rows_failed += 1
        self._errors.record(f"writing a row to {self.target.display}", exc)

    async def _flush_on_time(self) -> None:
        """Write a partial batch once its oldest row waited ``postgres.flush_interval`` seconds."""
        interval = self.settings.postgres.flush_interval
        while True:
            await asyncio.sleep(min(interval, 0.25))
            if self._pending and time.monotonic() - self._pending_since >= interval:
                try:
                    await self._write_batch(self._take(self.settings.postgres.batch_size))
                except Exception as exc:  # keep flushing; the rows went back to pending
                    self._errors.record(f"flushing {self.target.display}", exc)

    # ---- last resort -----------------------------------------------------------------
    def _spill(self, rows: list[Row], why: str) -> None:
        """Save rows PostgreSQL would not take to a local JSON-lines file, so none is lost."""
        if not rows:
            return
        spill_rows(self._spill_path, rows, self._layout)
        self.rows_spilled += len(rows)
        log.error(
            "%s: %d rows could not be written (%s); saved to %s",
            self.target.display,
            len(rows),
            why,
            self._spill_path,
        )
