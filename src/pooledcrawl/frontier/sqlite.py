"""A crash-safe frontier in one SQLite database: what ``--jobdir DIR`` selects.

One database in WAL mode holds the pending requests, the dedup fingerprints, the
wall-clock due times of retries, the spider's ``state`` dict and the stats
counters, so re-running the same command carries on where the last run stopped.

- **Leases, not pops.** A request stays in the table from the moment it is
  queued until its callback has completed and its items are flushed. The rows a
  process has loaded are its leases; after a crash every row is pending again,
  so what was in flight is fetched again and nothing is lost.
- **Items and requests durable together.** New requests are written into the
  open transaction as they are found. Acks are batched: a checkpoint takes the
  acks gathered so far, awaits ``before_ack`` (the engine flushes its sinks
  there), then deletes those rows and saves the stats in one commit. Acks that
  arrive during the flush wait for the next checkpoint. A checkpoint is due
  every ``ack_batch`` acks, so a hard kill re-fetches at most about that many
  completed pages whose items already reached the feed.
- **Bounded memory.** Only a window of each priority level is in memory. Dedup
  asks a bounded two-generation cache first and the ``seen`` table on a miss;
  while the cache has never evicted on a fresh job, a miss needs no query.
"""

from __future__ import annotations

import asyncio
import bisect
import contextlib
import fcntl
import heapq
import itertools
import logging
import os
import sqlite3
import time
from collections import deque
from collections.abc import Awaitable, Callable
from hashlib import blake2b
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

import orjson

from pooledcrawl.errors import UsageError
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

DB_NAME = "frontier.sqlite3"
_LOCK_NAME = "lock"
_FORMAT = 2
# A row's key is its priority (biased to be positive) in the high bits and a
# job-wide sequence number in the low ones: a plain rowid table then keeps each
# priority level's rows together, in FIFO order, with no index to maintain.
_SEQ_BITS = 40
_SEQ_MASK = (1 << _SEQ_BITS) - 1
_PRIORITY_BIAS = 1 << 22
_SCHEMA = """
CREATE TABLE IF NOT EXISTS requests (
    key INTEGER PRIMARY KEY,
    url TEXT NOT NULL,
    callback TEXT NOT NULL,
    depth INTEGER NOT NULL,
    not_before REAL NOT NULL DEFAULT 0,
    extra BLOB
);
CREATE TABLE IF NOT EXISTS seen (fp INTEGER PRIMARY KEY);
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value BLOB);
"""
# Parameters are never None: Python's sqlite3 binds None through a slow path.
_INSERT = "INSERT INTO requests (key, url, callback, depth) VALUES (?, ?, ?, ?)"
_INSERT_FULL = (
    "INSERT INTO requests (key, url, callback, depth, not_before, extra) VALUES (?, ?, ?, ?, ?, ?)"
)
_DELETE = "DELETE FROM requests WHERE key = ?"
_SEEN = "INSERT OR IGNORE INTO seen (fp) VALUES (?)"
_META = "INSERT OR REPLACE INTO meta (key, value) VALUES (?, ?)"
_SELECT = (
    "SELECT key, url, callback, depth, not_before, extra FROM requests"
    " WHERE key > ? AND key < ? ORDER BY key LIMIT ?"
)
_RETRY = "UPDATE requests SET not_before = ?, extra = ? WHERE key = ?"
#: keys per generation of the in-memory dedup cache (two generations: ~25 MB at most)
_CACHE_GENERATION = 150_000
_INSERT_BUFFER = 1000
#: Stats keys that are maxima: a resumed run keeps the larger.
_MAXIMA = frozenset({"request_depth_max"})
#: Stats keys that describe one run rather than count work; never carried over.
_NOT_COUNTERS = frozenset(
    {"jobdir", "sinks", "pipelines", "invalid_url_samples", "domains", "timeline"}
)


