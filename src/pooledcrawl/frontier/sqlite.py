"""A crash-safe frontier in one SQLite database: what ``--jobdir DIR`` selects.

One database in WAL mode holds the pending requests, the dedup fingerprints, the
wall-clock due times of retries, the spider's ``state`` dict and the stats
counters, so re-running the same command carries on where the last run stopped.

- **Leases, not pops.** A request stays in the table from the moment it is
  queued until its callback has completed and its items are flushed. The rows a
  process has loaded are its leases; after a crash every row is pending again,
  so what was in flight is fetched again and nothing is lost.
- **Items and requests durable together.** New requests are written into the
  open transaction as they are found; acks are committed by checkpoints, after
  the sinks are flushed (:mod:`~pooledcrawl.frontier.sqlite_job`). One is due every
  ``ack_batch`` acks, so a hard kill re-fetches at most about that many completed
  pages whose items already reached the feed.
- **Bounded memory.** Only a window of each priority level is in memory. Dedup
  asks a bounded two-generation cache first and the ``seen`` table on a miss;
  while the cache has never evicted on a fresh job, a miss needs no query.
"""

from __future__ import annotations

import bisect
import heapq
import itertools
import logging
import time
from collections import deque
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

import orjson

from pooledcrawl.errors import UsageError
from pooledcrawl.frontier.codec import RequestCodec
from pooledcrawl.frontier.jobstats import restore_stats, stats_counters
from pooledcrawl.frontier.sqlite_db import (
    DB_NAME,
    PRIORITY_BIAS,
    SEQ_BITS,
    JobDB,
    SeenCache,
    job_exists,
    signed,
    url_fingerprint,
)
from pooledcrawl.frontier.sqlite_job import Checkpoints
from pooledcrawl.http.request import Request
from pooledcrawl.http.url import fingerprint

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable

    from pooledcrawl.settings import Settings
    from pooledcrawl.spider import Spider
    from pooledcrawl.stats import Stats


class _Crawler(Protocol):
    """What bind() needs of the crawler (``ext.Crawler``; typed here: the frontier
    sits below it)."""

    @property
    def stats(self) -> Stats: ...

    async def flush_items(self) -> None: ...


__all__ = [
    "DB_NAME",
    "SQLiteFrontier",
    "job_exists",
    "open_jobdir",
    "restore_stats",
    "stats_counters",
]

log = logging.getLogger("pooledcrawl.frontier.sqlite")

_FORMAT = 2
#: keys per generation of the in-memory dedup cache (two generations: ~25 MB at most)
_CACHE_GENERATION = 150_000
_INSERT_BUFFER = 1000


