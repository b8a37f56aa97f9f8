"""Typed, layered settings: defaults < profile < spider ``custom_settings`` < command line.

Every key is a field of :class:`Settings`, so an unknown key or a value of the
wrong type is caught before the crawl starts, with a message naming the key.
"""

from __future__ import annotations

import dataclasses
import difflib
import functools
import re
import types
from collections.abc import Mapping
from typing import Any, Union, get_args, get_origin, get_type_hints

import orjson

from pooledcrawl._version import __version__
from pooledcrawl.errors import UsageError

__all__ = ["Settings"]

#: the values of the ``transport`` setting
TRANSPORTS = ("auto", "aiohttp", "httpx", "curl")
DEFAULT_USER_AGENT = f"pooledcrawl/{__version__} (+https://pooledcrawl.dev/bot)"


@dataclasses.dataclass(frozen=True, slots=True)
class Settings:
    # Concurrency
    concurrency: int = 64
    """Global cap on requests in flight (the number of engine workers)."""
    domain_concurrency: int | None = None
    """Per-domain starting cap; the fixed cap with ``autothrottle`` off. None: ``concurrency``."""
    domain_concurrency_max: int | None = None
    """Ceiling the adaptive controller may rise to. None: ``concurrency``."""
    autothrottle: bool = True
    """Adapt each domain's rate and concurrency to its 429s; off gives a fixed cap."""
    retry_after_cap: float = 120.0
    """Longest pause a Retry-After header may impose, in seconds."""
    autothrottle_slow_start: float = 2.0
    """Until a domain's first 429: per-domain concurrency growth factor per round trip."""
    autothrottle_probe: float = 0.01
    """After it: rate step per round trip, as a share of the rate where 429s began."""
    autothrottle_backoff: float = 0.9
    """On a 429: the new rate as a share of what the server accepted."""
    politeness_key: str = "host"
    """What shares one limit: ``host`` (host:port) or ``domain`` (the registered domain,
    eTLD+1, so ``a.example.com`` and ``b.example.com`` share one, as Scrapy's per-IP
    slots roughly give)."""
    slot_idle_timeout: float = 5.0
    """Seconds a domain's slot stays live with nothing to do; then it is folded into the
    per-host aggregates, keeping only its learned rate (broad crawls stay bounded)."""
    max_idle_slots: int = 256
    """Idle slots kept at most; past it the longest idle are folded first."""
    top_hosts: int = 50
    """Hosts kept in full detail in the stats, per ranking (pages, errors, 429s)."""

    # Transport
    http2: bool = False
    """Offer HTTP/2 (TLS ALPN; HTTP/1.1 per server that declines it)."""
    transport: str = "auto"
    """``aiohttp`` | ``httpx`` | ``curl``; ``auto``: aiohttp for HTTP/1.1, and for HTTP/2
    or ``impersonate`` curl when installed (``pooledcrawl[curl]``), else httpx."""
    impersonate: str | None = None
    """A browser curl_cffi can impersonate (``chrome``, ``firefox``, ``safari``, or a
    versioned name such as ``chrome131``): its TLS and HTTP/2 fingerprint and default
    headers, over the curl transport. A request's ``meta["impersonate"]`` overrides it."""
    connector_limit: int | None = None
    """aiohttp ``limit``; None derives it from concurrency (Little's Law, +30%)."""
    connector_limit_per_host: int | None = None
    keepalive_timeout: float = 60.0
    max_idle_connections: int | None = None
    """Kept-alive connections held idle at most per session (aiohttp); past it the least
    recently used close first. None: ``connector_limit``. A broad crawl leaves a few
    connections behind on each host it finishes, and they would otherwise stay until
    ``keepalive_timeout``."""
    ttl_dns_cache: int = 300
    """Longest time a DNS answer is kept (each is kept for its own TTL, up to this)."""
    dns_servers: list[str] = dataclasses.field(default_factory=list)
    """DNS servers to ask (``["127.0.0.1:5353"]``) through c-ares; empty: the system's."""
    dns_negative_ttl: float = 30.0
    """Seconds a name that failed to resolve is not asked again (RFC 2308 negative caching)."""
    timeout_total: float = 60.0
    timeout_connect: float = 10.0
    timeout_sock_connect: float = 10.0
    timeout_sock_read: float = 30.0
    max_response_size: int = 32 * 1024 * 1024
    max_redirects: int = 10
    insecure: bool = False
    ca_bundle: str | None = None
    user_agent: str = DEFAULT_USER_AGENT
    default_headers: dict[str, str] = dataclasses.field(default_factory=dict)
    cookies: bool = True

    # Retries
    max_retries: int = 3
    retry_backoff_base: float = 0.5
    retry_backoff_cap: float = 30.0
    retry_http_codes: list[int] = dataclasses.field(
        default_factory=lambda: [408, 429, 500, 502, 503, 504, 522, 524]
    )

    # Proxies (the proxy URLs are not settings: they may carry credentials; they come
    # from the profile's [proxy] section, --proxy or --proxy-file)
    proxy_concurrency: int | None = None
    """Cap on requests in flight through one proxy (static IPs: the per-IP limit). None: no cap."""
    ban_statuses: list[int] = dataclasses.field(default_factory=lambda: [403])
    """Statuses meaning the proxy's IP is banned: the proxy rests, the request tries another."""
    proxy_backoff_base: float = 1.0
    """A failing proxy rests uniform(0, min(cap, base * 2**n)) seconds after its n-th failure."""
    proxy_backoff_cap: float = 120.0
    proxy_down_timeout: float = 300.0
    """Seconds every proxy may be down before the crawl stops (exit 3); queued work is kept."""

    # Block detection (see pooledcrawl.proxy.blocks)
    ban_patterns: list[str] = dataclasses.field(default_factory=list)
    """Regexes (case-insensitive) over a page's first ``ban_scan_bytes``: a match is a block
    (a CAPTCHA or "access denied" page served with a 200)."""
    ban_challenge_paths: list[str] = dataclasses.field(default_factory=list)
    """A redirect that lands on one of these paths (``/challenge``) is a block."""
    ban_empty_body: bool = False
    """An empty 2xx body to a GET is a block."""
    ban_scan_bytes: int = 16384
    max_block_retries: int = 10
    """Retries on a fresh session (or after a pause) a blocked request gets before its
    retry budget is used."""

    # Cost (see pooledcrawl.proxy.cost)
    price_per_gb: float = 0.0
    """What the proxy provider bills per GB on the wire (both ways)."""
    price_per_request: float = 0.0
    budget: float | None = None
    """Stop cleanly (items flushed, resumable with --jobdir) before the cost would pass this."""

    # Crawl limits and hygiene
    max_pages: int | None = None
    max_items: int | None = None
    max_duration: float | None = None
    close_on_errors: int | None = None
    max_depth: int | None = None
    depth_priority: int = 0
    drop_tracking_params: bool = False
    obey_robots: bool = False
    """Fetch each host's robots.txt first and obey it (off in the engine, on in the examples)."""
    robots_user_agent: str | None = None
    """The name matched against robots.txt ``User-agent:`` lines; None: the first word of
    ``user_agent`` (``pooledcrawl``)."""
    robots_timeout: float = 10.0
    """Seconds a robots.txt fetch may take; longer counts as unreachable."""
    robots_retry_delay: float = 60.0
    """After a robots.txt timeout, 429 or 5xx: seconds without crawling the host, then retry."""

    # Distributed jobs (Redis)
    lease_timeout: float = 60.0
    """Seconds a claimed request may go unacknowledged before another worker takes it
    over (live workers keep their leases fresh, so only a dead worker's expire)."""
    redis_dedup_bits: int = 0
    """0: exact dedup set in Redis (~70 bytes per URL); N: a fixed N-bit Bloom filter."""

    # Items
    pipelines: list[str] = dataclasses.field(default_factory=list)
    """Pipeline classes in order: ``pkg.mod.Class`` or a built-in (Dedupe, RequireFields,
    Validate); they run after the spider's own ``pipelines``."""
    item_model: str | None = None
    """``pkg.mod:Class``, a dataclass or pydantic model: what ``Validate`` checks, and the
    typed columns of a PostgreSQL table (dataclass). The spider's ``item_model`` also works."""
    dedupe_field: str = "url"
    """The field the ``Dedupe`` pipeline drops repeats of."""
    required_fields: list[str] = dataclasses.field(default_factory=list)
    """Fields ``RequireFields`` drops an item without (missing, None or empty)."""
    csv_fields: list[str] = dataclasses.field(default_factory=list)
    """CSV columns, in order; empty: the keys of the first item."""
    pg_workers: int = 1
    """Processes of a distributed job that each open a PostgreSQL pool (pool sizing)."""
    pg_reserved: int = 10
    """Server connections left for admin and other clients (pool sizing)."""
    pg_max_overflow: int = 2
    """Connections a pool may open above its size under a burst (pool sizing)."""
    pg_pool_size: int | None = None
    """Connections per worker; None: the sizing formula's value, at most 4."""
    pg_statement_cache_size: int = 100
    """asyncpg prepared-statement cache; 0 for PgBouncer in transaction mode."""
    pg_batch_size: int = 500
    """Rows per insert batch."""
    pg_flush_interval: float = 1.0
    """Seconds a row may wait in a partial batch."""
    pg_command_timeout: float = 30.0
    """Client-side timeout of one statement, in seconds."""
    pg_statement_timeout: float = 30.0
    """Server-side ``statement_timeout``, in seconds."""
    pg_idle_check: float = 30.0
    """A connection idle this long (seconds) is checked with ``SELECT 1`` before use."""
    pg_retry_timeout: float = 120.0
    """How long (seconds) a batch is retried while the server is unreachable; after that its
    rows are saved to a local JSON-lines file instead."""
    pg_monitor: bool = False
    """Sample ``pg_stat_activity`` and warn on a saturated pool or idle transactions."""
    pg_monitor_interval: float = 30.0

    # Extending
    middlewares: list[Any] | dict[Any, int | None] = dataclasses.field(default_factory=list)
    """Middleware classes (dotted paths, classes or instances) in order; a mapping
    ``{entry: order}`` places each among the built-ins, and ``None`` disables one."""
    extensions: list[Any] | dict[Any, int | None] = dataclasses.field(default_factory=list)
    """Extension classes, built with ``from_crawler(crawler)``; they connect to signals."""
    transport_class: Any = None
    """A Transport class (or dotted path) used instead of aiohttp/httpx; built with
    ``from_settings(settings)`` when it has one, else ``cls(settings)``."""
    frontier_class: Any = None
    """A Frontier class (or dotted path) used instead of the in-memory one (``--jobdir``
    and Redis jobs bring their own); built with ``from_settings(settings)`` or ``cls()``."""
    policy_class: Any = None
    """A ConcurrencyPolicy class (or dotted path), one per domain instead of the adaptive
    or fixed one; built with ``from_settings(settings)`` or ``cls(settings)``."""
    sink_schemes: dict[str, Any] = dataclasses.field(default_factory=dict)
    """``{scheme: sink class or dotted path}``: ``-o scheme://...`` builds that sink with
    ``from_target(target, overwrite, settings)``, else ``cls(target, overwrite=...)``."""

    # HTTP cache (development)
    http_cache_dir: str | None = None
    """Store every response under this folder and replay it on later runs (``--cache``)."""
    http_cache_mode: str = "normal"
    """``normal`` serves fresh entries and fetches the rest; ``refresh`` always fetches and
    stores; ``offline`` never touches the network, and a miss fails (``--cache-mode``)."""
    http_cache_expiration: float = 0.0
    """Seconds a stored response is served; 0: forever."""
    http_cache_ignore_http_codes: list[int] = dataclasses.field(default_factory=list)
    """Statuses that are never stored."""

    # Output
    log_level: str = "INFO"
    progress_interval: float = 10.0
    shutdown_grace: float = 10.0
    """Seconds in-flight requests get to finish after the first Ctrl-C or SIGTERM."""

    def __post_init__(self) -> None:
        _check_positive(self, "concurrency", "timeout_total", "max_response_size")
        _check_positive(
            self,
            "pg_workers",
            "pg_batch_size",
            "pg_flush_interval",
            "pg_command_timeout",
            "pg_statement_timeout",
            "pg_retry_timeout",
            "pg_monitor_interval",
        )
        for key in ("pg_reserved", "pg_max_overflow", "pg_statement_cache_size", "pg_idle_check"):
            if getattr(self, key) < 0:
                raise UsageError(f"setting {key}: must be >= 0, got {getattr(self, key)}")
        _check_positive(self, "proxy_backoff_base", "proxy_backoff_cap", "proxy_down_timeout")
        if self.proxy_concurrency is not None and self.proxy_concurrency <= 0:
            raise UsageError(
                f"setting proxy_concurrency: must be > 0, got {self.proxy_concurrency}"
            )
        if self.pg_pool_size is not None and self.pg_pool_size <= 0:
            raise UsageError(f"setting pg_pool_size: must be > 0, got {self.pg_pool_size}")
        for key in (
            "domain_concurrency",
            "domain_concurrency_max",
            "max_pages",
            "max_items",
            "close_on_errors",
        ):
            value = getattr(self, key)
            if value is not None and value <= 0:
                raise UsageError(f"setting {key}: must be > 0, got {value}")
        if self.autothrottle_slow_start <= 1:
            raise UsageError("setting autothrottle_slow_start: must be > 1")
        for key in ("autothrottle_probe", "autothrottle_backoff"):
            if not 0 < getattr(self, key) < 1:
                raise UsageError(f"setting {key}: must be in (0, 1), got {getattr(self, key)}")
        _check_positive(self, "robots_timeout", "ban_scan_bytes")
        for key in ("max_block_retries", "price_per_gb", "price_per_request"):
            if getattr(self, key) < 0:
                raise UsageError(f"setting {key}: must be >= 0, got {getattr(self, key)}")
        if self.budget is not None and self.budget <= 0:
            raise UsageError(f"setting budget: must be > 0, got {self.budget}")
        if self.politeness_key not in ("host", "domain"):
            raise UsageError(
                f"setting politeness_key: {self.politeness_key!r}; choose host or domain"
            )
        if self.slot_idle_timeout < 0 or self.max_idle_slots < 0 or self.top_hosts < 1:
            raise UsageError(
                "settings slot_idle_timeout and max_idle_slots must be >= 0, top_hosts >= 1"
            )
        if self.max_idle_connections is not None and self.max_idle_connections < 0:
            raise UsageError(
                f"setting max_idle_connections: must be >= 0, got {self.max_idle_connections}"
            )
        if self.max_depth is not None and self.max_depth < 0:
            raise UsageError(f"setting max_depth: must be >= 0, got {self.max_depth}")
        for key in ("max_retries", "max_redirects", "shutdown_grace", "robots_retry_delay"):
            if getattr(self, key) < 0:
                raise UsageError(f"setting {key}: must be >= 0, got {getattr(self, key)}")
        start, top = self.domain_concurrency, self.domain_concurrency_max
        if start is not None and top is not None and start > top:
            raise UsageError(
                f"setting domain_concurrency ({start}) is above domain_concurrency_max ({top})"
            )
        if self.transport not in TRANSPORTS:
            raise UsageError(
                f"setting transport: expected one of {', '.join(TRANSPORTS)}, "
                f"got {self.transport!r}"
            )
        if self.impersonate and self.transport in ("aiohttp", "httpx"):
            raise UsageError(
                f"setting impersonate needs the curl transport, not {self.transport} "
                '(set transport = "curl" or leave it "auto")'
            )
        if self.http2 and self.transport == "aiohttp":
            raise UsageError("setting http2: the aiohttp transport speaks HTTP/1.1 only")
        if self.http_cache_mode not in ("normal", "refresh", "offline"):
            raise UsageError(
                f"setting http_cache_mode: expected normal, refresh or offline, "
                f"got {self.http_cache_mode!r}"
            )
        if self.http_cache_expiration < 0:
            raise UsageError("setting http_cache_expiration: must be >= 0")
        if self.log_level.upper() not in ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"):
            raise UsageError(f"setting log_level: unknown level {self.log_level!r}")

    # ---- derived values --------------------------------------------------------------
    @property
    def domain_start(self) -> int:
        return min(self.domain_concurrency or self.concurrency, self.domain_max)

    @property
    def domain_max(self) -> int:
        return min(self.domain_concurrency_max or self.concurrency, self.concurrency)

    # ---- layering --------------------------------------------------------------------
    @classmethod
    def keys(cls) -> list[str]:
        return [f.name for f in dataclasses.fields(cls)]

    def merged(self, layer: Mapping[str, Any], *, source: str) -> Settings:
        """A copy with ``layer`` applied on top; ``source`` names the layer in errors."""
        if not layer:
            return self
        changes = {key: coerce(key, value, source=source) for key, value in layer.items()}
        try:
            return dataclasses.replace(self, **changes)
        except UsageError as exc:
            raise UsageError(f"{source}: {exc}") from None

    @classmethod
    def layered(cls, *layers: tuple[str, Mapping[str, Any]]) -> Settings:
        """Apply ``(source, mapping)`` layers in order over the defaults.

        Each value is type-checked in its layer, but only the end result has to be
        consistent: a later layer may fix what an earlier one left out of range."""
        changes: dict[str, Any] = {}
        for source, layer in layers:
            changes.update((key, coerce(key, value, source=source)) for key, value in layer.items())
        try:
            return cls(**changes)
        except UsageError:
            # Replay layer by layer so the message names the layer at fault.
            settings = cls()
            for source, layer in layers:
                settings = settings.merged(layer, source=source)
            raise

    def as_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


