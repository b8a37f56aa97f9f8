"""Crawl throughput: pooledcrawl next to Scrapy, Crawlee and a hand-written aiohttp loop.

    python -m benchmarks.throughput --pages 20000 --runs 3
    python -m benchmarks.throughput --only a,b,c --pages 2000

Generates the link-graph site, serves it (nginx with one worker when installed,
else a Python server), runs every contender as its own process, checks that each
one wrote every page exactly once, and reports the median pages/s, the ratios the
project targets, and each process's peak RSS. The table goes to stdout and the
whole result to a JSON file under ``benchmarks/results/``.

Contenders: (a) pooledcrawl with CSS selectors, (b) pooledcrawl with regular
expressions, (c) a minimal aiohttp crawler, (d) Scrapy, (e) Crawlee's
ParselCrawler. (d) and (e) need the ``bench`` extra (``pip install
'pooledcrawl[bench]'``); without it they are reported as skipped.

Rows (g), (h) and (i) are distributed jobs on Redis (``PCRAWL_BENCH_REDIS``,
default ``redis://127.0.0.1:6379/0``; skipped when it is unreachable; each run's
job is purged afterwards): (g) is (a) with one worker on the Redis frontier;
(h) and (i) crawl a latency-bound port (every response held ``SLOW_DELAY``) with
``LATENCY_CONCURRENCY`` requests in flight per worker, one worker then two
(``--workers 2``), under a job-wide domain cap above one worker's concurrency.

Rows (j) and (k) are (a) with ``--http2`` against nginx's TLS + HTTP/2 port (a
self-signed certificate, so ``--insecure``): the cost of HTTP/2 next to (a), over
httpx (j) and over curl_cffi (k, ``pooledcrawl[curl]``, what ``--http2`` uses when
it is installed). They need nginx; with the Python fallback server they are skipped.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import datetime
import importlib.metadata
import importlib.util
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import orjson

from benchmarks.servers import Port, Server, nginx_available, serve
from benchmarks.site import START_PATH, expected_names, generate_site

__all__ = ["CONTENDERS", "Contender", "RunResult", "main", "run_contender", "verify_output"]

ROOT = Path(__file__).resolve().parent.parent
CONTENDER_DIR = Path(__file__).resolve().parent / "contenders"
RESULTS_DIR = Path(__file__).resolve().parent / "results"
#: the ratios the project's targets are stated in: (numerator, denominator, target)
RATIOS = (
    ("a", "d", 20.0),
    ("a", "e", 20.0),
    ("b", "c", 0.75),
    ("f", "a", 0.70),
    ("g", "a", 0.60),
    ("i", "h", 1.20),
    ("k", "a", 0.80),
)
REDIS_URL = os.environ.get("PCRAWL_BENCH_REDIS", "redis://127.0.0.1:6379/0")
#: rows (h) and (i): seconds every response of the "slow" port is held, and the
#: requests in flight per worker, so that one worker waits on the network, not the CPU
SLOW_DELAY = 0.05
LATENCY_CONCURRENCY = 16

Command = Callable[[str, Path, Path, int], list[str]]


@dataclasses.dataclass(frozen=True)
class Contender:
    key: str
    label: str
    command: Command
    """argv given (start URL, output file, timing file, concurrency)."""
    requires: str | None = None
    """A module that must be importable (the ``bench`` extra), else the contender is skipped."""
    timing_from_stats: bool = False
    """The timing file is pooledcrawl's ``--stats`` JSON (``elapsed_s``), not plain seconds."""
    port: str = "plain"
    """The server port crawled: ``plain``, or ``slow`` (every response held ``SLOW_DELAY``)."""
    redis: bool = False
    """A distributed job on ``REDIS_URL``: skipped without Redis, purged after each run."""

    def unavailable(self) -> str | None:
        """Why this contender cannot run here, or None."""
        if self.port == "h2" and not nginx_available():
            return "nginx is not installed (its TLS + HTTP/2 port is the target)"
        if self.requires is not None and importlib.util.find_spec(self.requires) is None:
            extra = "curl" if self.requires == "curl_cffi" else "bench"
            return f"{self.requires} is not installed (pip install 'pooledcrawl[{extra}]')"
        if self.redis and not _redis_reachable(REDIS_URL):
            return f"Redis is not reachable at {REDIS_URL}"
        return None

    def available(self) -> bool:
        return self.unavailable() is None


