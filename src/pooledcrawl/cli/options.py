"""Command-line options shared by ``crawl`` and ``worker`` (and the distributed flags),
and turning them into a :class:`CrawlJob`. One module, so neither command imports the
other."""

from __future__ import annotations

import argparse
from typing import Any

from pooledcrawl.cli.profiles import add_proxy_options, extra_tiers, job_profile, tier_names
from pooledcrawl.engine.tiering import TierSpec
from pooledcrawl.errors import UsageError
from pooledcrawl.runner import CrawlJob, build_settings
from pooledcrawl.spider import load_spider_class

__all__ = [
    "add_crawl_options",
    "add_distributed_options",
    "cli_settings",
    "job_from_args",
    "parse_pairs",
]


def add_crawl_options(parser: argparse.ArgumentParser) -> None:
    out = parser.add_argument_group("output")
    out.add_argument(
        "-o",
        dest="outputs",
        action="append",
        default=[],
        type=lambda v: (v, False),
        metavar="FILE",
        help="append items to FILE: .jsonl, .csv, - (stdout) or postgresql://...?table=NAME",
    )
    out.add_argument(
        "-O",
        dest="outputs",
        action="append",
        type=lambda v: (v, True),
        metavar="FILE",
        help="overwrite FILE with the items",
    )
    out.add_argument("--stats", metavar="FILE", help="write crawl stats as JSON to FILE")
    out.add_argument(
        "--report", metavar="FILE", help="write an HTML report with charts to FILE (offline)"
    )
    out.add_argument(
        "--fields",
        metavar="A,B,C",
        help="CSV columns, in order (default: the keys of the first item)",
    )
    out.add_argument(
        "--pg-monitor",
        action="store_true",
        default=None,
        help="sample pg_stat_activity every 30 s and warn on a saturated pool",
    )
    out.add_argument(
        "--cache",
        metavar="DIR",
        help="store responses under DIR and replay them on reruns (development)",
    )
    out.add_argument(
        "--cache-mode",
        choices=("normal", "refresh", "offline"),
        help="with --cache: serve stored pages (normal), refetch them (refresh), or "
        "never touch the network (offline)",
    )
    out.add_argument("--log-level", default=None, help="DEBUG, INFO (default), WARNING, ERROR")
    crawl = parser.add_argument_group("crawl")
    crawl.add_argument(
        "-a",
        dest="spider_args",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="spider argument (repeatable)",
    )
    crawl.add_argument(
        "-s",
        dest="settings",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="setting (repeatable); wins over profile and spider",
    )
    crawl.add_argument(
        "--concurrency", type=_positive_int, metavar="N", help="global cap on requests in flight"
    )
    crawl.add_argument("--max-pages", type=_positive_int, metavar="N", help="stop after N pages")
    crawl.add_argument("--max-items", type=_positive_int, metavar="N", help="stop after N items")
    crawl.add_argument(
        "--timeout", type=_positive_float, metavar="SECONDS", help="stop after this long"
    )
    crawl.add_argument(
        "--budget",
        type=_positive_float,
        metavar="AMOUNT",
        help="stop cleanly before the proxy cost (the profiles' [cost] prices) passes AMOUNT",
    )
    crawl.add_argument(
        "--close-on-errors", type=_positive_int, metavar="N", help="stop after N errors"
    )
    crawl.add_argument(
        "--autothrottle",
        choices=("on", "off"),
        help="adapt per-domain concurrency to 429s (on) or use a fixed cap (off)",
    )
    add_http_options(crawl)
    add_proxy_options(parser)


#: the settings that the flags of :func:`add_http_options` set, by the same names
HTTP_FLAGS = ("http2", "transport", "insecure")