def _check_positive(settings: Settings, *keys: str) -> None:
    for key in keys:
        value = getattr(settings, key)
        if value <= 0:
            raise UsageError(f"setting {key}: must be > 0, got {value}")


@functools.cache
def _field_types() -> dict[str, Any]:
    return get_type_hints(Settings)


def coerce(key: str, value: Any, *, source: str = "settings") -> Any:
    """Check ``value`` against the type of setting ``key``; strings (from ``-s``) are parsed."""
    if key not in Settings.__dataclass_fields__:
        close = difflib.get_close_matches(key, Settings.keys(), n=1)
        hint = f" (did you mean {close[0]!r}?)" if close else ""
        raise UsageError(f"{source}: unknown setting {key!r}{hint}")
    try:
        if key in _COMPONENT_KEYS:
            return _coerce_components(value)
        if key == "sink_schemes":
            return _coerce_schemes(value)
        if key in _CLASS_KEYS:
            if value is None or isinstance(value, str | type):
                return value or None
            raise TypeError(f"expected a class or a dotted path, got {value!r}")
        return _coerce_to(_field_types()[key], value)
    except (TypeError, ValueError) as exc:
        raise UsageError(f"{source}: setting {key}: {exc}") from None


def _coerce_to(tp: Any, value: Any) -> Any:
    origin = get_origin(tp)
    if origin in (Union, types.UnionType):
        args = [a for a in get_args(tp) if a is not type(None)]
        if value is None or (isinstance(value, str) and value.lower() in ("none", "null", "")):
            return None
        return _coerce_to(args[0], value)
    if tp is bool:
        if isinstance(value, bool):
            return value
        if isinstance(value, str) and value.lower() in ("1", "true", "yes", "on"):
            return True
        if isinstance(value, str) and value.lower() in ("0", "false", "no", "off"):
            return False
        raise ValueError(f"expected true or false, got {value!r}")
    if tp is int:
        if isinstance(value, bool) or not isinstance(value, int | str):
            raise TypeError(f"expected an integer, got {value!r}")
        return int(value)
    if tp is float:
        if isinstance(value, bool) or not isinstance(value, int | float | str):
            raise TypeError(f"expected a number, got {value!r}")
        number = float(value)
        if number != number:  # NaN slips past every "> 0" check
            raise ValueError(f"expected a number, got {value!r}")
        return number
    if tp is str:
        if not isinstance(value, str):
            raise TypeError(f"expected a string, got {value!r}")
        return value
    if origin is list:
        (item_type,) = get_args(tp)
        if isinstance(value, str):
            value = _parse_list(value)
        if not isinstance(value, list | tuple):
            raise TypeError(f"expected a list, got {value!r}")
        return [_coerce_to(item_type, v) for v in value]
    if origin is dict:
        if isinstance(value, str):
            value = orjson.loads(value)
        if not isinstance(value, dict):
            raise TypeError(f"expected a mapping, got {value!r}")
        return {str(k): str(v) for k, v in value.items()}
    raise TypeError(f"unsupported setting type {tp!r}")  # pragma: no cover - a bug in Settings


