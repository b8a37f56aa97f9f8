"""The live broad crawl: N host names, 11 pages each, one nginx, names through dnsmasq.

    python -m benchmarks.broad --hosts 500,5000
    python -m benchmarks.broad --hosts 500,5000 --only pooledcrawl --runs 3

nginx (one worker, ``access_log off``) listens on 127.0.0.1 at an ephemeral port
and serves the same 11 pages for every ``Host``: ``/p/0.html`` links to
``/p/1.html`` ... ``/p/10.html``. dnsmasq, on another ephemeral loopback port,
resolves ``h0.bench.test`` ... to 127.0.0.1, so each name is its own host (its own
slot, its own connections) without binding any address but 127.0.0.1.

Contenders, each in its own process:

* ``pooledcrawl``: concurrency 256, ``domain_concurrency`` 4 (the controller's start
  per host; while at least 256 hosts have work, the default ``crowded_domain_concurrency``
  holds each to one), ``keepalive_timeout`` 5 s, ``dns_servers`` = the dnsmasq, ``depth_priority
  = -1`` (a host's links before the next hosts' first pages, so hosts finish as the
  crawl goes), its stats written to a file;
* ``scrapy``: the settings of Scrapy's "Broad Crawls" page (DownloaderAwarePriorityQueue,
  CONCURRENT_REQUESTS 100, REACTOR_THREADPOOL_MAXSIZE 20, cookies, retries and
  redirects off, DOWNLOAD_TIMEOUT 15, BFO order). Twisted resolves through the
  system's resolver, which does not know the names; a ``DNS_RESOLVER`` subclass maps
  ``*.bench.test`` to 127.0.0.1 without a lookup (which favours Scrapy);
* ``crawlee``: Crawlee for Python's ParselCrawler with ``enqueue_links`` (as its docs
  show), concurrency fixed at 256, its default retries, in-memory storage. Its default
  HTTP client (impit, in Rust) resolves names through the system and takes no
  resolver, so Crawlee crawls by address: host ``n`` is ``http://127.a.b.c:port/`` (a
  loopback address of its own, on which nginx also listens), each address its own host
  to Crawlee. Skipped, with the reason, when it is not installed or does not run.

Each round runs every contender at every size, one process at a time; ``--runs N``
makes N rounds, so a change of load on the machine falls on all of them alike, and
the figures are the medians over the rounds. Reported, and written as JSON under
``benchmarks/results/``: pages/s, CPU time per page (user + system: on a shared
machine the steadier figure), peak RSS, RSS per host (the slope between the smallest
and the largest size, from the median peaks), the stats file size, the ratios to
Scrapy, the load average during each run, and each target of issue #20 met or not.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import resource
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from benchmarks.dnsmasq import dnsmasq

__all__ = ["run_live"]

ROOT = Path(__file__).resolve().parent.parent
RESULTS_DIR = Path(__file__).resolve().parent / "results"
PAGES = 11
CONTENDERS = ("pooledcrawl", "scrapy", "crawlee")
#: contenders from the ``bench`` extra: missing or failing, they are reported skipped
OPTIONAL = {"scrapy": "scrapy", "crawlee": "crawlee"}
#: the targets of issue #20
TARGET_RATIO = 10.0
TARGET_BYTES_PER_HOST = 2048
TARGET_STATS_BYTES = 1024 * 1024
TARGET_KEPT = 0.85
_FILLER = "<p>" + "Broad crawl benchmark page text. " * 60 + "</p>"


def _site(root: Path) -> None:
    pages = root / "p"
    pages.mkdir(parents=True)
    links = "".join(f'<li><a href="/p/{i}.html">page {i}</a></li>' for i in range(1, PAGES))
    (pages / "0.html").write_text(
        f"<html><head><title>0</title></head><body><ul>{links}</ul>{_FILLER}</body></html>"
    )
    for i in range(1, PAGES):
        (pages / f"{i}.html").write_text(
            f"<html><head><title>{i}</title></head><body>{_FILLER}</body></html>"
        )


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def host_address(n: int) -> str:
    """A loopback address of its own for host ``n`` (127.1.0.1, 127.1.0.2, ...; no
    .0 or .255 last octet, never 127.0.0.1): for contenders that crawl by address."""
    block, last = divmod(n, 254)
    return f"127.{1 + (block >> 8)}.{block & 0xFF}.{last + 1}"


@contextmanager
def _nginx(site: Path, run_dir: Path, addresses: int = 0) -> Iterator[int]:
    """nginx on 127.0.0.1 at an ephemeral port, and on the same port of the first
    ``addresses`` :func:`host_address` addresses (loopback only, all of them)."""
    for _ in range(3):
        port = _free_port()
        extra = "".join(
            f"        listen {host_address(n)}:{port} backlog=512;\n" for n in range(addresses)
        )
        conf = run_dir / "nginx.conf"
        conf.write_text(
            f"""worker_processes 1;
