"""The database of a job directory, for :class:`~pooledcrawl.frontier.sqlite.SQLiteFrontier`.

One SQLite file in WAL mode, kept to one process by a lock file, written in one
open transaction at a time; new rows wait in buffers and go in by the batch.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import sqlite3
from collections.abc import Iterable
from hashlib import blake2b
from pathlib import Path
from typing import Any

from pooledcrawl.errors import UsageError

__all__ = [
    "DB_NAME",
    "PRIORITY_BIAS",
    "SEQ_BITS",
    "JobDB",
    "SeenCache",
    "job_exists",
    "signed",
    "url_fingerprint",
]

DB_NAME = "frontier.sqlite3"
_LOCK_NAME = "lock"
# A row's key is its priority (biased to be positive) in the high bits and a
# job-wide sequence number in the low ones: a plain rowid table then keeps each
# priority level's rows together, in FIFO order, with no index to maintain.
SEQ_BITS = 40
_SEQ_MASK = (1 << SEQ_BITS) - 1
PRIORITY_BIAS = 1 << 22
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
_LEVELS = (
    f"SELECT key >> {SEQ_BITS}, count(*), max(key & {_SEQ_MASK})"
    f" FROM requests GROUP BY key >> {SEQ_BITS}"
)


class JobDB:
    """The open database of ``jobdir``, and the rows waiting to be written to it."""

    def __init__(self, jobdir: Path) -> None:
        self.jobdir = jobdir
        self.path = jobdir / DB_NAME
        self.conn: sqlite3.Connection | None = None
        self.in_tx = False
        self._lock_fd: int | None = None
        #: rows of plain requests, and of the others (with ``not_before`` and ``extra``)
        self.inserts: list[tuple[int, str, str, int]] = []
        self.inserts_full: list[tuple[int, str, str, int, float, bytes]] = []
        self.seen_inserts: list[tuple[int]] = []

    # ---- opening and closing -------------------------------------------------------
    def open(self, *, fresh: bool) -> tuple[bool, dict[str, Any]]:
        """Lock the job dir and open its database (emptied first when ``fresh``):
        whether the file existed, and its ``meta`` table."""
        try:
            self.jobdir.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise UsageError(f"cannot create job dir {self.jobdir}: {exc.strerror}") from None
        self._lock()
        if fresh:
            for suffix in ("", "-wal", "-shm"):
                Path(f"{self.path}{suffix}").unlink(missing_ok=True)
        existed = self.path.is_file()
        try:
            db = self.conn = sqlite3.connect(self.path, isolation_level=None)
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
        return existed, meta

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

    def release(self) -> None:
        """Close without committing, and drop the lock."""
        if self.conn is not None:
            with contextlib.suppress(sqlite3.Error):
                if self.in_tx:
                    self.conn.execute("ROLLBACK")
                self.conn.close()
            self.conn = None
            self.in_tx = False
        if self._lock_fd is not None:
            os.close(self._lock_fd)  # closing drops the flock
            self._lock_fd = None

    # ---- transactions and writes ---------------------------------------------------
    def begin(self) -> None:
        if not self.in_tx:
            assert self.conn is not None
            self.conn.execute("BEGIN")
            self.in_tx = True

    def commit(self) -> None:
        if self.in_tx:
            assert self.conn is not None
            self.conn.execute("COMMIT")
            self.in_tx = False

    def flush_inserts(self) -> None:
        if self.inserts or self.inserts_full:
            assert self.conn is not None
            self.begin()
            self.conn.executemany(_INSERT, self.inserts)
            self.conn.executemany(_INSERT_FULL, self.inserts_full)
            self.inserts = []
            self.inserts_full = []
        self.flush_seen()

    def flush_seen(self) -> None:
        if self.seen_inserts:
            assert self.conn is not None
            self.begin()
            self.seen_inserts.sort()  # in key order, each B-tree page is written once
            self.conn.executemany(_SEEN, self.seen_inserts)
            self.seen_inserts = []

    def add_seen(self, fp: int) -> bool:
        """Add a fingerprint now (in the open transaction); False if the table had it."""
        assert self.conn is not None
        return bool(self.conn.execute(_SEEN, (fp,)).rowcount)

    def set_retry(self, key: int, due_wall: float, extra: bytes) -> None:
        """A row already written falls due at ``due_wall`` (epoch seconds), as ``extra``."""
        self.flush_inserts()  # the row may still be in the buffer
        assert self.conn is not None
        self.conn.execute(_RETRY, (due_wall, extra, key))

    def delete(self, keys: list[int]) -> None:
        assert self.conn is not None
        self.conn.executemany(_DELETE, [(key,) for key in keys])

    def set_meta(self, rows: Iterable[tuple[str, Any]]) -> None:
        assert self.conn is not None
        self.conn.executemany(_META, rows)

    # ---- reads ---------------------------------------------------------------------
    def levels(self) -> list[tuple[int, int, int]]:
        """``(priority, rows, highest sequence number)`` of each level on disk."""
        assert self.conn is not None
        return [
            (biased - PRIORITY_BIAS, count, max_seq)
            for biased, count, max_seq in self.conn.execute(_LEVELS)
        ]

    def rows(self, after: int, before: int, limit: int) -> list[Any]:
        """Up to ``limit`` rows with ``after < key < before``, in key order."""
        self.flush_inserts()
        assert self.conn is not None
        return self.conn.execute(_SELECT, (after, before, limit)).fetchall()


class SeenCache:
    """Dedup for a job: the ``seen`` table, asked through a bounded two-generation
    cache of Python hashes (``generation`` keys each). While the cache has never
    evicted on a fresh job it holds every fingerprint, so a miss needs no query."""

    __slots__ = ("_db", "_generation", "exact", "older", "recent")

    def __init__(self, db: JobDB, generation: int) -> None:
        self._db = db
        self._generation = generation
        self.recent: set[int] = set()
        self.older: set[int] = set()
        #: the cache holds every fingerprint the job has seen
        self.exact = True

    def __contains__(self, key: int) -> bool:
        return key in self.recent or key in self.older

    def add(self, key: int, fp: int) -> bool:
        """Add ``fp`` to the table (and ``key`` to the cache); False when the table had
        it already."""
        db = self._db
        if not db.in_tx:
            db.begin()
        new = True
        if self.exact:
            db.seen_inserts.append((fp,))
        else:
            new = db.add_seen(fp)
        recent = self.recent
        recent.add(key)
        if len(recent) >= self._generation:
            if self.exact:
                db.flush_seen()  # from now on a cache miss asks the table
                self.exact = False
            self.older = recent
            self.recent = set()
        return new


def job_exists(jobdir: str | Path) -> bool:
    """Whether ``jobdir`` holds a job that a run would resume."""
    return (Path(jobdir) / DB_NAME).is_file()


def signed(fp: int) -> int:
    """A 64-bit fingerprint as SQLite's signed INTEGER stores it."""
    return fp - (1 << 64) if fp >= 1 << 63 else fp


def url_fingerprint(canonical_url: str) -> int:
    """A GET's fingerprint as the table stores it: ``signed(fingerprint(url))``."""
    return int.from_bytes(
        blake2b(canonical_url.encode("utf-8", "surrogatepass"), digest_size=8).digest(),
        "big",
        signed=True,
    )
