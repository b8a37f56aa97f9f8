"""``pooledcrawl size``: pool sizes from Little's Law, and the PostgreSQL pool formula.

Little's Law (L = λW: requests in flight = rate x latency) as a command: measured
latency and a target rate give the requests that must be in flight, then the
connector limits, semaphore and httpx limits that match, each shown with its
numbers filled in.
"""

from __future__ import annotations

import argparse
import math
import re
from dataclasses import dataclass
from typing import Any

from pooledcrawl.errors import UsageError
from pooledcrawl.settings import Settings
from pooledcrawl.sizing import PoolSizeError, little_law, pg_pool_size, with_headroom

__all__ = ["Sizing", "add_parser", "parse_duration", "render_sizing", "run", "sizing"]

#: httpx's cap on streams per HTTP/2 connection (servers may set fewer).
_H2_STREAMS = 100
_UNITS = {"us": 1e-6, "µs": 1e-6, "ms": 1e-3, "s": 1.0}
_DURATION_RE = re.compile(r"^\s*(\d+(?:\.\d*)?|\.\d+)\s*(us|µs|ms|s)\s*$")


@dataclass(frozen=True, slots=True)
class Sizing:
    """What a target rate at a latency needs, per host and in total."""

    rps: float
    latency_s: float
    headroom: float
    hosts: int
    need: int
    """Little's Law: requests in flight per host, L = rps x latency."""
    per_host: int
    """``need`` with headroom: limit_per_host, the semaphore, the domain cap."""
    limit: int
    """All hosts together: aiohttp ``limit``, httpx ``max_connections``, ``concurrency``."""
    h2_connections: int
    """HTTP/2 connections per host that carry ``per_host`` streams."""


def sizing(rps: float, latency_s: float, *, headroom: float = 1.3, hosts: int = 1) -> Sizing:
    """Pure: the numbers behind ``pooledcrawl size`` (``rps`` is per host)."""
    if hosts < 1:
        raise ValueError("hosts must be >= 1")
    need = little_law(rps, latency_s)
    per_host = with_headroom(need, headroom)
    return Sizing(
        rps=rps,
        latency_s=latency_s,
        headroom=headroom,
        hosts=hosts,
        need=need,
        per_host=per_host,
        limit=per_host * hosts,
        h2_connections=math.ceil(per_host / _H2_STREAMS),
    )


def parse_duration(text: str) -> float:
    """``40ms``, ``0.04s``, ``250us`` -> seconds. The unit is required: a bare 40 is ambiguous."""
    match = _DURATION_RE.match(text)
    if match is None:
        raise argparse.ArgumentTypeError(
            f"expected a duration with a unit (40ms, 0.04s), not {text!r}"
        )
    seconds = float(match.group(1)) * _UNITS[match.group(2)]
    if seconds <= 0:
        raise argparse.ArgumentTypeError(f"must be > 0, got {text!r}")
    return seconds


def render_sizing(s: Sizing, *, keepalive: float | None = None) -> list[str]:
    """The report lines: the formula with numbers, then the limits to set."""
    keepalive = Settings().keepalive_timeout if keepalive is None else keepalive
    product = s.rps * s.latency_s
    exact = f"{product:g}" if product == round(product) else f"{product:.2f} -> {s.need}"
    spread = f"{s.per_host} x {s.hosts} hosts" if s.hosts > 1 else "one host"
    return [
        "Little's Law: requests in flight = rate x latency",
        f"  need           = {_num(s.rps)} req/s x {_secs(s.latency_s)} = {exact}",
        f"  with headroom  = {s.need} x {_num(s.headroom)} = {s.per_host}"
        "   (absorbs latency spikes)",
        "",
        f"Limits for {_num(s.rps)} req/s per host, {s.hosts} host{'s' if s.hosts > 1 else ''}:",
        f"  limit_per_host {s.per_host:<6} aiohttp TCPConnector(limit_per_host={s.per_host})",
        f"  limit          {s.limit:<6} {spread}: TCPConnector(limit={s.limit})",
        f"  semaphore      {s.per_host:<6} asyncio.Semaphore({s.per_host}) per host,"
        " so excess requests wait there",
        f"  httpx          httpx.Limits(max_connections={s.limit}, "
        f"max_keepalive_connections={s.per_host}, keepalive_expiry={keepalive:g})",
        f"  HTTP/2         {s.h2_connections} connection{'s' if s.h2_connections > 1 else ''}"
        f" per host {'carry' if s.h2_connections > 1 else 'carries'} {s.per_host} streams"
        " (at most min(MAX_CONCURRENT_STREAMS, 100) each)",
        "",
        "pooledcrawl settings:",
        f"  --concurrency {s.limit} -s connector_limit={s.limit} "
        f"-s connector_limit_per_host={s.per_host} -s domain_concurrency_max={s.per_host}",
        f"  (a fixed cap instead of the adaptive one: --autothrottle off "
        f"-s domain_concurrency={s.per_host})",
        "Then watch pool_wait_*_ms in the stats: near 0 at the target rate means it is right.",
    ]