def _pooledcrawl(
    spider: str,
    *,
    jobdir: bool = False,
    redis_workers: int = 0,
    latency: bool = False,
    http2: str | None = None,
) -> Command:
    def command(start: str, out: Path, timing: Path, concurrency: int) -> list[str]:
        if latency:
            concurrency = LATENCY_CONCURRENCY
        argv = [
            *(sys.executable, "-m", "pooledcrawl", "crawl", str(CONTENDER_DIR / spider)),
            *("-a", f"start={start}", "-O", str(out), "--stats", str(timing)),
            *("--concurrency", str(concurrency), "-s", "autothrottle=false"),
            *("--log-level", "WARNING"),
        ]
        if jobdir:  # the crash-safe SQLite frontier, started over on each run
            argv += ["--jobdir", str(out.with_suffix(".job")), "--fresh"]
        if redis_workers:  # a new job each run: nothing seen, nothing queued
            job = f"bench-{out.stem}-{uuid.uuid4().hex[:8]}"
            argv += ["--frontier", REDIS_URL, "--job", job, "--workers", str(redis_workers)]
        if http2:  # httpx or curl, against a self-signed certificate
            argv += ["--http2", "--transport", http2, "--insecure"]
        if latency:  # the domain's cap is job-wide: above one worker's concurrency
            argv += ["-s", f"domain_concurrency={4 * LATENCY_CONCURRENCY}"]
        return argv

    return command


def _module(name: str) -> Command:
    def command(start: str, out: Path, timing: Path, concurrency: int) -> list[str]:
        return [
            *(sys.executable, "-m", f"benchmarks.contenders.{name}", start, str(out)),
            *("--concurrency", str(concurrency), "--timing", str(timing)),
        ]

    return command


CONTENDERS = (
    Contender("a", "pooledcrawl, CSS", _pooledcrawl("pc_css.py"), timing_from_stats=True),
    Contender("b", "pooledcrawl, regex", _pooledcrawl("pc_regex.py"), timing_from_stats=True),
    Contender(
        "f",
        "pooledcrawl, CSS, --jobdir",
        _pooledcrawl("pc_css.py", jobdir=True),
        timing_from_stats=True,
    ),
    Contender(
        "g",
        "pooledcrawl, CSS, Redis",
        _pooledcrawl("pc_css.py", redis_workers=1),
        timing_from_stats=True,
        redis=True,
    ),
    Contender(
        "h",
        "CSS, Redis, 50 ms, 1 wkr",
        _pooledcrawl("pc_css.py", redis_workers=1, latency=True),
        timing_from_stats=True,
        port="slow",
        redis=True,
    ),
    Contender(
        "i",
        "CSS, Redis, 50 ms, 2 wkr",
        _pooledcrawl("pc_css.py", redis_workers=2, latency=True),
        timing_from_stats=True,
        port="slow",
        redis=True,
    ),
    Contender(
        "j",
        "pooledcrawl, HTTP/2 httpx",
        _pooledcrawl("pc_css.py", http2="httpx"),
        timing_from_stats=True,
        port="h2",
    ),
    Contender(
        "k",
        "pooledcrawl, HTTP/2 curl",
        _pooledcrawl("pc_css.py", http2="curl"),
        timing_from_stats=True,
        port="h2",
        requires="curl_cffi",
    ),
    Contender("c", "aiohttp loop, regex", _module("aiohttp_loop")),
    Contender("d", "Scrapy, CSS", _module("scrapy_spider"), requires="scrapy"),
    Contender("e", "Crawlee ParselCrawler", _module("crawlee_parsel"), requires="crawlee"),
)


