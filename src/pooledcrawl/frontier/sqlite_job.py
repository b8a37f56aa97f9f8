"""Checkpoints of a job directory, for :class:`~pooledcrawl.frontier.sqlite.SQLiteFrontier`.

Acks are batched: a checkpoint takes the acks gathered so far, awaits
``before_ack`` (the engine flushes its sinks there), then deletes those rows and
saves the new rows, the stats counters and ``spider.state`` in one commit. Acks
that arrive during the flush wait for the next checkpoint.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

import orjson

from pooledcrawl.errors import UsageError
from pooledcrawl.frontier.jobstats import stats_counters
from pooledcrawl.frontier.sqlite_db import JobDB

if TYPE_CHECKING:
    from pooledcrawl.spider import Spider
    from pooledcrawl.stats import Stats

__all__ = ["Checkpoints"]

log = logging.getLogger("pooledcrawl.frontier.sqlite")


class Checkpoints:
    """Commits ``db`` every ``ack_batch`` acks, or every ``interval`` seconds when
    there is something to commit; ``seq`` gives the job's next sequence number."""

    def __init__(
        self,
        db: JobDB,
        spider: Spider,
        seq: Callable[[], int],
        *,
        ack_batch: int,
        interval: float,
    ) -> None:
        #: awaited before acks are committed: the engine flushes its sinks here
        self.before_ack: Callable[[], Awaitable[None]] | None = None
        #: the engine's stats: restored on open, saved with every commit
        self.stats: Stats | None = None
        self.commits = 0
        self._db = db
        self._spider = spider
        self._seq = seq
        self._ack_batch = max(1, ack_batch)
        self._interval = interval
        self._acks: list[int] = []
        self._kick = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._state_saved: bytes = b"{}"
        self._state_error: UsageError | None = None
        self._failing = False

    def load_state(self, meta: dict[str, Any]) -> None:
        """Restore ``spider.state`` from a resumed job's ``meta``."""
        raw = meta.get("state")
        if raw is None:
            return
        state = orjson.loads(raw)
        if isinstance(state, dict):
            self._spider.state.update(state)
            self._state_saved = bytes(raw)

    def start(self) -> None:
        self._task = asyncio.create_task(self._loop(), name="sqlite-frontier")

    def ack(self, key: int) -> None:
        """The row ``key`` is done: delete it with the next checkpoint."""
        self._acks.append(key)
        if len(self._acks) >= self._ack_batch:
            self._kick.set()

    async def close(self) -> None:
        """Commit what is safe to commit and close the database. The engine closes its
        sinks before this runs, so the acks gathered since the last checkpoint are durable."""
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        if self._db.conn is None:
            return
        try:
            acks, self._acks = self._acks, []
            snapshot = self._snapshot()
            if acks and self.before_ack is not None:
                try:
                    await self.before_ack()
                except Exception as exc:  # items may not be durable: keep their leases
                    log.error("flushing items before the last commit failed: %s", exc)
                    acks = []
            self._commit(acks, snapshot)
        finally:
            self._db.release()
        if self._state_error is not None:
            raise self._state_error

    async def _loop(self) -> None:
        while True:
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(self._interval):
                    await self._kick.wait()
            self._kick.clear()
            try:
                await self.checkpoint()
            except Exception as exc:
                if not self._failing:  # once per failing spell, not five times a second
                    log.error("frontier checkpoint failed (retrying): %s", exc)
                self._failing = True
            else:
                self._failing = False

    async def checkpoint(self) -> None:
        """Flush the sinks, then commit new requests, acks, stats and state together."""
        if self._db.conn is None or not (self._acks or self._db.in_tx):
            return
        acks, self._acks = self._acks, []
        snapshot = self._snapshot()  # taken with the acks: counts what they completed
        if acks and self.before_ack is not None:
            try:
                await self.before_ack()
            except BaseException:
                self._acks[:0] = acks
                raise
        self._commit(acks, snapshot)

    def _commit(self, acks: list[int], snapshot: bytes | None) -> None:
        db = self._db
        db.begin()
        db.flush_inserts()
        if acks:
            db.delete(acks)
        rows: list[tuple[str, Any]] = [("seq", self._seq())]
        if snapshot is not None:
            rows.append(("stats", snapshot))
        state = self._dump_state()  # with every commit: keep spider.state small
        if state is not None and state != self._state_saved:
            rows.append(("state", state))
            self._state_saved = state
        db.set_meta(rows)
        db.commit()
        self.commits += 1

    def _dump_state(self) -> bytes | None:
        try:
            return orjson.dumps(self._spider.state, option=orjson.OPT_NON_STR_KEYS)
        except TypeError as exc:
            if self._state_error is None:
                log.error("spider.state is not saved: it holds a value JSON cannot represent")
            self._state_error = UsageError(
                f"spider.state could not be saved in {self._db.jobdir}: it holds a value JSON "
                f"cannot represent ({exc})"
            )
            return None

    def _snapshot(self) -> bytes | None:
        if self.stats is None:
            return None
        return orjson.dumps(stats_counters(self.stats), option=orjson.OPT_NON_STR_KEYS)
