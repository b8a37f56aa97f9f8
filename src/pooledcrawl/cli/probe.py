"""``pooledcrawl probe URL``: measure service time, then size the pools for a target rate.

Service time first, as Little's Law needs it: requests one at a time over a
single keep-alive connection (so no queueing is measured), through the profile's
transport, TLS options and proxy; p50 and p95 of request start to full body. With ``--rps`` the
Little's Law sizing for that rate follows, as ``pooledcrawl size`` prints it.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from pooledcrawl.cli.pages import page_headers, use_page_headers
from pooledcrawl.cli.profiles import add_proxy_options, job_profile
from pooledcrawl.cli.size import render_sizing, sizing
from pooledcrawl.errors import UsageError
from pooledcrawl.http.request import Request
from pooledcrawl.http.url import InvalidURL, canonical_or_raise
from pooledcrawl.settings import Settings
from pooledcrawl.spider import Spider
from pooledcrawl.transport.base import TransportError
from pooledcrawl.transport.factory import make_transport

__all__ = ["ProbeResult", "add_parser", "probe", "run"]


@dataclass
class ProbeResult:
    body: list[float] = field(default_factory=list)
    """Seconds from request start to full body, one per successful request."""
    headers: list[float] = field(default_factory=list)
    statuses: Counter[int] = field(default_factory=Counter)
    errors: Counter[str] = field(default_factory=Counter)
    reused: int = 0
    opened: int = 0
    http_version: str = "-"

    def quantile(self, q: float, headers: bool = False) -> float:
        values = sorted(self.headers if headers else self.body)
        if not values:
            return 0.0
        if len(values) == 1:
            return values[0]
        if q == 0.5:
            return statistics.median(values)
        return statistics.quantiles(values, n=100, method="inclusive")[round(q * 100) - 1]


async def probe(url: str, n: int, settings: Settings, proxy: str | None = None) -> ProbeResult:
    """``n`` requests to ``url`` one after another over one connection, after one
    warm-up request that opens it (and whose failure is a usage error)."""
    transport = use_page_headers(make_transport(settings), page_headers(settings))
    result = ProbeResult()
    try:
        try:
            warm = await transport.fetch(Request(url, dont_filter=True), proxy)
        except TransportError as exc:
            raise UsageError(f"probe: {url}: {exc}") from None
        result.http_version = warm.http_version
        for _ in range(n):
            try:
                response = await transport.fetch(Request(url, dont_filter=True), proxy)
            except TransportError as exc:
                result.errors[exc.name] += 1
                continue
            result.statuses[response.status] += 1
            timing = response.timing
            if timing is not None:
                result.body.append(timing.body)
                result.headers.append(timing.headers)
                result.reused += timing.reused
                result.opened += timing.opened
    finally:
        await transport.close()
    return result


def add_parser(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "probe",
        help="measure a URL's service time over one keep-alive connection",
        description="Measure p50/p95 service time of URL with requests one at a time over "
        "one keep-alive connection; with --rps, print the pool sizes that rate needs.",
    )
    parser.add_argument("url", help="an http(s) URL of the target (one you may load)")
    parser.add_argument(
        "-n", type=_count, default=100, metavar="N", help="requests to time (default 100)"
    )
    parser.add_argument("--rps", type=float, metavar="R", help="target requests/s per host")
    parser.add_argument("--headroom", type=float, default=1.3, metavar="X", help="default 1.3")
    parser.add_argument("--hosts", type=_count, default=1, metavar="N", help="default 1")
    parser.add_argument("--http2", action="store_true", default=None, help="probe over HTTP/2")
    parser.add_argument(
        "--insecure", action="store_true", default=None, help="do not verify TLS certificates"
    )
    parser.add_argument("--log-level", default="WARNING")
    add_proxy_options(parser)
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    try:
        canonical_or_raise(args.url)
    except InvalidURL as exc:
        raise UsageError(f"probe: {args.url!r}: {exc}") from None
    if args.rps is not None and not args.rps > 0:
        raise UsageError("--rps must be > 0")
    if args.headroom < 1:
        raise UsageError("--headroom must be >= 1")
    profile_settings, proxies = job_profile(args, Spider)
    cli = {key: getattr(args, key) for key in ("http2", "insecure")}
    one_connection = {"concurrency": 1, "connector_limit": 1, "connector_limit_per_host": 1}
    settings = Settings.layered(
        ("profile", profile_settings or {}),
        ("command line", {k: v for k, v in cli.items() if v is not None}),
        ("probe", one_connection),
    )
    proxy = proxies.proxies[0] if proxies is not None and proxies.proxies else None
    result = asyncio.run(probe(args.url, args.n, settings, proxy.url if proxy else None))
    print("\n".join(render(args, result, settings, proxy.masked if proxy else None)))
    return 0 if result.body else 1


def render(
    args: argparse.Namespace, result: ProbeResult, settings: Settings, proxy: str | None
) -> list[str]:
    done = len(result.body)
    via = f"via {proxy}" if proxy else "direct"
    lines = [
        f"probe {args.url}: {args.n} requests, one at a time over one keep-alive connection "
        f"({result.http_version}, {via}; 1 warm-up request not counted)",
    ]
    if not done:
        lines.append("  no request succeeded: " + _counts(result.errors))
        return lines
    p50, p95 = result.quantile(0.5), result.quantile(0.95)
    exchanges = result.reused + result.opened
    lines += [
        f"  service time  p50 {p50 * 1000:.1f} ms   p95 {p95 * 1000:.1f} ms   "
        f"(to headers: p50 {result.quantile(0.5, headers=True) * 1000:.1f} ms)",
        f"  connections   {result.opened} opened; {result.reused} of {exchanges} requests "
        "reused one",
        f"  statuses      {_counts(result.statuses)}"
        + (f"   errors {_counts(result.errors)}" if result.errors else ""),
    ]
    if exchanges and result.reused / exchanges < 0.9:
        lines.append(
            "  note: the server closes connections, so these times include connecting"
            " (and keep-alive will not help at this target)"
        )
    lines.append(f"one connection sustains about {1 / p50:,.0f} req/s (1 / p50)")
    if args.rps is None:
        lines.append("add --rps R to size the pools for a target rate")
        return lines
    lines.append("")
    plan = sizing(args.rps, p50, headroom=args.headroom, hosts=args.hosts)
    lines += render_sizing(plan, keepalive=settings.keepalive_timeout)
    if p95 > 2 * p50:
        lines.append(
            f"p95 is {p95 / p50:.1f}x p50: consider more headroom (--headroom {p95 / p50:.1f})"
        )
    return lines


def _counts(counter: Counter[Any]) -> str:
    return " ".join(f"{k}:{v}" for k, v in sorted(counter.items(), key=str)) or "-"


def _count(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
    if not 1 <= value <= 100_000:
        raise argparse.ArgumentTypeError(f"must be 1 to 100000, got {value}")
    return value