def open_jobdir(
    jobdir: str | Path,
    spider: Spider,
    settings: Settings,
    outputs: list[tuple[str, bool]],
    *,
    fresh: bool = False,
) -> tuple[SQLiteFrontier, list[tuple[str, bool]]]:
    """The frontier for ``--jobdir``, and the outputs to open: when the job is resumed,
    ``-O`` appends, since overwriting would throw away the items of the earlier runs."""
    if not fresh and job_exists(jobdir):
        for target, overwrite in outputs:
            if overwrite:
                log.info("resuming a job: appending to %s instead of overwriting it", target)
        outputs = [(target, False) for target, _ in outputs]
    # Half the workers per commit: a hard kill re-fetches at most that many pages
    # whose items had already reached the feed.
    batch = max(1, settings.concurrency // 2)
    return SQLiteFrontier(jobdir, spider, fresh=fresh, ack_batch=batch), outputs


class _Level:
    """One priority level: its in-memory window and where its rows on disk stand."""

    __slots__ = ("active", "base", "cursor", "end", "priority", "unloaded", "window")

    def __init__(self, priority: int) -> None:
        self.priority = priority
        self.active = False  # listed in SQLiteFrontier._active
        self.base = (priority + PRIORITY_BIAS) << SEQ_BITS  # key = base | seq
        self.end = self.base + (1 << SEQ_BITS)  # keys of the level are below this
        #: the highest key loaded into memory (or pushed straight into it)
        self.cursor = self.base - 1
        self.unloaded = 0  # rows on disk (or in the insert buffer) not loaded yet
        self.window: deque[Request] = deque()


class SQLiteFrontier:
    """The frontier of one job directory. Not shared: a lock file keeps a second
    process out while one runs."""

    def __init__(
        self,
        jobdir: str | Path,
        spider: Spider,
        *,
        fresh: bool = False,
        window: int = 1000,
        ack_batch: int = 32,
        checkpoint_interval: float = 0.2,
    ) -> None:
        self.on_ready: Callable[[], None] = _noop
        self.jobdir = Path(jobdir)
        self.path = self.jobdir / DB_NAME
        self._db = JobDB(self.jobdir)
        self._job = Checkpoints(
            self._db, spider, lambda: self._seq, ack_batch=ack_batch, interval=checkpoint_interval
        )
        self._spider = spider
        self._codec = RequestCodec(
            spider, store=f"{self.jobdir} (--jobdir)", restart=" --fresh starts over"
        )
        self._fresh = fresh
        self._window_size = max(1, window)
        self._levels: dict[int, _Level] = {}
        self._active: list[int] = []  # ascending priorities of levels with work; last first
        self._leases: dict[Request, int] = {}  # loaded request -> its row's key
        self._skip: set[int] = set()  # keys of rows loaded out of cursor order
        self._delayed: list[tuple[float, int, Request]] = []
        self._delayed_set: set[Request] = set()
        self._tiebreak = itertools.count()
        self._seen = SeenCache(self._db, _CACHE_GENERATION)
        self._reseeding = False
        self._seq = 0
        self._unloaded = 0
        self._in_window = 0
        self.resumed = False
        self.runs = 0

    @property
    def before_ack(self) -> Callable[[], Awaitable[None]] | None:
        """Awaited before acks are committed: the engine flushes its sinks here."""
        return self._job.before_ack

    @before_ack.setter
    def before_ack(self, value: Callable[[], Awaitable[None]] | None) -> None:
        self._job.before_ack = value

    @property
    def stats(self) -> Stats | None:
        """The engine's stats: restored on open, saved with every commit."""
        return self._job.stats

    @stats.setter
    def stats(self, value: Stats | None) -> None:
        self._job.stats = value

    @property
    def commits(self) -> int:
        return self._job.commits

    def bind(self, crawler: _Crawler) -> None:
        """``ext.Bound``: flush the crawl's sinks before each commit, and keep its stats
        in the job."""
        self.before_ack = crawler.flush_items
        self.stats = crawler.stats

    # ---- lifecycle -----------------------------------------------------------------
    async def open(self) -> None:
        try:
            self._open()
        except BaseException:
            self._release()
            raise
        self._job.start()

    def _open(self) -> None:
        db = self._db
        existed, meta = db.open(fresh=self._fresh)
        owner = meta.get("spider")
        name = self._spider.name
        if owner is not None and owner != name:
            raise UsageError(
                f"job dir {self.jobdir} belongs to spider {owner!r}, not {name!r}: "
                "use another --jobdir, or add --fresh to start over"
            )
        if int(meta.get("format", _FORMAT)) != _FORMAT:
            raise UsageError(f"job dir {self.jobdir} was made by another pooledcrawl version")
        self.resumed = existed and owner is not None
        self.runs = int(meta.get("runs", 0)) + 1
        self._reseeding = self.resumed
        db.begin()
        db.set_meta([("spider", name), ("format", _FORMAT), ("runs", self.runs)])
        db.commit()
        pending = 0
        top_seq = int(meta.get("seq", 0))
        for priority, count, max_seq in db.levels():
            level = self._level(priority)
            level.unloaded = count
            self._activate(level)
            pending += count
            top_seq = max(top_seq, max_seq + 1)
        self._seq = top_seq
        self._unloaded = pending
        if self.resumed:
            self._seen.exact = False  # earlier runs' fingerprints are on disk only
            self._job.load_state(meta)
        if self.stats is not None:
            restore_stats(self.stats, orjson.loads(meta["stats"]) if "stats" in meta else {})
            self.stats.extra["jobdir"] = {
                "path": str(self.jobdir),
                "run": self.runs,
                "resumed": self.resumed,
                "pending_at_start": pending,
            }
        if self.resumed:
            log.info(
                "resuming job %s (run %d): %d requests pending", self.jobdir, self.runs, pending
            )

    def _release(self) -> None:
        self._db.release()

    async def close(self) -> None:
        """Commit what is safe to commit and close."""
        await self._job.close()

    async def claim_seeding(self) -> bool:
        # Always: on a resumed job the start requests are checked against the
        # fingerprints on disk, so the ones already queued or crawled are skipped,
        # and seeding that a crash cut short is completed.
        return True

    def seeding_done(self) -> None:
        self._reseeding = False

    # ---- the synchronous engine-facing API -----------------------------------------
    def push(self, request: Request, canonical_url: str) -> bool:
        body = request.body
        if request.method != "GET" or body:
            key = hash((canonical_url, request.method, body))
            fp = signed(fingerprint(canonical_url, request.method, body))
        else:
            key = hash(canonical_url)
            fp = 0  # computed below, only for a request that is not a cached duplicate
        check = not request.dont_filter or (self._reseeding and request.depth == 0)
        if check and key in self._seen:
            return False
        url, callback, depth, extra = self._codec.columns(request)  # a UsageError changes nothing
        priority = request.priority
        level = self._levels.get(priority) or self._level(priority)
        if not self._seen.add(key, fp or url_fingerprint(canonical_url)) and check:
            return False
        row_key = level.base | self._seq
        self._seq += 1
        if (
            not level.unloaded
            and len(level.window) < self._window_size
            and request not in self._leases
        ):
            # Nothing of this level waits on disk: skip the round trip through it.
            level.window.append(request)
            level.cursor = row_key
            self._leases[request] = row_key
            self._in_window += 1
        else:
            level.unloaded += 1
            self._unloaded += 1
        if not level.active:
            self._activate(level)
        db = self._db
        if extra is None:
            db.inserts.append((row_key, url, callback, depth))
        else:
            db.inserts_full.append((row_key, url, callback, depth, 0.0, extra))
        if len(db.inserts) + len(db.inserts_full) >= _INSERT_BUFFER:
            db.flush_inserts()
        return True

    async def add_seen(self, canonical_url: str) -> bool:
        key = hash(canonical_url)
        if key in self._seen:
            return False
        return self._seen.add(key, url_fingerprint(canonical_url))

    def push_later(self, request: Request, not_before: float) -> None:
        due_wall = time.time() + max(0.0, not_before - time.monotonic())
        url, callback, depth, extra = self._codec.columns(request)
        self._db.begin()
        lease = self._leases.get(request)
        if lease is not None:
            self._db.set_retry(lease, due_wall, extra or b"")
        else:
            lease = self._level_of(request.priority).base | self._seq
            self._seq += 1
            self._db.inserts_full.append((lease, url, callback, depth, due_wall, extra or b""))
            self._skip.add(lease)
            self._leases[request] = lease
        heapq.heappush(self._delayed, (not_before, next(self._tiebreak), request))
        self._delayed_set.add(request)

    def pop(self, now: float) -> Request | None:
        delayed = self._delayed
        while delayed and delayed[0][0] <= now:
            request = heapq.heappop(delayed)[2]
            self._delayed_set.discard(request)
            level = self._levels.get(request.priority) or self._level(request.priority)
            level.window.append(request)
            self._in_window += 1
            self._activate(level)
        active = self._active
        while active:
            level = self._levels[active[-1]]
            if not level.window and level.unloaded:
                self._refill(level)
            if level.window:
                request = level.window.popleft()
                self._in_window -= 1
                if not level.window and not level.unloaded:
                    active.pop()
                    level.active = False
                return request
            if not level.unloaded:
                active.pop()
                level.active = False
        return None

    def ack(self, request: Request) -> None:
        if request in self._delayed_set:
            return  # re-queued for a retry: this ack ends the attempt, not the request
        lease = self._leases.pop(request, None)
        if lease is None:
            return
        self._job.ack(lease)

    def next_due(self) -> float | None:
        return self._delayed[0][0] if self._delayed else None

    def exhausted(self) -> bool:
        return not self._active and not self._delayed

    def __len__(self) -> int:
        return self._unloaded + self._in_window + len(self._delayed)

    async def checkpoint(self) -> None:
        """Flush the sinks, then commit new requests, acks, stats and state together."""
        await self._job.checkpoint()

    # ---- internals -----------------------------------------------------------------
    def _level(self, priority: int) -> _Level:
        if not -PRIORITY_BIAS <= priority < PRIORITY_BIAS:
            raise UsageError(
                f"request priority {priority} is out of range: with --jobdir, priorities "
                f"must be between {-PRIORITY_BIAS} and {PRIORITY_BIAS - 1}"
            )
        level = self._levels[priority] = _Level(priority)
        return level

    def _level_of(self, priority: int) -> _Level:
        return self._levels.get(priority) or self._level(priority)

    def _activate(self, level: _Level) -> None:
        if not level.active:
            level.active = True
            bisect.insort(self._active, level.priority)

    def _refill(self, level: _Level) -> None:
        want = min(self._window_size, level.unloaded)
        # a few more rows than wanted, in case some were loaded out of order already
        rows = self._db.rows(level.cursor, level.end, want + 16)
        wall = time.time()
        mono = time.monotonic()
        decode = self._codec.request
        priority = level.priority
        loaded = 0
        for key, url, callback, depth, not_before, extra in rows:
            if loaded == want:
                break
            level.cursor = key
            if key in self._skip:
                self._skip.discard(key)
                continue
            loaded += 1
            request = decode(url, callback, priority, depth, orjson.loads(extra) if extra else None)
            self._leases[request] = key
            if not_before > wall:
                due = mono + (not_before - wall)
                heapq.heappush(self._delayed, (due, next(self._tiebreak), request))
                self._delayed_set.add(request)
            else:
                level.window.append(request)
                self._in_window += 1
        level.unloaded -= loaded
        self._unloaded -= loaded
        if not rows and level.unloaded:
            log.error(
                "frontier lost track of %d rows at priority %d", level.unloaded, level.priority
            )
            self._unloaded -= level.unloaded
            level.unloaded = 0


def _noop() -> None:
    return None
