"""The PostgreSQL sink: ``-o postgresql://user@host/db?table=items`` through asyncpg.

Rows go out in batches (COPY; flushed on size or time) over a pool sized by seed
003's formula. Every row carries a uuid ``item_id`` with a unique index, so a batch
whose outcome was lost with its connection is written again without duplicates.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import datetime
import functools
import logging
import os
import random
import re
import threading
import time
from collections import Counter
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import asyncpg
import orjson

from pooledcrawl.errors import UsageError
from pooledcrawl.items.base import Item, dumps_item, json_default
from pooledcrawl.items.models import dataclass_columns, model_for
from pooledcrawl.items.pgmonitor import ACTIVITY_SQL, Activity, PoolUsage, monitor_warnings
from pooledcrawl.settings import Settings
from pooledcrawl.sizing import PoolSizeError, pg_pool_size
from pooledcrawl.stats import ErrorLog

if TYPE_CHECKING:
    from pooledcrawl.spider import Spider

__all__ = ["PgTarget", "PostgresSink", "TableLayout", "parse_target", "plan_pool"]

log = logging.getLogger("pooledcrawl.items.postgres")

#: Pool size when the formula allows more: a crawl writes batches, it needs few connections.
DEFAULT_POOL_CAP = 4
#: Stale transactions: idle in a transaction longer than this (seconds) is suspicious.
IDLE_TRANSACTION_S = 5.0
_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,62}")
_FIXED = ("id", "item_id", "url", "spider", "scraped_at")
_BACKOFF_BASE, _BACKOFF_CAP = 0.1, 5.0
_PING_TIMEOUT = 5.0
_EMERGENCY_TIMEOUT = 5.0

Row = tuple[Any, ...]


# ---- pure parts: target, pool plan, table layout -------------------------------------
@dataclass(frozen=True, slots=True)
class PgTarget:
    dsn: str
    """What asyncpg connects with (may hold a password: never log it)."""
    schema: str | None
    table: str
    display: str
    """The target without password, for logs and stats."""

    @property
    def qualified(self) -> str:
        name = _quote(self.table)
        return f"{_quote(self.schema)}.{name}" if self.schema else name


def parse_target(target: str) -> PgTarget:
    """Split ``postgresql://...?table=[schema.]name`` into a DSN and a checked table name."""
    parts = urlsplit(target)
    if parts.scheme not in ("postgresql", "postgres"):
        raise UsageError(f"not a PostgreSQL URL: {parts.scheme}://...")
    query = parse_qsl(parts.query, keep_blank_values=True)
    tables = [value for key, value in query if key == "table"]
    rest = [(key, value) for key, value in query if key != "table"]
    table = tables[-1] if tables else "items"
    schema, _, name = table.rpartition(".")
    for part in (name, schema) if schema else (name,):
        if not _NAME.fullmatch(part):
            raise UsageError(
                f"table {table!r}: use letters, digits and _ (optionally schema.table)"
            )
    host = parts.hostname or ""
    netloc = (f"{parts.username}@" if parts.username else "") + (
        f"[{host}]" if ":" in host else host
    )
    if parts.port:
        netloc += f":{parts.port}"
    display = urlunsplit((parts.scheme, netloc, parts.path, urlencode({"table": table}), ""))
    dsn = urlunsplit((parts.scheme, parts.netloc, parts.path, urlencode(rest), ""))
    return PgTarget(dsn=dsn, schema=schema or None, table=name, display=display)