def job_exists(jobdir: str | Path) -> bool:
    """Whether ``jobdir`` holds a job that a run would resume."""
    return (Path(jobdir) / DB_NAME).is_file()


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
        self.base = (priority + _PRIORITY_BIAS) << _SEQ_BITS  # key = base | seq
        self.end = self.base + (1 << _SEQ_BITS)  # keys of the level are below this
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
        #: awaited before acks are committed: the crawl's sinks flush here (see bind)
        self.before_ack: Callable[[], Awaitable[None]] | None = None
        #: the engine's stats: restored on open, saved with every commit
        self.stats: Stats | None = None
        self.jobdir = Path(jobdir)
        self.path = self.jobdir / DB_NAME
        self._spider = spider
        self._names: dict[Any, str] = {}  # function -> name, for validated callbacks
        self._methods: dict[str, Any] = {}  # name -> bound method, for stored callbacks
        self._fresh = fresh
        self._window_size = max(1, window)
        self._ack_batch = max(1, ack_batch)
        self._interval = checkpoint_interval
        self._db: sqlite3.Connection | None = None
        self._lock_fd: int | None = None
        self._in_tx = False
        self._levels: dict[int, _Level] = {}
        self._active: list[int] = []  # ascending priorities of levels with work; last first
        self._leases: dict[Request, int] = {}  # loaded request -> its row's key
        self._skip: set[int] = set()  # keys of rows loaded out of cursor order
        self._delayed: list[tuple[float, int, Request]] = []
        self._delayed_set: set[Request] = set()
        self._tiebreak = itertools.count()
        self._inserts: list[tuple[int, str, str, int]] = []
        self._inserts_full: list[tuple[int, str, str, int, float, bytes]] = []
        self._seen_inserts: list[tuple[int]] = []
        self._acks: list[int] = []
        self._recent: set[int] = set()
        self._older: set[int] = set()
        self._exact = True  # the cache holds every fingerprint the job has seen
        self._reseeding = False
        self._seq = 0
        self._unloaded = 0
        self._in_window = 0
        self._kick = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._state_saved: bytes = b"{}"
        self._state_error: UsageError | None = None
        self._failing = False
        self.resumed = False
        self.runs = 0
        self.commits = 0

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
        self._task = asyncio.create_task(self._checkpoints(), name="sqlite-frontier")

    def _open(self) -> None:
        try:
            self.jobdir.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise UsageError(f"cannot create job dir {self.jobdir}: {exc.strerror}") from None
        self._lock()
        if self._fresh:
            for suffix in ("", "-wal", "-shm"):
                Path(f"{self.path}{suffix}").unlink(missing_ok=True)
        existed = self.path.is_file()
        try:
            db = self._db = sqlite3.connect(self.path, isolation_level=None)
            db.execute("PRAGMA journal_mode=WAL")
            # A commit survives the process being killed; only a power cut may lose
            # the last moments, and the feed file is not fsynced either.
            db.execute("PRAGMA synchronous=NORMAL")
            db.execute("PRAGMA cache_size=-16000")
            db.executescript(_SCHEMA)
            meta = dict(db.execute("SELECT key, value FROM meta").fetchall())
        except sqlite3.DatabaseError as exc:
            raise UsageError(
                f"job dir {self.jobdir}: unreadable frontier database: {exc}"
            ) from None
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
        self._begin()
        db.executemany(_META, [("spider", name), ("format", _FORMAT), ("runs", self.runs)])
        self._commit_tx()
        pending = 0
        top_seq = int(meta.get("seq", 0))
        for biased, count, max_seq in db.execute(
            f"SELECT key >> {_SEQ_BITS}, count(*), max(key & {_SEQ_MASK})"
            f" FROM requests GROUP BY key >> {_SEQ_BITS}"
        ):
            level = self._level(biased - _PRIORITY_BIAS)
            level.unloaded = count
            self._activate(level)
            pending += count
            top_seq = max(top_seq, max_seq + 1)
        self._seq = top_seq
        self._unloaded = pending
        if self.resumed:
            self._exact = False  # earlier runs' fingerprints are on disk only
            self._load_state(meta)
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

    def _load_state(self, meta: dict[str, Any]) -> None:
        raw = meta.get("state")
        if raw is None:
            return
        state = orjson.loads(raw)
        if isinstance(state, dict):
            self._spider.state.update(state)
            self._state_saved = bytes(raw)

    def _lock(self) -> None:
        fd = os.open(self.jobdir / _LOCK_NAME, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.read(fd, 32).decode(errors="replace").strip() or "?"
            os.close(fd)
            raise UsageError(
                f"job dir {self.jobdir} is in use by another running crawl (pid {holder})"
            ) from None
        os.ftruncate(fd, 0)
        os.write(fd, str(os.getpid()).encode())
        self._lock_fd = fd

    def _release(self) -> None:
        if self._db is not None:
            with contextlib.suppress(sqlite3.Error):
                if self._in_tx:
                    self._db.execute("ROLLBACK")
                self._db.close()
            self._db = None
            self._in_tx = False
        if self._lock_fd is not None:
            os.close(self._lock_fd)  # closing drops the flock
            self._lock_fd = None

    async def close(self) -> None:
        """Commit what is safe to commit and close. The engine closes its sinks before
        this runs, so the acks gathered since the last checkpoint are durable."""
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        if self._db is None:
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
            self._release()
        if self._state_error is not None:
            raise self._state_error

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
            fp = _signed(fingerprint(canonical_url, request.method, body))
        else:
            key = hash(canonical_url)
            fp = 0  # computed below, only for a request that is not a cached duplicate
        check = not request.dont_filter or (self._reseeding and request.depth == 0)
        if check and (key in self._recent or key in self._older):
            return False
        url, callback, depth, extra = self._encode(request)  # a UsageError changes nothing
        priority = request.priority
        level = self._levels.get(priority) or self._level(priority)
        if not self._record_seen(key, fp or _url_fingerprint(canonical_url)) and check:
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
        if extra is None:
            self._inserts.append((row_key, url, callback, depth))
        else:
            self._inserts_full.append((row_key, url, callback, depth, 0.0, extra))
        if len(self._inserts) + len(self._inserts_full) >= _INSERT_BUFFER:
            self._flush_inserts()
        return True

    async def add_seen(self, canonical_url: str) -> bool:
        key = hash(canonical_url)
        if key in self._recent or key in self._older:
            return False
        return self._record_seen(key, _url_fingerprint(canonical_url))

    def _record_seen(self, key: int, fp: int) -> bool:
        """Add a fingerprint to the table (and ``key`` to the cache); False when the
        table had it already."""
        if not self._in_tx:
            self._begin()
        new = True
        if self._exact:
            self._seen_inserts.append((fp,))
        else:
            assert self._db is not None
            new = bool(self._db.execute(_SEEN, (fp,)).rowcount)
        self._remember(key)
        return new

    def push_later(self, request: Request, not_before: float) -> None:
        due_wall = time.time() + max(0.0, not_before - time.monotonic())
        url, callback, depth, extra = self._encode(request)
        self._begin()
        lease = self._leases.get(request)
        if lease is not None:
            self._flush_inserts()  # the row may still be in the buffer
            assert self._db is not None
            self._db.execute(_RETRY, (due_wall, extra or b"", lease))
        else:
            lease = self._level_of(request.priority).base | self._seq
            self._seq += 1
            self._inserts_full.append((lease, url, callback, depth, due_wall, extra or b""))
            self._skip.add(lease)
            self._leases[request] = lease
        heapq.heappush(self._delayed, (not_before, next(self._tiebreak), request))
        self._delayed_set.add(request)

    # ---- row encoding --------------------------------------------------------------
    def _encode(self, request: Request) -> tuple[str, str, int, bytes | None]:
        """(url, callback name or "", depth, extra): the rest goes to ``extra`` as
        orjson, and only when some of it is set."""
        callback = request.callback
        name = "" if callback is None else self._name_of(callback, "callback", request.url)
        if not (
            request.method == "GET"
            and not request.headers
            and not request.body
            and not request._meta
            and not request._cb_kwargs
            and request.errback is None
            and not request.dont_filter
            and not request.attempts
            and not request.retries
        ):
            return request.url, name, request.depth, self._extra(request)
        return request.url, name, request.depth, None

    def _extra(self, request: Request) -> bytes:
        extra: dict[str, Any] = {}
        if request.method != "GET":
            extra["m"] = request.method
        if request.headers:
            extra["h"] = request.headers
        if request.body:
            extra["b"] = request.body.decode("latin-1")
        if request._meta:
            extra["mt"] = request._meta
        if request._cb_kwargs:
            extra["k"] = request._cb_kwargs
        if request.errback is not None:
            extra["e"] = self._name_of(request.errback, "errback", request.url)
        if request.dont_filter:
            extra["df"] = 1
        if request.attempts or request.retries:
            extra["a"] = [request.attempts, request.retries]
        try:
            return orjson.dumps(extra)
        except TypeError as exc:
            raise UsageError(
                f"the request to {request.url} cannot be stored in {self.jobdir}: its meta, "
                f"cb_kwargs or headers hold a value JSON cannot represent ({exc})"
            ) from None

    def _name_of(self, func: Any, role: str, url: str) -> str:
        """The spider method ``func`` is, by name; a UsageError if it is not one."""
        spider = self._spider
        if getattr(func, "__self__", None) is spider:
            name = self._names.get(getattr(func, "__func__", None))
            if name is not None:
                return name
        name = getattr(func, "__name__", None)
        if (
            name is None
            or getattr(func, "__self__", None) is not spider
            or getattr(spider, name, None) != func
        ):
            raise UsageError(
                f"the {role} of a request to {url} is {func!r}: with --jobdir, {role}s are "
                f"stored by name, so they must be methods of {type(spider).__name__}"
            )
        self._names[func.__func__] = name
        return str(name)

    def _decode(self, url: str, callback: str, depth: int, extra: bytes | None) -> Request:
        if not extra:
            request = Request(url, self._method(callback) if callback else None)
        else:
            data = orjson.loads(extra)
            body = data.get("b")
            attempts, retries = data.get("a", (0, 0))
            request = Request(
                url,
                self._method(callback) if callback else None,
                method=data.get("m", "GET"),
                headers=data.get("h"),
                body=None if body is None else body.encode("latin-1"),
                meta=data.get("mt"),
                cb_kwargs=data.get("k"),
                dont_filter=bool(data.get("df")),
                errback=None if "e" not in data else self._method(data["e"]),
            )
            request.attempts, request.retries = attempts, retries
        request.depth = depth
        return request

    def _method(self, name: str) -> Any:
        method = self._methods.get(name)
        if method is None:
            method = getattr(self._spider, name, None)
            if method is None or not callable(method):
                raise UsageError(
                    f"a request stored in {self.jobdir} names the callback {name!r}, which "
                    f"{type(self._spider).__name__} does not have (was the spider changed "
                    "since the job started? --fresh starts over)"
                )
            self._methods[name] = method
        return method

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
        self._acks.append(lease)
        if len(self._acks) >= self._ack_batch:
            self._kick.set()

    def next_due(self) -> float | None:
        return self._delayed[0][0] if self._delayed else None

    def exhausted(self) -> bool:
        return not self._active and not self._delayed

    def __len__(self) -> int:
        return self._unloaded + self._in_window + len(self._delayed)

    # ---- checkpoints ---------------------------------------------------------------
    async def _checkpoints(self) -> None:
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
        if self._db is None or not (self._acks or self._in_tx):
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
        assert db is not None
        self._begin()
        self._flush_inserts()
        if acks:
            db.executemany(_DELETE, [(key,) for key in acks])
        rows: list[tuple[str, Any]] = [("seq", self._seq)]
        if snapshot is not None:
            rows.append(("stats", snapshot))
        state = self._dump_state()  # with every commit: keep spider.state small
        if state is not None and state != self._state_saved:
            rows.append(("state", state))
            self._state_saved = state
        db.executemany(_META, rows)
        self._commit_tx()
        self.commits += 1

    def _dump_state(self) -> bytes | None:
        try:
            return orjson.dumps(self._spider.state, option=orjson.OPT_NON_STR_KEYS)
        except TypeError as exc:
            if self._state_error is None:
                log.error("spider.state is not saved: it holds a value JSON cannot represent")
            self._state_error = UsageError(
                f"spider.state could not be saved in {self.jobdir}: it holds a value JSON "
                f"cannot represent ({exc})"
            )
            return None

    def _snapshot(self) -> bytes | None:
        if self.stats is None:
            return None
        return orjson.dumps(stats_counters(self.stats), option=orjson.OPT_NON_STR_KEYS)

    # ---- internals -----------------------------------------------------------------
    def _level(self, priority: int) -> _Level:
        if not -_PRIORITY_BIAS <= priority < _PRIORITY_BIAS:
            raise UsageError(
                f"request priority {priority} is out of range: with --jobdir, priorities "
                f"must be between {-_PRIORITY_BIAS} and {_PRIORITY_BIAS - 1}"
            )
        level = self._levels[priority] = _Level(priority)
        return level

    def _level_of(self, priority: int) -> _Level:
        return self._levels.get(priority) or self._level(priority)

    def _activate(self, level: _Level) -> None:
        if not level.active:
            level.active = True
            bisect.insort(self._active, level.priority)

    def _remember(self, key: int) -> None:
        recent = self._recent
        recent.add(key)
        if len(recent) >= _CACHE_GENERATION:
            if self._exact:
                self._flush_seen()  # from now on a cache miss asks the table
                self._exact = False
            self._older = recent
            self._recent = set()

    def _refill(self, level: _Level) -> None:
        self._flush_inserts()
        assert self._db is not None
        want = min(self._window_size, level.unloaded)
        # a few more rows than wanted, in case some were loaded out of order already
        rows = self._db.execute(_SELECT, (level.cursor, level.end, want + 16)).fetchall()
        wall = time.time()
        mono = time.monotonic()
        decode = self._decode
        loaded = 0
        for key, url, callback, depth, not_before, extra in rows:
            if loaded == want:
                break
            level.cursor = key
            if key in self._skip:
                self._skip.discard(key)
                continue
            loaded += 1
            request = decode(url, callback, depth, extra)
            request.priority = level.priority
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

    def _begin(self) -> None:
        if not self._in_tx:
            assert self._db is not None
            self._db.execute("BEGIN")
            self._in_tx = True

    def _commit_tx(self) -> None:
        if self._in_tx:
            assert self._db is not None
            self._db.execute("COMMIT")
            self._in_tx = False

    def _execute(self, sql: str, params: tuple[Any, ...]) -> sqlite3.Cursor:
        assert self._db is not None
        return self._db.execute(sql, params)

    def _flush_inserts(self) -> None:
        if self._inserts or self._inserts_full:
            assert self._db is not None
            self._begin()
            self._db.executemany(_INSERT, self._inserts)
            self._db.executemany(_INSERT_FULL, self._inserts_full)
            self._inserts = []
            self._inserts_full = []
        self._flush_seen()

    def _flush_seen(self) -> None:
        if self._seen_inserts:
            assert self._db is not None
            self._begin()
            self._seen_inserts.sort()  # in key order, each B-tree page is written once
            self._db.executemany(_SEEN, self._seen_inserts)
            self._seen_inserts = []


_SCALARS = (
    "requests",
    "pages",
    "items",
    "retries",
    "failed",
    "duplicates_filtered",
    "links_skipped",
)


def stats_counters(stats: Stats) -> dict[str, Any]:
    """The counters of ``stats`` that add up across runs of a job."""
    keep: dict[str, Any] = {key: getattr(stats, key) for key in _SCALARS}
    keep["max_inflight"] = stats.max_inflight
    keep["status_counts"] = stats.status_counts
    keep["errors"] = stats.errors
    keep["http_versions"] = stats.http_versions
    for key, value in stats.extra.items():
        if key not in _NOT_COUNTERS and _is_counter(value):
            keep[key] = value
    return keep


def restore_stats(stats: Stats, saved: dict[str, Any]) -> None:
    """Add the counters of earlier runs (from :func:`stats_counters`) into ``stats``."""
    for key in _SCALARS:
        setattr(stats, key, getattr(stats, key) + int(saved.get(key, 0)))
    stats.max_inflight = max(stats.max_inflight, int(saved.get("max_inflight", 0)))
    for status, count in saved.get("status_counts", {}).items():
        stats.status_counts[int(status)] += count
    for key, named in (("errors", stats.errors), ("http_versions", stats.http_versions)):
        for name, count in saved.get(key, {}).items():
            named[name] += count
    known = {*_SCALARS, "max_inflight", "status_counts", "errors", "http_versions"}
    for key, value in saved.items():
        if key in _MAXIMA:
            stats.extra[key] = max(stats.extra.get(key, 0), value)
        elif key not in known and key not in _NOT_COUNTERS:
            stats.extra[key] = _add(stats.extra.get(key), value)


def _is_counter(value: Any) -> bool:
    if isinstance(value, bool):
        return False
    if isinstance(value, int):
        return True
    return isinstance(value, dict) and all(
        isinstance(v, int) and not isinstance(v, bool) for v in value.values()
    )


def _add(current: Any, saved: Any) -> Any:
    if current is None:
        return saved
    if isinstance(current, int) and isinstance(saved, int):
        return current + saved
    if isinstance(current, dict) and isinstance(saved, dict):
        merged = dict(current)
        for key, value in saved.items():
            merged[key] = merged.get(key, 0) + value
        return merged
    return current


def _signed(fp: int) -> int:
    return fp - (1 << 64) if fp >= 1 << 63 else fp


def _noop() -> None:
    return None


def _url_fingerprint(canonical_url: str) -> int:
    """A GET's fingerprint as the table stores it: ``_signed(fingerprint(url))``."""
    return int.from_bytes(
        blake2b(canonical_url.encode("utf-8", "surrogatepass"), digest_size=8).digest(),
        "big",
        signed=True,
    )