_COMPONENT_KEYS = frozenset({"middlewares", "extensions"})
_CLASS_KEYS = frozenset({"transport_class", "frontier_class", "policy_class"})


def _coerce_components(value: Any) -> list[Any] | dict[Any, int | None]:
    """A list of components, or a mapping of them to orders (None disables one).
    Entries are dotted paths, classes or instances; from ``-s``, a comma-separated
    list or JSON (``{"pkg.mod.Class": 100, "UserAgent": null}``)."""
    if isinstance(value, str):
        text = value.strip()
        value = orjson.loads(text) if text.startswith("{") else _parse_list(text)
    if isinstance(value, list | tuple):
        return list(value)
    if isinstance(value, dict):
        out: dict[Any, int | None] = {}
        for entry, order in value.items():
            if order is not None and (isinstance(order, bool) or not isinstance(order, int)):
                raise TypeError(f"order of {entry!r} must be an integer or None, got {order!r}")
            out[entry] = order
        return out
    raise TypeError(f"expected a list or a mapping, got {value!r}")


def _coerce_schemes(value: Any) -> dict[str, Any]:
    if isinstance(value, str):
        value = orjson.loads(value)
    if not isinstance(value, dict):
        raise TypeError(f"expected a mapping of URL schemes to sink classes, got {value!r}")
    out: dict[str, Any] = {}
    for scheme, sink in value.items():
        if not isinstance(scheme, str) or not re.fullmatch(r"[A-Za-z][A-Za-z0-9+.-]*", scheme):
            raise ValueError(f"not a URL scheme: {scheme!r}")
        if not isinstance(sink, str | type):
            raise TypeError(f"sink for {scheme!r} must be a class or a dotted path, got {sink!r}")
        out[scheme.lower()] = sink
    return out


def _parse_list(text: str) -> list[Any]:
    text = text.strip()
    if text.startswith("["):
        parsed = orjson.loads(text)
        if not isinstance(parsed, list):
            raise ValueError("expected a list")
        return parsed
    return [part.strip() for part in text.split(",") if part.strip()]