def plan_pool(max_connections: int, settings: Settings) -> tuple[int, int]:
    """(pool size, max size with overflow) per worker: every worker's
    pool, with its overflow, must fit in the server's ``max_connections`` less
    ``postgres.reserved``.

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


@dataclass(frozen=True, slots=True)
class TableLayout:
    """The columns of the items table: a jsonb ``data`` column, or one typed column per
    field of a dataclass model."""

    fields: tuple[tuple[str, str], ...] = (("data", "jsonb"),)
    typed: bool = False

    @classmethod
    def for_model(cls, model: type | None) -> TableLayout:
        if model is None or not dataclasses.is_dataclass(model):
            return cls()
        fields = [(name, sql) for name, sql in dataclass_columns(model) if name != "url"]
        clash = [name for name, _ in fields if name in _FIXED]
        if clash:
            raise UsageError(
                f"item_model {model.__name__}: field {clash[0]!r} is a column pooledcrawl "
                "adds itself; rename it"
            )
        return cls(tuple(fields), typed=True)

    @property
    def columns(self) -> list[str]:
        """The columns a row fills, in row order."""
        return ["item_id", "url", "spider", "scraped_at", *(name for name, _ in self.fields)]

    def create_sql(self, qualified: str) -> str:
        not_null = "" if self.typed else " NOT NULL"
        typed = ",\n  ".join(f"{_quote(name)} {sql}{not_null}" for name, sql in self.fields)
        return (
            f"CREATE TABLE IF NOT EXISTS {qualified} (\n"
            "  id bigserial PRIMARY KEY,\n"
            "  item_id uuid NOT NULL UNIQUE,\n"
            "  url text,\n"
            "  spider text,\n"
            "  scraped_at timestamptz NOT NULL DEFAULT now(),\n"
            f"  {typed}\n)"
        )

    def insert_sql(self, qualified: str) -> str:
        """The idempotent insert: a row whose item_id is already there is skipped."""
        names = ", ".join(_quote(name) for name in self.columns)
        params = ", ".join(f"${i}" for i in range(1, len(self.columns) + 1))
        return (
            f"INSERT INTO {qualified} ({names}) VALUES ({params}) ON CONFLICT (item_id) DO NOTHING"
        )

    def rows(self, items: Sequence[Item], spider: str, now: datetime.datetime) -> list[Row]:
        """One row per item, each with a fresh random (version 4) uuid as its item_id."""
        ids = _uuid4_hex(len(items))
        return [
            self._row(item, item_id, spider, now) for item, item_id in zip(items, ids, strict=True)
        ]

    def _row(self, item: Item, item_id: str, spider: str, now: datetime.datetime) -> Row:
        get = item.get if isinstance(item, dict) else functools.partial(getattr, item)
        url = get("url", None)
        head = (item_id, url if url is None or isinstance(url, str) else str(url), spider, now)
        if not self.typed:
            # The same bytes as the JSON-lines feed, so both outputs agree.
            return (*head, dumps_item(item).decode())
        values = []
        for name, sql in self.fields:
            value = get(name, None)
            if sql == "jsonb" and value is not None:
                value = dumps_item(value).decode()
            values.append(value)
        return (*head, *values)


def _uuid4_hex(n: int) -> list[str]:
    """``n`` random version-4 uuids as 32 hex digits: one urandom call for the lot, and
    strings asyncpg encodes in C (uuid.uuid4() per row costs more than the rest of it)."""
    raw = os.urandom(16 * n).hex()
    ids = []
    for start in range(0, 32 * n, 32):
        h = raw[start : start + 32]
        ids.append(f"{h[:12]}4{h[13:16]}{'89ab'[int(h[16], 16) & 3]}{h[17:]}")
    return ids


def _quote(name: str | None) -> str:
    return '"' + (name or "").replace('"', '""') + '"'


def _backoff(attempt: int, rnd: random.Random) -> float:
    """Full-jitter exponential backoff, so many writers don't reconnect in step."""
    return float(rnd.uniform(0, min(_BACKOFF_CAP, _BACKOFF_BASE * 2**attempt)))


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
        self._idle_transaction_s = idle_transaction_s
        self._layout = TableLayout()
        self._insert_sql = ""
        self._spider_name = ""
        self._pool: Any = None
        self._pool_size = 0
        self._pool_max = 0
        self._max_connections = 0
        self._tasks: list[asyncio.Task[None]] = []
        self._connect_args: dict[str, Any] = {}
        self._pending: list[Row] = []
        self._pending_since = 0.0
        self._inflight: dict[int, list[Row]] = {}
        self._idle: asyncio.Event | None = None
        self._last_used: dict[int, float] = {}
        self._usage = PoolUsage(time.monotonic())
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
        self.checked_out = 0
        self.max_checked_out = 0
        self.connection_wait_s = 0.0
        self.stale_connections = 0
        self.monitor_samples = 0
        self.monitor_warnings = 0
        self.last_activity: Activity | None = None

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
            self._pool_size, self._pool_max = plan_pool(self._max_connections, settings)
            await self._prepare_table(probe)
        finally:
            await probe.close()
        try:
            self._pool = await asyncpg.create_pool(
                self.target.dsn,
                min_size=self._pool_size,
                max_size=self._pool_max,
                max_inactive_connection_lifetime=300.0,
                **connect_args,
            )
        except Exception as exc:
            raise UsageError(
                f"cannot open a pool of {self._pool_size} connections to "
                f"{self.target.display}: {type(exc).__name__}: {exc}"
            ) from None
        self._opened_at = time.monotonic()
        self._rate_mark = (self._opened_at, 0)
        self._usage = PoolUsage(self._opened_at)
        self._tasks.append(asyncio.create_task(self._flush_on_time(), name="pg-flush"))
        if settings.postgres.monitor:
            self._tasks.append(asyncio.create_task(self._monitor(), name="pg-monitor"))
        log.info(
            "writing items to %s: pool %d (+%d overflow), max_connections %d, %d worker(s)",
            self.target.display,
            self._pool_size,
            self._pool_max - self._pool_size,
            self._max_connections,
            settings.postgres.workers,
        )

    async def _prepare_table(self, conn: Any) -> None:
        """Create the table if missing (serialised across workers), then check its shape."""
        qualified = self.target.qualified
        try:
            async with conn.transaction():
                await conn.execute("SELECT pg_advisory_xact_lock(hashtext($1))", qualified)
                await conn.execute(self._layout.create_sql(qualified))
            existing = {
                r["attname"]
                for r in await conn.fetch(
                    "SELECT attname FROM pg_attribute WHERE attrelid = $1::regclass "
                    "AND attnum > 0 AND NOT attisdropped",
                    qualified,
                )
            }
            unique = await conn.fetchval(
                "SELECT EXISTS (SELECT 1 FROM pg_index i JOIN pg_attribute a "
                "ON a.attrelid = i.indrelid AND a.attnum = i.indkey[0] "
                "WHERE i.indrelid = $1::regclass AND i.indisunique AND i.indnkeyatts = 1 "
                "AND a.attname = 'item_id')",
                qualified,
            )
        except asyncpg.PostgresError as exc:
            raise UsageError(
                f"{self.target.display}: cannot create or read the table: {exc}"
            ) from None
        missing = [name for name in self._layout.columns if name not in existing]
        if missing or not unique:
            what = f"no column {', '.join(missing)}" if missing else "no unique index on item_id"
            raise UsageError(
                f"{self.target.display}: the table exists with {what}; "
                "pick another ?table= or drop it"
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
            if self._pending and self._pool is not None:
                log.info("%s: writing the last %d rows", self.target.display, len(self._pending))
            if self._pool is not None:
                await self.flush()
        except BaseException:
            rows = self._unsent()
            self._pending.clear()
            self._spill(rows, "the sink was interrupted while closing")
            raise
        finally:
            await self._close_pool()

    async def _close_pool(self) -> None:
        pool, self._pool = self._pool, None
        if pool is None:
            return
        try:
            await asyncio.wait_for(pool.close(), timeout=10.0)
        except (Exception, asyncio.CancelledError):
            pool.terminate()

    def emergency_flush(self) -> None:
        """Second Ctrl-C: write what is pending or in flight through a fresh connection in a
        helper thread (the event loop is busy), else save it to the local file."""
        rows = self._unsent()
        if not rows:
            return
        done: list[int] = []

        def run() -> None:
            try:
                asyncio.run(self._write_fresh(rows))
                done.append(len(rows))
            except Exception as exc:
                log.error("emergency write to %s failed: %s", self.target.display, exc)

        thread = threading.Thread(target=run, name="pg-emergency", daemon=True)
        thread.start()
        thread.join(_EMERGENCY_TIMEOUT)
        if done:
            self.rows += done[0]
            self._pending.clear()
            self._inflight.clear()
            log.warning("%s: wrote the last %d rows before exiting", self.target.display, done[0])
        else:
            self._spill(rows, "exiting before PostgreSQL answered")

    async def _write_fresh(self, rows: list[Row]) -> None:
        args = {**self._connect_args, "command_timeout": _EMERGENCY_TIMEOUT}
        conn = await asyncpg.connect(self.target.dsn, timeout=_EMERGENCY_TIMEOUT, **args)
        try:
            await conn.executemany(self._insert_sql, rows)
        finally:
            await conn.close()

    def status(self) -> str:
        """One line for the live display: pool use, write rate, backlog, trouble."""
        now = time.monotonic()
        then, rows_then = self._rate_mark
        if now - then >= 1.0:
            self._rate = (self.rows - rows_then) / (now - then)
            self._rate_mark = (now, self.rows)
        pending = len(self._pending) + sum(len(b) for b in self._inflight.values())
        line = (
            f"postgresql {self.target.table}: pool {self.checked_out}/{self._pool_size}"
            f" (+{self._pool_max - self._pool_size})  rows {self.rows:,} ({self._rate:,.0f}/s)"
            f"  pending {pending:,}  retried {self.batches_retried}"
            f"  conn wait {self.connection_wait_s:.1f}s"
        )
        if self.rows_failed:
            line += f"  failed {self.rows_failed:,}"
        if self.rows_spilled:
            line += f"  saved to file {self.rows_spilled:,}"
        return line

    def stats(self) -> dict[str, Any]:
        elapsed = max(1e-9, time.monotonic() - self._opened_at)
        pool = self._pool
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
            "pool_size": self._pool_size,
            "pool_max": self._pool_max,
            "pool_open": pool.get_size() if pool is not None else 0,
            "checked_out": self.checked_out,
            "max_checked_out": self.max_checked_out,
            "connection_wait_s": round(self.connection_wait_s, 3),
            "stale_connections": self.stale_connections,
            "max_connections": self._max_connections,
        }
        if self.rows_spilled:
            data["spill_file"] = str(self._spill_path)
        if self.settings.postgres.monitor:
            data["monitor"] = {
                "samples": self.monitor_samples,
                "warnings": self.monitor_warnings,
                "last": dataclasses.asdict(self.last_activity) if self.last_activity else None,
            }
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
                async with self._connection() as conn:
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
                if time.monotonic() >= deadline or self._pool is None:
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

    @contextlib.asynccontextmanager
    async def _connection(self) -> AsyncIterator[Any]:
        """A pool connection, checked with ``SELECT 1`` if idle for ``postgres.idle_check`` s (the
        pre-ping), with the pool accounting the stats and the monitor read."""
        pool = self._pool
        if pool is None:
            raise ConnectionError("the PostgreSQL sink is closed")
        conn = await self._acquire(pool)
        self.checked_out += 1
        self.max_checked_out = max(self.max_checked_out, self.checked_out)
        self._usage.set(time.monotonic(), self.checked_out)
        try:
            yield conn
        finally:
            self.checked_out -= 1
            now = time.monotonic()
            self._usage.set(now, self.checked_out)
            try:
                self._last_used[conn.get_server_pid()] = now
                await pool.release(conn)
            except Exception as exc:  # the pool replaces a connection it cannot reset
                log.debug("releasing a connection failed: %s", exc)

    async def _acquire(self, pool: Any) -> Any:
        idle_check = self.settings.postgres.idle_check
        for _ in range(self._pool_max + 1):
            started = time.monotonic()
            conn = await pool.acquire(timeout=self.settings.postgres.command_timeout)
            now = time.monotonic()
            self.connection_wait_s += now - started
            last = self._last_used.get(conn.get_server_pid())
            if last is None or now - last < idle_check:
                return conn
            try:
                await conn.execute("SELECT 1", timeout=_PING_TIMEOUT)
                return conn
            except Exception:
                self.stale_connections += 1  # dead after idling: get another one
                self._last_used.pop(conn.get_server_pid(), None)
                await pool.release(conn)
        raise ConnectionError("no live PostgreSQL connection in the pool")

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

    # ---- monitor (pg_stat_activity) -----------------------------------------------------------
    async def _monitor(self) -> None:
        interval = self.settings.postgres.monitor_interval
        while True:
            await asyncio.sleep(interval)
            try:
                await self._sample(interval)
            except Exception as exc:
                log.warning("pg monitor: sampling %s failed: %s", self.target.display, exc)

    async def _sample(self, window: float) -> None:
        use = self._usage.take(time.monotonic(), self._pool_size)
        async with asyncio.timeout(self.settings.postgres.command_timeout):
            async with self._pool.acquire() as conn:
                row = await conn.fetchrow(ACTIVITY_SQL, self._idle_transaction_s)
        activity = Activity(**dict(row))
        self.monitor_samples += 1
        self.last_activity = activity
        log.info(
            "pg monitor: pool %d/%d checked out (%.0f%% over %.0fs), %d active, %d idle, "
            "%d idle in transaction",
            self.checked_out,
            self._pool_size,
            use * 100,
            window,
            activity.active,
            activity.idle,
            activity.idle_in_transaction,
        )
        for message in monitor_warnings(
            use,
            activity,
            pool_size=self._pool_size,
            window_s=window,
            idle_threshold_s=self._idle_transaction_s,
        ):
            self.monitor_warnings += 1
            log.warning("pg monitor: %s", message)

    # ---- last resort -----------------------------------------------------------------
    def _spill(self, rows: list[Row], why: str) -> None:
        """Save rows PostgreSQL would not take to a local JSON-lines file, so none is lost."""
        if not rows:
            return
        columns = self._layout.columns
        lines = bytearray()
        for row in rows:
            record = dict(zip(columns, row, strict=True))
            if not self._layout.typed:
                record["data"] = orjson.loads(record["data"])
            lines += orjson.dumps(record, default=json_default, option=orjson.OPT_APPEND_NEWLINE)
        with self._spill_path.open("ab") as handle:
            handle.write(lines)
        self.rows_spilled += len(rows)
        log.error(
            "%s: %d rows could not be written (%s); saved to %s",
            self.target.display,
            len(rows),
            why,
            self._spill_path,
        )