@dataclasses.dataclass
class RunResult:
    ok: bool
    pages_per_s: float | None
    elapsed_s: float | None
    """The crawl's own seconds (interpreter start-up and imports left out)."""
    wall_s: float
    """The whole process, start-up included."""
    peak_rss_bytes: int
    cpu_s: float
    """User + system CPU seconds of the process, start-up included: steadier than
    pages/s on a noisy machine, as it does not count time spent waiting for a core."""
    items: int
    missing: int
    duplicates: int
    returncode: int
    error: str = ""


@dataclasses.dataclass
class Verdict:
    items: int
    missing: int
    duplicates: int
    bad: int

    @property
    def ok(self) -> bool:
        return not (self.missing or self.duplicates or self.bad)


def verify_output(path: Path, pages: int) -> Verdict:
    """Every page's item exactly once: ``pages`` lines, one per ``Item i`` name."""
    expected = expected_names(pages)
    seen: set[str] = set()
    items = duplicates = bad = 0
    data = path.read_bytes() if path.exists() else b""
    for line in data.splitlines():
        if not line.strip():
            continue
        items += 1
        try:
            item = orjson.loads(line)
            name = item["name"]
            price_ok = isinstance(item["price"], str) and item["price"].endswith(".99")
        except (orjson.JSONDecodeError, KeyError, TypeError):
            bad += 1
            continue
        if name not in expected or not price_ok:
            bad += 1
        elif name in seen:
            duplicates += 1
        else:
            seen.add(name)
    return Verdict(items, len(expected) - len(seen), duplicates, bad)


def run_contender(
    contender: Contender,
    start: str,
    pages: int,
    workdir: Path,
    *,
    concurrency: int = 64,
    timeout: float = 1800.0,
) -> RunResult:
    """Run one contender once in its own process; verify its output."""
    workdir.mkdir(parents=True, exist_ok=True)
    out, timing = workdir / f"{contender.key}.jsonl", workdir / f"{contender.key}.timing"
    out.unlink(missing_ok=True)
    timing.unlink(missing_ok=True)
    log_path = workdir / f"{contender.key}.log"
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")])),
    }
    argv = contender.command(start, out, timing, concurrency)
    with log_path.open("wb") as log:
        started = time.perf_counter()
        proc = subprocess.Popen(
            argv,
            stdout=log,
            stderr=subprocess.STDOUT,
            cwd=ROOT,
            env=env,
        )
        killer = threading.Timer(timeout, proc.kill)
        killer.start()
        try:
            _, status, usage = os.wait4(proc.pid, 0)
        finally:
            killer.cancel()
        wall = time.perf_counter() - started
    if contender.redis:
        _purge_job(argv[argv.index("--job") + 1])
    proc.returncode = os.waitstatus_to_exitcode(status)
    peak_rss = usage.ru_maxrss * 1024  # kilobytes on Linux
    elapsed = _read_timing(timing, contender.timing_from_stats)
    verdict = verify_output(out, pages)
    error = ""
    if proc.returncode != 0:
        error = f"exit code {proc.returncode}: {_tail(log_path)}"
    elif not verdict.ok:
        error = (
            f"{verdict.items} items: {verdict.missing} pages missing, "
            f"{verdict.duplicates} duplicates, {verdict.bad} malformed"
        )
    ok = not error
    return RunResult(
        ok=ok,
        pages_per_s=pages / elapsed if ok and elapsed else None,
        elapsed_s=elapsed,
        wall_s=wall,
        peak_rss_bytes=peak_rss,
        cpu_s=round(usage.ru_utime + usage.ru_stime, 3),
        items=verdict.items,
        missing=verdict.missing,
        duplicates=verdict.duplicates,
        returncode=proc.returncode,
        error=error,
    )


def _redis_reachable(url: str) -> bool:
    try:
        import redis
    except ImportError:
        return False
    try:
        client = redis.Redis.from_url(url, socket_connect_timeout=1)
        try:
            return bool(client.ping())
        finally:
            client.close()
    except redis.RedisError:
        return False