def render_pg(max_connections: int, reserved: int, workers: int, max_overflow: int) -> list[str]:
    size = pg_pool_size(max_connections, reserved, workers, max_overflow)
    usable = max_connections - reserved
    peak = (size + max_overflow) * workers
    return [
        "PostgreSQL pool: pool_size = floor((max_connections - reserved) / workers) - max_overflow",
        f"  pool_size = floor(({max_connections} - {reserved}) / {workers}) - {max_overflow}"
        f" = floor({_num(usable / workers)}) - {max_overflow} = {size}",
        f"  at peak: ({size} + {max_overflow}) x {workers} workers = {peak} of {usable}"
        " usable connections",
        f"pooledcrawl settings: -s postgres.pool_size={size}  (or -s postgres.workers={workers} "
        f"-s postgres.reserved={reserved} -s postgres.max_overflow={max_overflow})",
    ]


def add_parser(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "size",
        help="connection-pool sizes from a target rate and latency (Little's Law)",
        description="Little's Law pool sizing (--rps and --latency), and the PostgreSQL "
        "pool formula (--pg-max-connections). Give either, or both.",
    )
    law = parser.add_argument_group("HTTP pools (Little's Law)")
    law.add_argument("--rps", type=_positive_float, metavar="R", help="target requests/s per host")
    law.add_argument(
        "--latency", type=parse_duration, metavar="T", help="measured p50 latency: 40ms, 0.04s"
    )
    law.add_argument(
        "--headroom", type=_headroom, default=1.3, metavar="X", help="multiplier (default 1.3)"
    )
    law.add_argument(
        "--hosts", type=_positive_int, default=1, metavar="N", help="hosts (default 1)"
    )
    pg = parser.add_argument_group("PostgreSQL pool")
    pg.add_argument("--pg-max-connections", type=_positive_int, metavar="N")
    pg.add_argument(
        "--reserved", type=_non_negative_int, default=10, metavar="N", help="default 10"
    )
    pg.add_argument("--workers", type=_positive_int, default=1, metavar="N", help="default 1")
    pg.add_argument(
        "--max-overflow", type=_non_negative_int, default=0, metavar="N", help="default 0"
    )
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    if (args.rps is None) != (args.latency is None):
        raise UsageError("--rps and --latency go together (e.g. --rps 500 --latency 40ms)")
    if args.rps is None and args.pg_max_connections is None:
        raise UsageError("give --rps and --latency, or --pg-max-connections (see --help)")
    blocks: list[list[str]] = []
    if args.rps is not None:
        plan = sizing(args.rps, args.latency, headroom=args.headroom, hosts=args.hosts)
        blocks.append(render_sizing(plan))
    if args.pg_max_connections is not None:
        try:
            blocks.append(
                render_pg(args.pg_max_connections, args.reserved, args.workers, args.max_overflow)
            )
        except PoolSizeError as exc:
            raise UsageError(f"no PostgreSQL pool fits: {exc}") from None
    print("\n\n".join("\n".join(block) for block in blocks))
    return 0


def _num(value: float) -> str:
    return f"{value:g}" if value == round(value, 2) else f"{value:.2f}"


def _secs(seconds: float) -> str:
    return f"{seconds:.3f} s" if seconds >= 0.001 else f"{seconds * 1e6:.0f} us"


def _positive_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None
    if not value > 0 or math.isinf(value):
        raise argparse.ArgumentTypeError(f"must be > 0, got {text}")
    return value


def _headroom(text: str) -> float:
    value = _positive_float(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be >= 1 (1.3 is 30% extra), got {text}")
    return value


def _positive_int(text: str) -> int:
    value = _non_negative_int(text)
    if value == 0:
        raise argparse.ArgumentTypeError("must be > 0")
    return value


def _non_negative_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be >= 0, got {value}")
    return value