def add_http_options(group: Any) -> None:
    """How pages are fetched: shared by ``crawl`` and the page commands (fetch,
    parse, shell), so those get a page exactly as the crawl would."""
    group.add_argument(
        "--http2",
        action="store_true",
        default=None,
        help="offer HTTP/2 (HTTP/1.1 per server that declines it) over curl when installed, "
        "else httpx; default: aiohttp HTTP/1.1",
    )
    group.add_argument(
        "--transport",
        choices=("aiohttp", "httpx", "curl"),
        help="the HTTP client: aiohttp (HTTP/1.1), httpx or curl (pooledcrawl[curl]); "
        "default: chosen from --http2 and impersonate",
    )
    group.add_argument(
        "--insecure",
        action="store_true",
        default=None,
        help="do not verify TLS certificates (self-signed test targets only)",
    )


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
    if value <= 0:
        raise argparse.ArgumentTypeError(f"must be > 0, got {value}")
    return value


def _positive_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None
    if value <= 0:
        raise argparse.ArgumentTypeError(f"must be > 0, got {text}")
    return value


def parse_pairs(pairs: list[str], flag: str) -> dict[str, str]:
    result: dict[str, str] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key.strip():
            raise UsageError(f"{flag} expects KEY=VALUE, got {pair!r}")
        # re-inserted, so the last spelling of a setting wins (pg_x=1 postgres.x=2 pg_x=3)
        result.pop(key.strip(), None)
        result[key.strip()] = value
    return result


def cli_settings(args: argparse.Namespace) -> dict[str, Any]:
    """The command-line settings layer: ``-s`` pairs, then the dedicated flags."""
    layer: dict[str, Any] = parse_pairs(args.settings, "-s")
    flags = {
        "concurrency": args.concurrency,
        "max_pages": args.max_pages,
        "max_items": args.max_items,
        "max_duration": args.timeout,
        "close_on_errors": args.close_on_errors,
        "budget": getattr(args, "budget", None),
        "log_level": args.log_level,
        "csv_fields": args.fields,
        "postgres.monitor": args.pg_monitor,
        "autothrottle": None if args.autothrottle is None else args.autothrottle == "on",
        **{key: getattr(args, key, None) for key in HTTP_FLAGS},
        "http_cache.dir": getattr(args, "cache", None),
        "http_cache.mode": getattr(args, "cache_mode", None),
    }
    layer.update({key: value for key, value in flags.items() if value is not None})
    return layer


def job_from_args(args: argparse.Namespace, spider_target: str) -> CrawlJob:
    spider_cls = load_spider_class(spider_target)
    profile_settings, proxies = job_profile(args, spider_cls)
    cli = cli_settings(args)
    settings = build_settings(spider_cls, cli, profile_settings)
    tiers = []
    more = extra_tiers(args)
    if more:  # --profile a,b,c: each tier its own settings layer, the command line on top
        tiers.append(TierSpec(tier_names(args.profile)[0], settings, proxies))
        for profile in more:
            tier_settings = build_settings(spider_cls, cli, profile.settings)
            tiers.append(TierSpec(profile.name, tier_settings, profile.proxy))
    elif getattr(args, "profile", None) or spider_cls.profile:
        name = getattr(args, "profile", None) or spider_cls.profile or "default"
        tiers.append(TierSpec(name, settings, proxies))
    return CrawlJob(
        spider_cls=spider_cls,
        spider_args=parse_pairs(args.spider_args, "-a"),
        settings=settings,
        outputs=list(args.outputs),
        stats_path=args.stats,
        jobdir=getattr(args, "jobdir", None),
        fresh=getattr(args, "fresh", False),
        proxies=proxies,
        tiers=tiers,
    )


def add_distributed_options(parser: argparse.ArgumentParser, *, workers: bool) -> None:
    group = parser.add_argument_group("distributed (Redis)")
    group.add_argument("--frontier", metavar="URL", help="redis://host:port/db of a shared job")
    group.add_argument("--job", metavar="NAME", help="the job's name (its Redis key prefix)")
    if workers:
        group.add_argument(
            "--workers",
            type=int,
            default=None,
            metavar="N",
            help="start N worker processes on this machine",
        )
