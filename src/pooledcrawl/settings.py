"""Typed, layered settings: defaults < profile < spider ``custom_settings`` < command line.

Every key is a field of :class:`Settings`, so an unknown key or a value of the
wrong type is caught before the crawl starts, with a message naming the key. A
component's settings are grouped in a nested dataclass (``settings.postgres``); a
layer names them dotted (``postgres.pool_size``), as a mapping (``{"postgres":
{"pool_size": 4}}``) or by their old flat name (``pg_pool_size``).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any

from pooledcrawl._version import __version__
from pooledcrawl.errors import UsageError
from pooledcrawl.settings_groups import (
    FLAT_PREFIXES,
    GROUPS,
    HttpCacheSettings,
    PostgresSettings,
    aliases,
    check_positive,
)
from pooledcrawl.settings_layers import Schema

# The groups and the lookup live in settings_groups and settings_layers; every name is
# importable from here, as before the split.
__all__ = [
    "DEFAULT_USER_AGENT",
    "FLAT_PREFIXES",
    "GROUPS",
    "TRANSPORTS",
    "HttpCacheSettings",
    "PostgresSettings",
    "Settings",
    "aliases",
    "canonical",
    "coerce",
    "field_type",
    "flatten",
    "is_setting",
]

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
    crowded_domain_concurrency: int | None = 1
    """Per-domain cap while at least ``concurrency`` domains have work (a broad crawl):
    other domains fill the workers, so a domain's extra connections would buy nothing.
    Lifts when fewer than half that many have work. None: off."""
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
    """What shares one limit: ``host`` (host:port), ``domain`` (the registered domain,
    eTLD+1, so ``a.example.com`` and ``b.example.com`` share one) or ``ip`` (the address
    the host resolves to, as Scrapy's ``CONCURRENT_REQUESTS_PER_IP``; through proxies,
    which resolve names themselves, ``host``)."""
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

    # PostgreSQL (settings.postgres)
    postgres: PostgresSettings = dataclasses.field(default_factory=PostgresSettings)
    """The PostgreSQL sink (``-o postgresql://...``): pool sizing, batches, timeouts, monitor."""

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

    # HTTP cache (settings.http_cache)
    http_cache: HttpCacheSettings = dataclasses.field(default_factory=HttpCacheSettings)
    """The development cache that stores responses and replays them (``--cache``)."""

    # Output
    log_level: str = "INFO"
    progress_interval: float = 10.0
    shutdown_grace: float = 10.0
    """Seconds in-flight requests get to finish after the first Ctrl-C or SIGTERM."""
    gc_young_threshold: int | None = 20_000
    """Python's youngest-generation GC threshold while a crawl runs (put back after it):
    the default, 700, collects every few pages for nothing. None: leave it."""

    def __post_init__(self) -> None:
        for group, cls in GROUPS.items():
            value = getattr(self, group)
            if not isinstance(value, cls):
                raise UsageError(f"setting {group}: expected a {cls.__name__}, got {value!r}")
        check_positive(self, "concurrency", "timeout_total", "max_response_size")
        check_positive(self, "proxy_backoff_base", "proxy_backoff_cap", "proxy_down_timeout")
        if self.proxy_concurrency is not None and self.proxy_concurrency <= 0:
            raise UsageError(
                f"setting proxy_concurrency: must be > 0, got {self.proxy_concurrency}"
            )
        for key in (
            "domain_concurrency",
            "domain_concurrency_max",
            "crowded_domain_concurrency",
            "gc_young_threshold",
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
        check_positive(self, "robots_timeout", "ban_scan_bytes")
        for key in ("max_block_retries", "price_per_gb", "price_per_request"):
            if getattr(self, key) < 0:
                raise UsageError(f"setting {key}: must be >= 0, got {getattr(self, key)}")
        if self.budget is not None and self.budget <= 0:
            raise UsageError(f"setting budget: must be > 0, got {self.budget}")
        if self.politeness_key not in ("host", "domain", "ip"):
            raise UsageError(
                f"setting politeness_key: {self.politeness_key!r}; choose host, domain or ip"
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
        if self.log_level.upper() not in ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"):
            raise UsageError(f"setting log_level: unknown level {self.log_level!r}")

    # ---- derived values --------------------------------------------------------------
    @property
    def domain_start(self) -> int:
        return min(self.domain_concurrency or self.concurrency, self.domain_max)

    @property
    def domain_max(self) -> int:
        return min(self.domain_concurrency_max or self.concurrency, self.concurrency)

    # ---- layering (the lookup itself is settings_layers.Schema) ------------------------
    @classmethod
    def keys(cls) -> list[str]:
        """Every setting's name; a nested one is dotted (``postgres.pool_size``)."""
        return _SCHEMA.keys()

    def get(self, key: str) -> Any:
        """The value of setting ``key``, dotted (``postgres.pool_size``) or an old flat name."""
        return _SCHEMA.get(self, key)

    def merged(self, layer: Mapping[str, Any], *, source: str) -> Settings:
        """A copy with ``layer`` applied on top; ``source`` names the layer in errors."""
        return _SCHEMA.merged(self, layer, source=source)

    @classmethod
    def layered(cls, *layers: tuple[str, Mapping[str, Any]]) -> Settings:
        """Apply ``(source, mapping)`` layers in order over the defaults.

        Each value is type-checked in its layer, but only the end result has to be
        consistent: a later layer may fix what an earlier one left out of range. A
        nested group merges field by field: a layer that sets ``postgres.pool_size``
        keeps the ``postgres.batch_size`` of the layers below it."""
        return _SCHEMA.layered(cls, *layers)

    def as_dict(self) -> dict[str, Any]:
        """Every setting; a nested group is a mapping (``{"postgres": {"pool_size": 4}}``)."""
        return dataclasses.asdict(self)


_SCHEMA: Schema[Settings] = Schema(Settings)

canonical = _SCHEMA.canonical
flatten = _SCHEMA.flatten
coerce = _SCHEMA.coerce
is_setting = _SCHEMA.is_setting
field_type = _SCHEMA.field_type
