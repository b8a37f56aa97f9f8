"""Broad crawls: many hosts with a few pages each.

    python -m benchmarks.broad --simulate 1000,100000          # no network
    python -m benchmarks.broad --simulate 1000000 --pages-per-host 1
    python -m benchmarks.broad --hosts 500,5000                # nginx + dnsmasq, vs Scrapy

``--simulate``: the engine, frontier and dispatcher are real, the transport is a
fake that answers after ``--latency`` seconds. Host ``hN`` has page 0, which links
to its other pages. Each size runs in a fresh process and reports the peak RSS,
the RSS per host (the slope between two sizes), the CPU time the dispatcher spends
per request (handing out, with the frontier pops it makes, and bookkeeping; timed
around its methods), and the size of the stats file.

``--hosts``: the real crawl (see :mod:`benchmarks.broad_live`).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import AsyncIterator, Iterator, Sequence
from pathlib import Path
from typing import Any

__all__ = ["main", "simulate"]

ROOT = Path(__file__).resolve().parent.parent
RESULTS_DIR = Path(__file__).resolve().parent / "results"
#: the issue's targets
TARGET_BYTES_PER_HOST = 2048
TARGET_STATS_BYTES = 1024 * 1024
TARGET_DISPATCH_SPREAD = 0.20


def _rss() -> int:
    with open("/proc/self/statm") as statm:
        return int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def _peak_rss() -> int:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


def simulate(
    hosts: int, pages: int, latency: float, concurrency: int, per_host: int
) -> dict[str, Any]:
    """Crawl ``hosts`` x ``pages`` through a fake transport; what it cost."""
    import orjson

    from pooledcrawl import Request, Response, Settings, Spider
    from pooledcrawl.engine.engine import Engine
    from pooledcrawl.metrics.timing import Timing

    class FakeTransport:
        async def fetch(self, request: Request, proxy: str | None = None) -> Response:
            await asyncio.sleep(latency)
            response = Response(request.url, 200, {}, b"", request, "HTTP/1.1")
            response.timing = Timing(headers=latency, body=latency, reused=1)
            return response

        async def close(self) -> None:
            return None

    class Broad(Spider):
        name = "broad"

        async def start(self) -> AsyncIterator[Request]:
            for n in range(hosts):
                yield Request(f"http://h{n}.bench.test/p/0.html", self.parse)

        def parse(self, response: Response) -> Iterator[Request]:
            url = response.url
            if url.endswith("/p/0.html"):
                base = url[: -len("0.html")]
                # a host's pages before the next hosts' first pages: the order that
                # finishes hosts as it goes (and what a broad crawl's spider would ask)
                for i in range(1, pages):
                    yield Request(f"{base}{i}.html", self.page, priority=1)

        def page(self, response: Response) -> None:
            return None

    settings = Settings(
        concurrency=concurrency,
        domain_concurrency=per_host,  # parks a host's links: the dispatcher's busy case
        progress_interval=3600.0,
        log_level="WARNING",
    )
    engine = Engine(Broad(), settings, transport=FakeTransport())
    spent = [0.0]

    def timed(fn: Any) -> Any:
        clock = time.thread_time  # CPU time: other processes on the machine do not count

        def wrapper(*args: Any, **kwargs: Any) -> Any:
            t0 = clock()
            try:
                return fn(*args, **kwargs)
            finally:
                spent[0] += clock() - t0

        return wrapper

    async def run() -> None:
        real_run = engine.run

        # the dispatcher exists once run() starts; wrap its synchronous parts then
        from pooledcrawl.engine import dispatcher as dispatcher_module

        original = dispatcher_module.Dispatcher.__init__

        def init(self: Any, *args: Any, **kwargs: Any) -> None:
            original(self, *args, **kwargs)
            for name in ("_take", "_next_timer", "release", "finish", "handed_out"):
                setattr(self, name, timed(getattr(self, name)))

        dispatcher_module.Dispatcher.__init__ = init  # type: ignore[method-assign]
        try:
            await real_run()
        finally:
            dispatcher_module.Dispatcher.__init__ = original  # type: ignore[method-assign]

    base_rss = _rss()
    cpu0 = time.process_time()
    started = time.perf_counter()
    asyncio.run(run())
    elapsed = time.perf_counter() - started
    cpu = time.process_time() - cpu0
    stats = engine.stats
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "stats.json"
        path.write_bytes(orjson.dumps(stats.to_dict(), default=str))
        stats_bytes = path.stat().st_size
    expected = hosts * pages
    if stats.pages != expected:
        raise RuntimeError(f"crawled {stats.pages} pages, expected {expected}")
    return {
        "hosts": hosts,
        "pages_per_host": pages,
        "pages": stats.pages,
        "elapsed_s": round(elapsed, 2),
        "pages_per_s": round(stats.pages / elapsed, 1),
        "cpu_us_per_request": round(cpu / stats.requests * 1e6, 1),
        "dispatcher_us_per_request": round(spent[0] / stats.requests * 1e6, 2),
        "base_rss": base_rss,
        "peak_rss": _peak_rss(),
        "end_rss": _rss(),
        "slots_live_at_end": len(engine.dispatcher.slots),
        "stats_file_bytes": stats_bytes,
    }


def _child(args: list[str]) -> dict[str, Any]:
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join(
            filter(None, [str(ROOT), str(ROOT / "src"), os.environ.get("PYTHONPATH")])
        ),
    }
    out = subprocess.run(
        [sys.executable, "-m", "benchmarks.broad", *args],
        capture_output=True,
        text=True,
        cwd=ROOT,
        env=env,
    )
    if out.returncode:
        raise RuntimeError(f"child {args} failed:\n{out.stderr[-3000:]}")
    result: dict[str, Any] = json.loads(out.stdout.strip().splitlines()[-1])
    return result


def _slope(rows: list[dict[str, Any]], key: str) -> float | None:
    if len(rows) < 2:
        return None
    small, big = rows[0], rows[-1]
    return (big[key] - small[key]) / (big["hosts"] - small["hosts"])


def run_simulation(args: argparse.Namespace) -> int:
    rows = []
    for hosts in args.simulate:
        pages = args.pages_per_host
        runs = [
            _child(
                [
                    "--child",
                    str(hosts),
                    "--pages-per-host",
                    str(pages),
                    "--latency",
                    str(args.latency),
                    "--concurrency",
                    str(args.concurrency),
                    "--domain-concurrency",
                    str(args.domain_concurrency),
                ]
            )
            for _ in range(args.runs)
        ]
        # the median of each figure over the runs (each run a fresh process)
        row = {
            key: statistics.median(run[key] for run in runs)
            if isinstance(runs[0][key], (int, float))
            else runs[0][key]
            for key in runs[0]
        }
        row["runs"] = len(runs)
        rows.append(row)
        print(
            f"{row['hosts']:>10,} hosts x {row['pages_per_host']}:"
            f" {row['pages_per_s']:>8,.0f} pages/s"
            f"  peak RSS {row['peak_rss'] / 2**20:7.1f} MB"
            f"  dispatcher {row['dispatcher_us_per_request']:6.2f} us/request"
            f"  CPU {row['cpu_us_per_request']:6.1f} us/request"
            f"  stats file {row['stats_file_bytes'] / 1024:8.1f} KB"
            f"  live slots at end {row['slots_live_at_end']:,}",
            flush=True,
        )
    rows.sort(key=lambda r: r["hosts"])
    slope = _slope(rows, "peak_rss")
    costs = [r["dispatcher_us_per_request"] for r in rows]
    spread = (max(costs) / min(costs) - 1.0) if len(costs) > 1 and min(costs) > 0 else 0.0
    largest_stats = max(r["stats_file_bytes"] for r in rows)
    verdicts = []
    if slope is not None:
        verdicts.append(
            f"peak RSS per host (slope {rows[0]['hosts']:,} -> {rows[-1]['hosts']:,}): "
            f"{slope:,.0f} bytes (target <= {TARGET_BYTES_PER_HOST})"
        )
        verdicts.append(
            f"dispatcher cost spread: {spread:.0%} (target <= {TARGET_DISPATCH_SPREAD:.0%})"
        )
    verdicts.append(
        f"largest stats file: {largest_stats / 1024:,.1f} KB "
        f"(target <= {TARGET_STATS_BYTES // 1024} KB)"
    )
    for line in verdicts:
        print(line)
    out = args.out or RESULTS_DIR / f"broad-sim-{time.strftime('%Y%m%d-%H%M%S')}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(
        json.dumps({"rows": rows, "rss_per_host": slope, "dispatcher_spread": spread}, indent=2)
    )
    print(f"results: {out}")
    ok = (slope is None or slope <= TARGET_BYTES_PER_HOST) and largest_stats <= TARGET_STATS_BYTES
    ok = ok and spread <= TARGET_DISPATCH_SPREAD
    return 0 if ok else 1


def _sizes(text: str) -> list[int]:
    try:
        sizes = [int(part.replace("_", "")) for part in text.split(",") if part.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a list of host counts: {text!r}") from None
    if not sizes or min(sizes) < 1:
        raise argparse.ArgumentTypeError(f"host counts must be >= 1: {text!r}")
    return sizes


def _parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.broad", description=__doc__.split("\n\n")[0]
    )
    mode = parser.add_mutually_exclusive_group()
    mode.add_argument("--simulate", type=_sizes, help="host counts, e.g. 1000,100000")
    mode.add_argument("--hosts", type=_sizes, help="host counts for the live run, e.g. 500,5000")
    parser.add_argument("--pages-per-host", type=int, default=11)
    parser.add_argument("--latency", type=float, default=0.01, help="simulated seconds per fetch")
    parser.add_argument("--concurrency", type=int, default=256)
    parser.add_argument(
        "--domain-concurrency", type=int, default=2, help="simulated: per-host start cap"
    )
    parser.add_argument(
        "--runs", type=int, default=1, help="runs per size (live: rounds), the medians reported"
    )
    parser.add_argument("--only", default="", help="live contenders, e.g. pooledcrawl,scrapy")
    parser.add_argument("--out", type=Path, help="result JSON (default: benchmarks/results/)")
    parser.add_argument("--child", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child is None and args.simulate is None and args.hosts is None:
        args.hosts = [500, 5000]
    return args


def main(argv: Sequence[str] | None = None) -> int:
    args = _parse_args(argv)
    if args.child is not None:
        result = simulate(
            args.child, args.pages_per_host, args.latency, args.concurrency, args.domain_concurrency
        )
        print(json.dumps(result))
        return 0
    if args.simulate is not None:
        return run_simulation(args)
    from benchmarks.broad_live import run_live

    return run_live(args)


if __name__ == "__main__":
    sys.exit(main())