def _purge_job(job: str) -> None:
    import redis

    client = redis.Redis.from_url(REDIS_URL)
    try:
        keys = list(client.scan_iter(match=f"pcrawl:{job}:*", count=1000))
        if keys:
            client.unlink(*keys)
    finally:
        client.close()


def _read_timing(path: Path, from_stats: bool) -> float | None:
    try:
        if from_stats:
            return float(orjson.loads(path.read_bytes())["elapsed_s"])
        return float(path.read_text())
    except (OSError, ValueError, KeyError, TypeError, orjson.JSONDecodeError):
        return None


def _tail(path: Path, limit: int = 400) -> str:
    text = path.read_text(errors="replace").strip()
    return text[-limit:]


def summarize(key: str, runs: Sequence[RunResult], pages: int) -> dict[str, Any]:
    rates = [r.pages_per_s for r in runs if r.pages_per_s is not None]
    return {
        "label": _label(key),
        "median_pages_per_s": round(statistics.median(rates), 1) if rates else None,
        "pages_per_s": [None if r is None else round(r, 1) for r in (x.pages_per_s for x in runs)],
        "median_cpu_us_per_page": round(statistics.median(r.cpu_s for r in runs) / pages * 1e6)
        if runs
        else None,
        "peak_rss_mib": round(max(r.peak_rss_bytes for r in runs) / 2**20, 1) if runs else None,
        "all_ok": all(r.ok for r in runs),
        "runs": [dataclasses.asdict(r) for r in runs],
    }


def _label(key: str) -> str:
    return next(c.label for c in CONTENDERS if c.key == key)


def ratios(summary: dict[str, dict[str, Any]]) -> dict[str, dict[str, Any]]:
    result: dict[str, dict[str, Any]] = {}
    for top, bottom, target in RATIOS:
        a = summary.get(top, {}).get("median_pages_per_s")
        b = summary.get(bottom, {}).get("median_pages_per_s")
        value = round(a / b, 2) if a and b else None
        result[f"{top}/{bottom}"] = {
            "value": value,
            "target": target,
            "met": None if value is None else value >= target,
        }
    return result


def render_table(summary: dict[str, dict[str, Any]], ratio: dict[str, dict[str, Any]]) -> str:
    lines = [
        f"{'':3}{'contender':24}{'median pages/s':>15}  {'runs':24}{'CPU/page':>10}"
        f"{'peak RSS':>10}  ok",
    ]
    for key, info in summary.items():
        median = info["median_pages_per_s"]
        runs = ", ".join("-" if r is None else f"{r:.0f}" for r in info["pages_per_s"])
        rss = info["peak_rss_mib"]
        lines.append(
            f"{key + ')':3}{info['label']:24}{'-' if median is None else f'{median:,.0f}':>15}  "
            f"{runs:24}{info['median_cpu_us_per_page']:>8} µs"
            f"{'-' if rss is None else f'{rss:.0f} MiB':>10}  "
            f"{'yes' if info['all_ok'] else 'NO'}"
        )
    for name, r in ratio.items():
        value = "-" if r["value"] is None else f"{r['value']:.2f}"
        verdict = {None: "n/a", True: "met", False: "MISSED"}[r["met"]]
        lines.append(f"ratio {name}: {value} (target >= {r['target']:g}) {verdict}")
    return "\n".join(lines)


def _versions() -> dict[str, str]:
    found: dict[str, str] = {"python": platform.python_version()}
    for dist in ("pooledcrawl", "aiohttp", "parsel", "scrapy", "crawlee"):
        with contextlib.suppress(importlib.metadata.PackageNotFoundError):
            found[dist] = importlib.metadata.version(dist)
    return found