pid {run_dir}/nginx.pid;
error_log {run_dir}/error.log;
worker_rlimit_nofile {8192 + 2 * addresses};
events {{ worker_connections {4096 + addresses}; }}
http {{
    access_log off;
    keepalive_requests 100000;
    client_body_temp_path {run_dir}; proxy_temp_path {run_dir};
    fastcgi_temp_path {run_dir}; uwsgi_temp_path {run_dir}; scgi_temp_path {run_dir};
    types {{ text/html html; }}
    server {{
        listen 127.0.0.1:{port} backlog=4096;
{extra}        server_name _;
        root {site};
    }}
}}
"""
        )
        proc = subprocess.Popen(
            ["nginx", "-c", str(conf), "-p", str(run_dir), "-g", "daemon off;"],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 10
        up = False
        while time.monotonic() < deadline and proc.poll() is None:
            try:
                with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                    up = True
                    break
            except OSError:
                time.sleep(0.05)
        try:
            if up:
                yield port
                return
        finally:
            proc.terminate()
            try:
                proc.wait(5)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
    raise RuntimeError("nginx did not start")


# ---- the contenders, each run as `python -m benchmarks.broad_live --contender ...` --------
def _pooledcrawl(hosts: int, port: int, dns: str, out: Path) -> dict[str, Any]:
    import asyncio
    from collections.abc import AsyncIterator

    import orjson

    from pooledcrawl import Engine, Request, Response, Settings, Spider

    class Broad(Spider):
        name = "broad"

        async def start(self) -> AsyncIterator[Request]:
            for n in range(hosts):
                yield Request(f"http://h{n}.bench.test:{port}/p/0.html", self.parse)

        def parse(self, response: Response) -> Iterator[Request]:
            yield from response.follow_all(css="a", callback=self.parse)

    settings = Settings(
        concurrency=256,
        # a few connections per host, reused, rather than one per page at once (one
        # while the crawl is crowded: crowded_domain_concurrency's default)
        domain_concurrency=4,
        # a finished host's kept-alive connections go soon, not a minute later
        keepalive_timeout=5.0,
        dns_servers=[dns],
        depth_priority=-1,
        progress_interval=3600.0,
        log_level="WARNING",
    )
    started = time.perf_counter()
    stats = asyncio.run(Engine(Broad(), settings).run())
    elapsed = time.perf_counter() - started
    out.write_bytes(orjson.dumps(stats.to_dict(), default=str))
    return {"pages": stats.pages, "elapsed_s": elapsed, "stats_file_bytes": out.stat().st_size}


def _scrapy(hosts: int, port: int, dns: str, out: Path) -> dict[str, Any]:
    from collections.abc import AsyncIterator

    import scrapy
    from scrapy.crawler import CrawlerProcess
    from scrapy.resolver import CachingThreadedResolver
    from twisted.internet import defer

    class BenchResolver(CachingThreadedResolver):  # type: ignore[misc]
        def getHostByName(self, name: str, timeout: Any = ()) -> Any:
            if name.endswith(".bench.test"):
                return defer.succeed("127.0.0.1")
            return super().getHostByName(name, timeout)

    sys.modules[__name__].BenchResolver = BenchResolver  # type: ignore[attr-defined]

    class Broad(scrapy.Spider):  # type: ignore[misc]
        name = "broad"

        async def start(self) -> AsyncIterator[Any]:
            for n in range(hosts):
                yield scrapy.Request(f"http://h{n}.bench.test:{port}/p/0.html")

        def parse(self, response: Any) -> Iterator[Any]:
            yield from response.follow_all(css="a")

        def closed(self, reason: str) -> None:
            final.update(self.crawler.stats.get_stats())

    final: dict[str, Any] = {}

    settings = {
        # https://docs.scrapy.org/en/latest/topics/broad-crawls.html
        "SCHEDULER_PRIORITY_QUEUE": "scrapy.pqueues.DownloaderAwarePriorityQueue",
        "CONCURRENT_REQUESTS": 100,
        "REACTOR_THREADPOOL_MAXSIZE": 20,
        "LOG_LEVEL": os.environ.get("BENCH_SCRAPY_LOG", "WARNING"),
        "COOKIES_ENABLED": False,
        "RETRY_ENABLED": False,
        "DOWNLOAD_TIMEOUT": 15,
        "REDIRECT_ENABLED": False,
        "AJAXCRAWL_ENABLED": True,
        "DEPTH_PRIORITY": 1,
        "SCHEDULER_DISK_QUEUE": "scrapy.squeues.PickleFifoDiskQueue",
        "SCHEDULER_MEMORY_QUEUE": "scrapy.squeues.FifoMemoryQueue",
        "TWISTED_DNS_RESOLVER": f"{__name__}.BenchResolver",
        "TELNETCONSOLE_ENABLED": False,
        "ROBOTSTXT_OBEY": False,
    }
    process = CrawlerProcess(settings)
    crawler = process.create_crawler(Broad)
    started = time.perf_counter()
    process.crawl(crawler)
    process.start()
    elapsed = time.perf_counter() - started
    stats = final
    out.write_text(json.dumps(stats, default=str))
    pages = int(stats.get("response_received_count", 0))
    return {"pages": pages, "elapsed_s": elapsed, "stats_file_bytes": out.stat().st_size}


def _crawlee(hosts: int, port: int, dns: str, out: Path) -> dict[str, Any]:
    import asyncio
    import logging

    from crawlee import ConcurrencySettings
    from crawlee.crawlers import ParselCrawler, ParselCrawlingContext
    from crawlee.storage_clients import MemoryStorageClient

    logging.basicConfig(level=logging.WARNING)
    crawler = ParselCrawler(
        concurrency_settings=ConcurrencySettings(
            min_concurrency=256, desired_concurrency=256, max_concurrency=256
        ),
        storage_client=MemoryStorageClient(),
        configure_logging=False,
    )

    @crawler.router.default_handler
    async def handler(context: ParselCrawlingContext) -> None:
        await context.enqueue_links(selector="a")

    # by address: its HTTP client cannot be pointed at the local DNS server
    urls = [f"http://{host_address(n)}:{port}/p/0.html" for n in range(hosts)]
    started = time.perf_counter()
    final = asyncio.run(crawler.run(urls))
    elapsed = time.perf_counter() - started
    stats = final.to_dict() if hasattr(final, "to_dict") else vars(final)
    out.write_text(json.dumps(stats, default=str))
    return {
        "pages": int(final.requests_finished),
        "elapsed_s": elapsed,
        "stats_file_bytes": out.stat().st_size,
    }


def _child(args: argparse.Namespace) -> int:
    run = {"pooledcrawl": _pooledcrawl, "scrapy": _scrapy, "crawlee": _crawlee}[args.contender]
    before = resource.getrusage(resource.RUSAGE_SELF)
    result = run(args.n, args.port, args.dns, Path(args.stats_out))
    usage = resource.getrusage(resource.RUSAGE_SELF)
    result["peak_rss"] = usage.ru_maxrss * 1024
    # the crawl's CPU time (imports before it excluded), whatever else runs on the machine
    cpu = (usage.ru_utime - before.ru_utime) + (usage.ru_stime - before.ru_stime)
    result["cpu_s"] = cpu
    print(json.dumps(result))
    return 0


def _run_one(contender: str, hosts: int, port: int, dns: str, tmp: Path) -> dict[str, Any]:
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join(
            filter(None, [str(ROOT), str(ROOT / "src"), os.environ.get("PYTHONPATH")])
        ),
    }
    stats_out = tmp / f"stats-{contender}-{hosts}.json"
    command = [
        sys.executable,
        "-m",
        "benchmarks.broad_live",
        "--contender",
        contender,
        "--n",
        str(hosts),
        "--port",
        str(port),
        "--dns",
        dns,
        "--stats-out",
        str(stats_out),
    ]
    load_before = os.getloadavg()[0]
    done = subprocess.run(command, capture_output=True, text=True, cwd=ROOT, env=env)
    if done.returncode:
        raise RuntimeError(f"{contender} failed:\n{done.stderr[-3000:]}")
    result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    expected = hosts * PAGES
    if result["pages"] != expected:
        raise RuntimeError(f"{contender} crawled {result['pages']} pages, expected {expected}")
    result["pages_per_s"] = result["pages"] / result["elapsed_s"]
    result["cpu_ms_per_page"] = result["cpu_s"] / result["pages"] * 1e3
    # the 1-minute load average, at the start and at the end of the run
    result["load"] = [round(load_before, 2), round(os.getloadavg()[0], 2)]
    return result


_MEDIANS = ("pages_per_s", "elapsed_s", "cpu_ms_per_page", "peak_rss", "stats_file_bytes")


def run_live(args: argparse.Namespace) -> int:
    if shutil.which("nginx") is None:
        print("nginx is not installed (apt-get install nginx-light)", file=sys.stderr)
        return 2
    asked = [c for c in (args.only.split(",") if args.only else CONTENDERS) if c]
    unknown = sorted(set(asked) - set(CONTENDERS))
    if unknown:
        print(f"unknown contenders: {', '.join(unknown)}", file=sys.stderr)
        return 2
    skipped: dict[str, str] = {}
    for contender in asked:
        module = OPTIONAL.get(contender)
        if module is not None and importlib.util.find_spec(module) is None:
            skipped[contender] = f"{module} is not installed (pip install 'pooledcrawl[bench]')"
    contenders = [c for c in asked if c not in skipped]
    sizes = sorted(args.hosts)
    smallest, largest = sizes[0], sizes[-1]
    runs: dict[str, dict[int, list[dict[str, Any]]]] = {
        c: {n: [] for n in sizes} for c in contenders
    }
    started_load = os.getloadavg()
    by_address = largest if "crawlee" in contenders else 0
    with tempfile.TemporaryDirectory(prefix="pcbench-broad-") as tmp_name:
        tmp = Path(tmp_name)
        os.chmod(tmp, 0o755)  # nginx's worker reads the site as an unprivileged user
        site = tmp / "site"
        _site(site)
        (tmp / "nginx").mkdir()
        (tmp / "dns").mkdir()
        names = {f"h{n}.bench.test": "127.0.0.1" for n in range(largest)}
        nginx = _nginx(site, tmp / "nginx", addresses=by_address)
        with nginx as port, dnsmasq(names, tmp / "dns") as dns:
            for round_ in range(1, args.runs + 1):
                for contender in [c for c in contenders if c not in skipped]:
                    for hosts in sizes:
                        try:
                            one = _run_one(contender, hosts, port, dns.server, tmp)
                        except RuntimeError as exc:
                            if contender not in OPTIONAL:
                                raise
                            skipped[contender] = _reason(exc)
                            break
                        runs[contender][hosts].append(one)
                        print(
                            f"[{round_}/{args.runs}] {contender:12} {hosts:>6,} hosts:"
                            f" {one['pages_per_s']:8,.0f} pages/s"
                            f"  CPU {one['cpu_ms_per_page']:5.2f} ms/page"
                            f"  peak RSS {one['peak_rss'] / 2**20:6.1f} MB"
                            f"  stats file {one['stats_file_bytes'] / 1024:8.1f} KB"
                            f"  load {one['load'][0]:.1f}-{one['load'][1]:.1f}",
                            flush=True,
                        )
    for contender, reason in skipped.items():
        print(f"{contender:12} skipped: {reason}", flush=True)
        runs.pop(contender, None)
    rows: dict[str, dict[int, dict[str, Any]]] = {}
    for contender, by_size in runs.items():
        rows[contender] = {}
        for hosts, results in by_size.items():
            row: dict[str, Any] = {
                key: statistics.median(r[key] for r in results) for key in _MEDIANS
            }
            row["runs"] = len(results)
            row["load"] = [r["load"] for r in results]
            rows[contender][hosts] = row
    print(f"medians of {args.runs} run(s) per contender and size:")
    for contender, by_size in rows.items():
        for hosts, row in by_size.items():
            print(
                f"{contender:12} {hosts:>6,} hosts: {row['pages_per_s']:8,.0f} pages/s"
                f"  CPU {row['cpu_ms_per_page']:5.2f} ms/page"
                f"  peak RSS {row['peak_rss'] / 2**20:6.1f} MB"
                f"  stats file {row['stats_file_bytes'] / 1024:8.1f} KB"
            )
    summary: dict[str, Any] = {"load_at_start": started_load, "skipped": skipped}
    for contender, by_size in rows.items():
        small, big = by_size[smallest], by_size[largest]
        if len(sizes) > 1:
            slope = (big["peak_rss"] - small["peak_rss"]) / (largest - smallest)
            keep = big["pages_per_s"] / small["pages_per_s"]
            summary[contender] = {"rss_per_host": slope, "pages_per_s_kept": keep}
            print(
                f"{contender:12} RSS per host (slope {smallest:,} -> {largest:,}): {slope:,.0f} B;"
                f" pages/s at {largest:,} = {keep:.0%} of at {smallest:,}"
            )
    targets: dict[str, bool] = {}
    if "pooledcrawl" in rows:
        ours = rows["pooledcrawl"]
        biggest_stats = max(row["stats_file_bytes"] for row in ours.values())
        targets["stats_file"] = biggest_stats <= TARGET_STATS_BYTES
        if len(sizes) > 1:
            targets["rss_per_host"] = (
                summary["pooledcrawl"]["rss_per_host"] <= TARGET_BYTES_PER_HOST
            )
            targets["pages_per_s_kept"] = summary["pooledcrawl"]["pages_per_s_kept"] >= TARGET_KEPT
    if "pooledcrawl" in rows and "scrapy" in rows:
        ours, theirs = rows["pooledcrawl"][largest], rows["scrapy"][largest]
        ratio = ours["pages_per_s"] / theirs["pages_per_s"]
        cpu_ratio = theirs["cpu_ms_per_page"] / ours["cpu_ms_per_page"]
        # each round's own ratio: the two ran minutes apart, under the same load
        per_round = [
            a["pages_per_s"] / b["pages_per_s"]
            for a, b in zip(runs["pooledcrawl"][largest], runs["scrapy"][largest], strict=True)
        ]
        summary["ratio_vs_scrapy"] = ratio
        summary["ratio_vs_scrapy_per_round"] = per_round
        summary["cpu_ratio_vs_scrapy"] = cpu_ratio
        targets["ratio_vs_scrapy"] = ratio >= TARGET_RATIO
        rounds = ", ".join(f"{r:.1f}x" for r in per_round)
        print(
            f"pooledcrawl / Scrapy at {largest:,} hosts: pages/s {ratio:.1f}x"
            f" (rounds: {rounds}; target >= {TARGET_RATIO:.0f}x),"
            f" CPU per page {cpu_ratio:.1f}x less"
        )
    if "pooledcrawl" in rows and "crawlee" in rows:
        ours, theirs = rows["pooledcrawl"][largest], rows["crawlee"][largest]
        ratio = ours["pages_per_s"] / theirs["pages_per_s"]
        summary["ratio_vs_crawlee"] = ratio
        print(f"pooledcrawl / Crawlee pages/s at {largest:,} hosts: {ratio:.1f}x")
    summary["targets"] = targets
    if targets:
        print(
            "targets: " + ", ".join(f"{k} {'met' if v else 'NOT met'}" for k, v in targets.items())
        )
    out = args.out or RESULTS_DIR / f"broad-live-{time.strftime('%Y%m%d-%H%M%S')}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(
        json.dumps({"rows": rows, "runs": runs, "summary": summary}, indent=2, default=str)
    )
    print(f"results: {out}")
    return 0


def _reason(exc: BaseException) -> str:
    """Why a contender's run failed, in one line: the last line of its error."""
    lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
    return lines[-1][:300] if lines else type(exc).__name__


def _reason(exc: BaseException) -> str:
    """Why a contender's run failed, in one line: the last line of its error."""
    lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
    return lines[-1][:300] if lines else type(exc).__name__


def main() -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.broad_live")
    parser.add_argument("--contender", choices=CONTENDERS, required=True)
    parser.add_argument("--n", type=int, required=True)
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--dns", required=True)
    parser.add_argument("--stats-out", required=True)
    return _child(parser.parse_args())


if __name__ == "__main__":
    sys.exit(main())
