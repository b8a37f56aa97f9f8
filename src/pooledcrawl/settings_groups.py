"""The nested groups of settings (``settings.postgres``, ``settings.http_cache``): their
fields with defaults and checks, and the old flat names (``pg_pool_size``) they answer to.

A component's settings live with each other here, apart from the flat ``Settings`` that
holds them, so each group reads as one unit and is checked on its own."""

from __future__ import annotations

import dataclasses
import functools

from pooledcrawl.errors import UsageError

__all__ = [
    "FLAT_PREFIXES",
    "GROUPS",
    "HttpCacheSettings",
    "PostgresSettings",
    "aliases",
    "check_positive",
]


def check_positive(settings: object, *keys: str, group: str = "") -> None:
    """A UsageError naming the first of ``keys`` whose value is not > 0."""
    for key in keys:
        value = getattr(settings, key)
        if value <= 0:
            name = f"{group}.{key}" if group else key
            raise UsageError(f"setting {name}: must be > 0, got {value}")


@dataclasses.dataclass(frozen=True, slots=True)
class PostgresSettings:
    """``settings.postgres``: the PostgreSQL sink's pool sizing, batches and timeouts.

    Each field was once a flat ``pg_*`` setting (``pg_pool_size``); that name still works."""

    workers: int = 1
    """Processes of a distributed job that each open a PostgreSQL pool (pool sizing)."""
    reserved: int = 10
    """Server connections left for admin and other clients (pool sizing)."""
    max_overflow: int = 2
    """Connections a pool may open above its size under a burst (pool sizing)."""
    pool_size: int | None = None
    """Connections per worker; None: the sizing formula's value, at most 4."""
    statement_cache_size: int = 100
    """asyncpg prepared-statement cache; 0 for PgBouncer in transaction mode."""
    batch_size: int = 500
    """Rows per insert batch."""
    flush_interval: float = 1.0
    """Seconds a row may wait in a partial batch."""
    command_timeout: float = 30.0
    """Client-side timeout of one statement, in seconds."""
    statement_timeout: float = 30.0
    """Server-side ``statement_timeout``, in seconds."""
    idle_check: float = 30.0
    """A connection idle this long (seconds) is checked with ``SELECT 1`` before use."""
    retry_timeout: float = 120.0
    """How long (seconds) a batch is retried while the server is unreachable; after that its
    rows are saved to a local JSON-lines file instead."""
    monitor: bool = False
    """Sample ``pg_stat_activity`` and warn on a saturated pool or idle transactions."""
    monitor_interval: float = 30.0
    """Seconds between two samples of the monitor."""

    def __post_init__(self) -> None:
        check_positive(
            self,
            *("workers", "batch_size", "flush_interval", "command_timeout"),
            *("statement_timeout", "retry_timeout", "monitor_interval"),
            group="postgres",
        )
        for key in ("reserved", "max_overflow", "statement_cache_size", "idle_check"):
            if getattr(self, key) < 0:
                raise UsageError(f"setting postgres.{key}: must be >= 0, got {getattr(self, key)}")
        if self.pool_size is not None and self.pool_size <= 0:
            raise UsageError(f"setting postgres.pool_size: must be > 0, got {self.pool_size}")


@dataclasses.dataclass(frozen=True, slots=True)
class HttpCacheSettings:
    """``settings.http_cache``: the development cache (``--cache``, ``--cache-mode``).

    Each field was once a flat ``http_cache_*`` setting (``http_cache_dir``); that name
    still works."""

    dir: str | None = None
    """Store every response under this folder and replay it on later runs (``--cache``)."""
    mode: str = "normal"
    """``normal`` serves fresh entries and fetches the rest; ``refresh`` always fetches and
    stores; ``offline`` never touches the network, and a miss fails (``--cache-mode``)."""
    expiration: float = 0.0
    """Seconds a stored response is served; 0: forever."""
    ignore_http_codes: list[int] = dataclasses.field(default_factory=list)
    """Statuses that are never stored."""

    def __post_init__(self) -> None:
        if self.mode not in ("normal", "refresh", "offline"):
            raise UsageError(
                f"setting http_cache.mode: expected normal, refresh or offline, got {self.mode!r}"
            )
        if self.expiration < 0:
            raise UsageError("setting http_cache.expiration: must be >= 0")


#: nested groups of settings: the Settings field, and the prefix its fields had when they
#: were flat settings (``pg_batch_size`` is ``postgres.batch_size``); the old names work
FLAT_PREFIXES: dict[str, str] = {"postgres": "pg_", "http_cache": "http_cache_"}
GROUPS: dict[str, type[PostgresSettings] | type[HttpCacheSettings]] = {
    "postgres": PostgresSettings,
    "http_cache": HttpCacheSettings,
}


@functools.cache
def aliases() -> dict[str, str]:
    """The old flat names of nested settings: ``pg_pool_size`` -> ``postgres.pool_size``."""
    return {
        f"{FLAT_PREFIXES[group]}{f.name}": f"{group}.{f.name}"
        for group, cls in GROUPS.items()
        for f in dataclasses.fields(cls)
    }