def _parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.throughput", description=__doc__.split("\n\n")[0]
    )
    parser.add_argument("--pages", type=int, default=20_000, help="site size (default 20000)")
    parser.add_argument("--runs", type=int, default=3, help="runs per contender (default 3)")
    parser.add_argument(
        "--only",
        default="a,b,c,d,e,f,g,h,i,j",
        help="contenders to run, e.g. a,b,c (default all)",
    )
    parser.add_argument("--concurrency", type=int, default=64)
    parser.add_argument("--server", choices=("auto", "nginx", "python"), default="auto")
    parser.add_argument("--site", type=Path, help="where to generate the site (default: temp)")
    parser.add_argument("--out", type=Path, help="result JSON (default: benchmarks/results/)")
    parser.add_argument("--timeout", type=float, default=1800.0, help="seconds per run")
    args = parser.parse_args(argv)
    keys = [k.strip() for k in args.only.split(",") if k.strip()]
    unknown = sorted(set(keys) - {c.key for c in CONTENDERS})
    if unknown:
        parser.error(f"unknown contender(s) {', '.join(unknown)}: choose from a to j")
    if args.pages < 1 or args.runs < 1:
        parser.error("--pages and --runs must be >= 1")
    args.only = keys
    return args


def main(argv: Sequence[str] | None = None) -> int:
    args = _parse_args(argv)
    chosen = [c for c in CONTENDERS if c.key in args.only]
    skipped = {c.key: c.unavailable() for c in chosen if not c.available()}
    for key, reason in skipped.items():
        print(f"{key}) {_label(key)}: skipped, {reason}")
    chosen = [c for c in chosen if c.key not in skipped]
    with tempfile.TemporaryDirectory(prefix="pcbench-") as tmp:
        site = generate_site(args.site or Path(tmp) / "site", args.pages)
        ports = [Port("plain")]
        if any(c.port == "slow" for c in chosen):
            ports.append(Port("slow", delay=SLOW_DELAY))
        if any(c.port == "h2" for c in chosen):
            ports.append(Port("h2", tls=True))
        with serve(site, ports, kind=args.server) as server:
            print(f"site: {args.pages} pages; server: {server.kind} ({server.detail})")
            results = _run_all(chosen, server, args, Path(tmp) / "runs")
    summary = {key: summarize(key, runs, args.pages) for key, runs in results.items()}
    ratio = ratios(summary)
    print(render_table(summary, ratio))
    report = {
        "date": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
        "pages": args.pages,
        "runs": args.runs,
        "concurrency": args.concurrency,
        "server": {"kind": server.kind, "detail": server.detail},
        "machine": {"cpus": os.cpu_count(), "platform": platform.platform()},
        "versions": _versions(),
        "skipped": sorted(skipped),
        "contenders": summary,
        "ratios": ratio,
    }
    out = args.out or RESULTS_DIR / f"throughput-{time.strftime('%Y%m%d-%H%M%S')}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_bytes(orjson.dumps(report, option=orjson.OPT_INDENT_2))
    print(f"results: {out}")
    return 0 if all(info["all_ok"] for info in summary.values()) else 1


def _run_all(
    chosen: Sequence[Contender], server: Server, args: argparse.Namespace, workdir: Path
) -> dict[str, list[RunResult]]:
    results: dict[str, list[RunResult]] = {c.key: [] for c in chosen}
    # Runs are interleaved (a b c d e, a b c d e, ...) so noise on a shared machine
    # spreads over every contender instead of hitting one.
    for run in range(1, args.runs + 1):
        for contender in chosen:
            result = run_contender(
                contender,
                server.url(contender.port) + START_PATH,
                args.pages,
                workdir / f"run{run}",
                concurrency=args.concurrency,
                timeout=args.timeout,
            )
            results[contender.key].append(result)
            rate = "-" if result.pages_per_s is None else f"{result.pages_per_s:,.0f} pages/s"
            print(
                f"run {run}/{args.runs} {contender.key}) {contender.label}: {rate}, "
                f"CPU {result.cpu_s:.1f} s, peak RSS {result.peak_rss_bytes / 2**20:.0f} MiB"
                + ("" if result.ok else f"  FAILED: {result.error}"),
                flush=True,
            )
    return results


if __name__ == "__main__":
    sys.exit(main())
