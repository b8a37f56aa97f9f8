"""Adaptive concurrency against the rate limiters real sites run, from a cold start.

    python -m benchmarks.limiters                           # every family, 3 runs, 60 s
    python -m benchmarks.limiters --only fixed-1s,penalty-ra --runs 1 --duration 30
    python -m benchmarks.limiters --contenders pooledcrawl

Each family serves the link-graph site behind one limiter and crawls it from a
cold start with each contender (pooledcrawl with the ``datacenter`` profile, and
Scrapy's AutoThrottle, as in ``benchmarks.throttle``), each in its own process:

* nginx (one worker, latency from the echo module): ``limit_req`` (the leaky
  bucket) with and without ``burst``/``nodelay``, keyed per server and per client
  address, and ``limit_conn`` (503 over the limit);
* the ``limits`` library (as Flask-Limiter and slowapi use it) behind a small
  aiohttp app: fixed window, moving window and sliding-window counter, with and
  without ``X-RateLimit-*``/``RateLimit`` headers and ``Retry-After``;
* written here, where no library does it (``benchmarks/_limiter_server.py``): a
  token bucket with a large burst, a sliding log that counts refused requests,
  a penalty box (with and without ``Retry-After``) and a limit that halves, then
  doubles back.

Reported per family and contender, as medians over ``--runs``: good pages/s as a
share of the limit, the share of 429s (and 503s) among responses, the time until
a 5 s span first averages 90% of the limit, and requests lost. A family whose
window is 60 s runs three times ``--duration``. JSON goes to
``benchmarks/results/limiters-*.json``, an HTML page with a timeline per family
next to it.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import html
import itertools
import json
import math
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

import orjson

from benchmarks.servers import _free_ports, _stop, _wait_listening, echo_module, nginx_available
from benchmarks.site import START_PATH, generate_site
from benchmarks.throttle import RunResult, _pooledcrawl, _scrapy

__all__ = ["FAMILIES", "Family", "main", "summarize"]

ROOT = Path(__file__).resolve().parent.parent
RESULTS_DIR = Path(__file__).resolve().parent / "results"
_WINDOW = 5  # seconds: "a 5 s span first averages 90% of the limit"
TARGETS = {"share": 0.9, "share_penalty": 0.8, "share_429": 0.03, "lost": 0}


@dataclasses.dataclass(frozen=True)
class Family:
    """One limiter: who enforces it, its numbers, and the backend's latency."""

    key: str
    title: str
    server: str
    """``nginx`` or ``python`` (``benchmarks._limiter_server``)."""
    spec: dict[str, Any]
    rate: float
    """The sustainable rate, requests/s (for ``limit_conn``: slots / latency)."""
    delay: float
    window: float = 1.0
    schedule: tuple[tuple[float, float], ...] = ()
    """``(share of the run, rate)`` steps of a changing limit."""
    penalty: bool = False
    allowance: float = 0.0
    """Requests allowed once on top of the rate (a token bucket's full bucket)."""
    profile: str = "datacenter"
    spaced: bool = False
    """nginx ``limit_req`` without ``burst``: a request is refused unless it comes at
    least 1/rate after the last one accepted, on nginx's millisecond clock."""

    @property
    def min_gap_ms(self) -> int:
        """For a ``spaced`` family, the shortest gap nginx accepts, in whole ms:
        ``excess = excess - rate * ms / 1000 + 1000`` (rates in requests per 1000 s)
        must come to 0, so ``ms >= 1000 / rate``, rounded up
        (``ngx_http_limit_req_lookup`` in ``ngx_http_limit_req_module.c``)."""
        return math.ceil(1000.0 / self.rate - 1e-9) if self.spaced else 0

    def ceiling_at(self, second: int, duration: float) -> float:
        """The most any client can get through, from the limiter's definition: the
        limit, or for ``spaced`` one request per :attr:`min_gap_ms` (300 r/s without
        a burst lets 250 through: a gap of 3 ms is refused, the next possible is 4)."""
        if self.spaced:
            return 1000.0 / self.min_gap_ms
        return self.limit_at(second, duration)

    def limit_at(self, second: int, duration: float) -> float:
        rate = self.rate
        for start, value in self.schedule:
            if second >= start * duration:
                rate = value
        return rate

    def seconds(self, duration: float) -> float:
        return 3 * duration if self.window >= 60 else duration


def _nginx(key: str, title: str, directive: str, rate: float, delay: float) -> Family:
    spaced = "limit_req " in directive and "burst=" not in directive
    return Family(key, title, "nginx", {"directive": directive}, rate, delay, spaced=spaced)


def _py(key: str, title: str, spec: dict[str, Any], delay: float, **kw: Any) -> Family:
    rate = spec["limit"] / spec.get("window", 1.0)
    return Family(key, title, "python", {**spec, "delay": delay}, rate, delay, **kw)


FAMILIES = {
    f.key: f
    for f in (
        _nginx(
            "nginx-req",
            "nginx limit_req 50 r/s, no burst, per client, 100 ms",
            "limit_req_zone $binary_remote_addr zone=z:1m rate=50r/s; |limit_req zone=z;",
            50,
            0.1,
        ),
        _nginx(
            "nginx-req-300",
            "nginx limit_req 300 r/s, no burst, per server, 100 ms",
            "limit_req_zone $server_port zone=z:1m rate=300r/s; |limit_req zone=z;",
            300,
            0.1,
        ),
        _nginx(
            "nginx-req-250",
            "nginx limit_req 250 r/s, no burst, per server, 100 ms",
            "limit_req_zone $server_port zone=z:1m rate=250r/s; |limit_req zone=z;",
            250,
            0.1,
        ),
        _nginx(
            "nginx-req-burst",
            "nginx limit_req 300 r/s burst=50 nodelay, per client, 50 ms",
            "limit_req_zone $binary_remote_addr zone=z:1m rate=300r/s; "
            "|limit_req zone=z burst=50 nodelay;",
            300,
            0.05,
        ),
        _nginx(
            "nginx-req-delay",
            "nginx limit_req 100 r/s burst=20 (queued), per server, 20 ms",
            "limit_req_zone $server_port zone=z:1m rate=100r/s; |limit_req zone=z burst=20;",
            100,
            0.02,
        ),
        _nginx(
            "nginx-conn",
            "nginx limit_conn 20 (503), 100 ms: 200/s",
            "limit_conn_zone $server_port zone=c:1m; |limit_conn c 20;",
            200,
            0.1,
        ),
        _py(
            "fixed-1s",
            "limits fixed window 200 / 1 s, 50 ms",
            {"strategy": "fixed", "limit": 200, "window": 1},
            0.05,
        ),
        _py(
            "fixed-1s-ra",
            "limits fixed window 200 / 1 s, Retry-After, 50 ms",
            {"strategy": "fixed", "limit": 200, "window": 1, "retry_after": True},
            0.05,
        ),
        _py(
            "fixed-10s",
            "limits fixed window 1500 / 10 s, 50 ms",
            {"strategy": "fixed", "limit": 1500, "window": 10},
            0.05,
            window=10.0,
        ),
        _py(
            "fixed-10s-x",
            "limits fixed window 1500 / 10 s, X-RateLimit-*, 50 ms",
            {"strategy": "fixed", "limit": 1500, "window": 10, "headers": "x"},
            0.05,
            window=10.0,
        ),
        _py(
            "fixed-10s-ietf",
            "limits fixed window 1500 / 10 s, RateLimit + Retry-After, 50 ms",
            {
                "strategy": "fixed",
                "limit": 1500,
                "window": 10,
                "headers": "ietf",
                "retry_after": True,
            },
            0.05,
            window=10.0,
        ),
        _py(
            "fixed-60s",
            "limits fixed window 3000 / 60 s, 100 ms",
            {"strategy": "fixed", "limit": 3000, "window": 60},
            0.1,
            window=60.0,
        ),
        _py(
            "moving-1s",
            "limits moving window 200 / 1 s, 50 ms",
            {"strategy": "moving", "limit": 200, "window": 1},
            0.05,
        ),
        _py(
            "moving-60s",
            "limits moving window 1200 / 60 s, 300 ms",
            {"strategy": "moving", "limit": 1200, "window": 60},
            0.3,
            window=60.0,
        ),
        _py(
            "sliding-1s",
            "limits sliding-window counter 1000 / 1 s, 20 ms",
            {"strategy": "sliding", "limit": 1000, "window": 1},
            0.02,
        ),
        _py(
            "sliding-10s",
            "limits sliding-window counter 1500 / 10 s, 50 ms",
            {"strategy": "sliding", "limit": 1500, "window": 10},
            0.05,
            window=10.0,
        ),
        _py(
            "token",
            "token bucket 100/s, 2000 burst, 50 ms (written here)",
            {"strategy": "token", "limit": 100, "window": 1, "burst": 2000},
            0.05,
            allowance=2000,
        ),
        _py(
            "reject-1s",
            "refused requests count, 200 / 1 s, 50 ms (written here)",
            {"strategy": "reject", "limit": 200, "window": 1},
            0.05,
        ),
        _py(
            "reject-10s",
            "refused requests count, 1500 / 10 s, 50 ms (written here)",
            {"strategy": "reject", "limit": 1500, "window": 10},
            0.05,
            window=10.0,
        ),
        _py(
            "penalty-ra",
            "penalty box 100/s, quiet 5 s, Retry-After, 50 ms (written here)",
            {"strategy": "penalty", "limit": 100, "window": 1, "quiet": 5, "retry_after": True},
            0.05,
            penalty=True,
        ),
        _py(
            "penalty",
            "penalty box 100/s, quiet 5 s, no Retry-After, 50 ms (written here)",
            {"strategy": "penalty", "limit": 100, "window": 1, "quiet": 5},
            0.05,
            penalty=True,
        ),
        _py(
            "changing",
            "limit 300/s, halved at 1/3 of the run, doubled back at 2/3, 100 ms (written here)",
            {"strategy": "changing", "limit": 300, "window": 1, "burst": 10},
            0.1,
            schedule=((0.0, 300.0), (1 / 3, 150.0), (2 / 3, 300.0)),
        ),
    )
}

CONTENDERS: dict[str, tuple[str, Callable[[Any, str, Path, float], RunResult]]] = {
    "pooledcrawl": ("pooledcrawl (adaptive)", _pooledcrawl(())),
    "scrapy": ("Scrapy AutoThrottle", _scrapy),
}


# ---- targets ------------------------------------------------------------------------------
@contextlib.contextmanager
def _serve(family: Family, site: Path, duration: float) -> Iterator[tuple[str, dict[str, Any]]]:
    """``(start URL, server-side counts)``; the counts fill in when the server stops."""
    counts: dict[str, Any] = {}
    run_dir = Path(tempfile.mkdtemp(prefix="pcbench-limiter-"))
    try:
        if family.server == "nginx":
            with _nginx_target(family, site, run_dir) as url:
                yield url + START_PATH, counts
            counts.update(arrival_gaps(run_dir / "arrivals.log", family))
        else:
            spec = dict(family.spec)
            spec["counts"] = str(run_dir / "counts.json")
            if family.schedule:
                spec["schedule"] = [[start * duration, rate] for start, rate in family.schedule]
            proc = subprocess.Popen(
                [sys.executable, "-m", "benchmarks._limiter_server", str(site), json.dumps(spec)],
                stdout=subprocess.PIPE,
                text=True,
                cwd=ROOT,
            )
            try:
                assert proc.stdout is not None
                line = proc.stdout.readline()
                if not line:
                    raise RuntimeError("the limiter server did not start")
                yield f"http://127.0.0.1:{int(line)}{START_PATH}", counts
            finally:
                _stop(proc)
                with contextlib.suppress(OSError, ValueError):
                    counts.update(json.loads((run_dir / "counts.json").read_text()))
    finally:
        shutil.rmtree(run_dir, ignore_errors=True)


@contextlib.contextmanager
def _nginx_target(family: Family, site: Path, run_dir: Path) -> Iterator[str]:
    module = echo_module()
    if not nginx_available() or module is None:
        raise RuntimeError("nginx with the echo module is needed for the nginx families")
    zone, directive = family.spec["directive"].split("|")
    user = "user root;" if os.geteuid() == 0 else ""
    temps = " ".join(
        f"{kind}_temp_path {run_dir}/{kind};"
        for kind in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi")
    )
    proc: subprocess.Popen[bytes] | None = None
    for _attempt in range(3):
        (port,) = _free_ports(1)
        conf = run_dir / "nginx.conf"
        conf.write_text(
            f"worker_processes 1; daemon off; pid {run_dir}/nginx.pid;\n"
            f"error_log {run_dir}/error.log warn; {user}\nload_module {module};\n"
            "events { worker_connections 4096; }\n"
            f"http {{ access_log off; sendfile on; tcp_nodelay on; default_type text/html;\n"
            # when each request arrived, on nginx's own millisecond clock (the one
            # limit_req reads): the end of the request less its duration
            "  log_format arrivals '$msec $request_time $status';\n"
            f"  keepalive_requests 1000000; keepalive_timeout 75s; {temps}\n"
            f"  {zone} limit_req_status 429; limit_conn_status 503;\n"
            f"  server {{ listen 127.0.0.1:{port};\n"
            f"    location /p/ {{ {directive} echo_sleep {family.delay};"
            f" access_log {run_dir}/arrivals.log arrivals buffer=256k flush=1s;"
            f" echo_location /raw$uri; }}\n"
            f"    location /raw/ {{ internal; alias {site}/; }} }} }}\n"
        )
        proc = subprocess.Popen(
            ["nginx", "-c", str(conf), "-p", str(run_dir), "-e", str(run_dir / "error.log")],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        if _wait_listening(proc, [port]):
            break
        _stop(proc)
        proc = None
    if proc is None:
        log = run_dir / "error.log"
        raise RuntimeError(f"nginx did not start: {log.read_text()[-500:] if log.exists() else ''}")
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        _stop(proc)


# ---- measures -----------------------------------------------------------------------------
def summarize(result: RunResult, family: Family, duration: float) -> dict[str, Any]:
    """The table's measures for one run of ``duration`` seconds."""
    seconds = len(result.ok)
    limits = [family.limit_at(s, duration) for s in range(seconds)]
    ceilings = [family.ceiling_at(s, duration) for s in range(seconds)]
    good = sum(result.ok)
    refused = sum(result.n429) + result.refused_other
    responses = good + sum(result.n429) + result.other
    t90 = None
    for end in range(_WINDOW, seconds + 1):
        window = slice(end - _WINDOW, end)
        if sum(result.ok[window]) >= 0.9 * sum(ceilings[window]):
            t90 = float(end)
            break
    return {
        "good_per_s": round(good / duration, 1),
        "share": round(good / max(sum(limits) + family.allowance, 1e-9), 4),
        # judged against: what the limiter lets any client have
        "share_ceiling": round(good / max(sum(ceilings) + family.allowance, 1e-9), 4),
        "share_429": round(refused / responses, 4) if responses else 0.0,
        "t90": t90,
        "lost": result.lost,
    }


def arrival_gaps(log: Path, family: Family) -> dict[str, Any]:
    """How evenly requests reached nginx, from its access log (arrival = ``$msec``
    less ``$request_time``, both on nginx's millisecond clock): the median and 10th
    percentile gap between arrivals, and for a ``spaced`` family the share of gaps
    shorter than :attr:`Family.min_gap_ms`: each such arrival, or the one before
    it, is refused."""
    try:
        lines = log.read_text().split("\n")
    except OSError:
        return {}
    arrivals: list[tuple[int, int]] = []
    for line in lines:
        parts = line.split()
        if len(parts) == 3:
            with contextlib.suppress(ValueError):
                end = round(float(parts[0]) * 1000)
                arrivals.append((end - round(float(parts[1]) * 1000), int(parts[2])))
    if len(arrivals) < 3:
        return {}
    arrivals.sort()
    gaps = sorted(b[0] - a[0] for a, b in itertools.pairwise(arrivals))
    out: dict[str, Any] = {
        "arrivals": len(arrivals),
        "gap_median_ms": gaps[len(gaps) // 2],
        "gap_p10_ms": gaps[len(gaps) // 10],
        "gap_p1_ms": gaps[len(gaps) // 100],
    }
    if family.spaced:
        need = family.min_gap_ms
        out["gaps_under_min"] = round(sum(g < need for g in gaps) / len(gaps), 4)
    return out


def _median(values: Sequence[float | None]) -> float | None:
    present = [v for v in values if v is not None]
    return float(statistics.median(present)) if present else None


@dataclasses.dataclass
class _Result(RunResult):
    refused_other: int = 0  # 503s from a concurrency limit


def _run_one(
    contender: str, family: Family, site: Path, duration: float
) -> tuple[RunResult, dict[str, Any]]:
    _label, run = CONTENDERS[contender]
    with (
        tempfile.TemporaryDirectory(prefix="pcbench-") as tmp,
        _serve(family, site, duration) as (url, counts),
    ):
        result = run(family, url, Path(tmp), duration)
        if not result.error:
            result = _with_503s(result, Path(tmp), contender)
    return result, counts


def _with_503s(result: RunResult, workdir: Path, contender: str) -> RunResult:
    """503s are refusals too (``limit_conn``); the contenders' loaders count them
    under ``other``, so they are read back here."""
    refused = 0
    if contender == "pooledcrawl":
        stats = orjson.loads((workdir / "stats.json").read_bytes())
        for domain in stats.get("domains", {}).values():
            refused += int(domain.get("status_counts", {}).get("503", 0))
    else:
        data = orjson.loads((workdir / "events.json").read_bytes())
        refused = sum(1 for _t, status in data["events"] if status == 503)
    fields = {f.name: getattr(result, f.name) for f in dataclasses.fields(RunResult)}
    return _Result(**fields, refused_other=refused)


def site_pages(families: Sequence[Family], duration: float, pages: int) -> int:
    """Pages the site needs: a crawl that runs out of pages before its time is up is
    held back by the site, not the limiter (1,000/s for 60 s is 60,000 pages), so the
    site has a quarter more than the fastest family's limit allows, ``pages`` at least."""
    allowed = max((f.rate * f.seconds(duration) + f.allowance for f in families), default=0)
    return max(pages, math.ceil(1.25 * allowed))


def run_all(args: argparse.Namespace) -> dict[str, Any]:
    pages = site_pages(args.only, args.duration, args.pages)
    site = args.site or Path(tempfile.gettempdir()) / f"pcbench-site-{pages}"
    if not (site / "p" / f"{pages - 1}.html").exists():
        print(f"generating {pages} pages in {site} ...", file=sys.stderr)
        generate_site(site, pages)
    report: dict[str, Any] = {
        "machine": f"{platform.machine()}, {os.cpu_count()} CPUs, "
        f"Python {platform.python_version()}",
        "duration_s": args.duration,
        "runs": args.runs,
        "anchor_runs": args.anchor_runs,
        "families": {},
    }
    for family in args.only:
        duration = family.seconds(args.duration)
        entry: dict[str, Any] = {
            "title": family.title,
            "duration_s": duration,
            "limit": [family.limit_at(s, duration) for s in range(int(duration))],
            "ceiling": [family.ceiling_at(s, duration) for s in range(int(duration))],
            "contenders": {},
        }
        report["families"][family.key] = entry
        for contender in args.contenders:
            runs: list[dict[str, Any]] = []
            series: list[dict[str, Any]] = []
            runs_wanted = args.runs if contender == "pooledcrawl" else args.anchor_runs
            for run in range(runs_wanted):
                print(f"{family.key} / {contender} run {run + 1} ...", file=sys.stderr, flush=True)
                try:
                    result, counts = _run_one(contender, family, site, duration)
                except RuntimeError as exc:
                    runs.append({"error": str(exc)})
                    continue
                if result.error:
                    print(f"  failed: {result.error}", file=sys.stderr)
                    runs.append({"error": result.error})
                    continue
                summary = summarize(result, family, duration)
                summary["server_counts"] = counts
                runs.append(summary)
                series.append({"ok": result.ok, "n429": result.n429, "rate": result.rate})
                print(f"  {summary}", file=sys.stderr, flush=True)
            entry["contenders"][contender] = {
                "label": CONTENDERS[contender][0],
                "runs": runs,
                "median": {
                    key: _median([r.get(key) for r in runs if "error" not in r])
                    for key in ("good_per_s", "share", "share_ceiling", "share_429", "t90", "lost")
                },
                "series": series[:1],
            }
    return report


# ---- reporting ----------------------------------------------------------------------------
def format_table(report: dict[str, Any]) -> str:
    anchor = report.get("anchor_runs", report["runs"])
    lines = [
        f"rate-limiter families, {report['duration_s']:.0f} s from a cold start (x3 for 60 s "
        f"windows), median of {report['runs']} run(s) ({anchor} for Scrapy); "
        f"{report['machine']}",
        "",
        f"{'family':<16}{'contender':<24}{'good %':>8}{'of ceil':>8}{'429 %':>8}{'90% at':>8}"
        f"{'lost':>6}",
    ]
    for key, entry in report["families"].items():
        for result in entry["contenders"].values():
            m = result["median"]
            if m["share"] is None:
                lines.append(f"{key:<16}{result['label']:<24}  failed")
                continue
            t90 = "never" if m["t90"] is None else f"{m['t90']:.0f} s"
            ceiling = m.get("share_ceiling") or m["share"]
            lines.append(
                f"{key:<16}{result['label']:<24}{m['share']:>8.1%}{ceiling:>8.1%}"
                f"{m['share_429']:>8.2%}{t90:>8}{m['lost']:>6.0f}"
            )
    lines += [
        "",
        "targets: >= 90% of the limit (80% for the penalty box), <= 3% 429s/503s, 0 lost;",
        "'of ceil': of what the limiter lets any client have (nginx limit_req without a",
        "burst counts whole ms: a request must come ceil(1000/rate) ms after the last one",
        "accepted, so 300 r/s lets 250 through); the limit elsewhere",
    ]
    return "\n".join(lines)


def _pace_share(entry: dict[str, Any], result: dict[str, Any]) -> float | None:
    """pooledcrawl's paced rate over the second half of its first run, as a share of
    the limit: what the controller learned, whatever the client's CPU managed."""
    for series in result.get("series", [])[:1]:
        rates = series.get("rate") or []
        limits = entry["limit"]
        half = len(rates) // 2
        pairs = [(r, lim) for r, lim in zip(rates[half:], limits[half:], strict=False) if r]
        if pairs:
            return float(statistics.median(r / lim for r, lim in pairs))
    return None


def format_markdown(report: dict[str, Any]) -> str:
    """The README's table: family x contender."""
    lines = [
        "| family | ceiling | pooledcrawl good % | of ceiling | 429s % | 90% at | paced at | "
        "Scrapy good % | of ceiling | 429s % | 90% at |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]

    def cells(m: dict[str, Any] | None) -> list[str]:
        if not m or m.get("share") is None:
            return ["-", "-", "-", "-"]
        t90 = "never" if m["t90"] is None else f"{m['t90']:.0f} s"
        ceiling = m.get("share_ceiling") or m["share"]
        return [f"{m['share']:.0%}", f"{ceiling:.0%}", f"{m['share_429']:.1%}", t90]

    for key, entry in report["families"].items():
        contenders = entry["contenders"]
        pc = contenders.get("pooledcrawl")
        pace = _pace_share(entry, pc) if pc else None
        limits, ceilings = entry["limit"], entry.get("ceiling")
        if ceilings is None:  # a report saved before ceilings were
            family = FAMILIES.get(key)
            seconds = range(len(limits))
            ceilings = [family.ceiling_at(t, len(limits)) for t in seconds] if family else limits
        ceiling = sum(ceilings) / max(sum(limits), 1e-9)
        row = [f"`{key}`", f"{ceiling:.0%}", *cells(pc and pc["median"])]
        row.append("-" if pace is None else f"{pace:.0%}")
        row += cells(contenders.get("scrapy", {}).get("median"))
        lines.append("| " + " | ".join(row) + " |")
    return "\n".join(lines)


_COLORS = {"pooledcrawl": "#1f77b4", "scrapy": "#ff7f0e"}


def _chart(key: str, entry: dict[str, Any]) -> str:
    width, height, pad = 760, 260, 40
    seconds = int(entry["duration_s"])
    limits: list[float] = entry["limit"]
    peak = max(
        [max(limits) * 1.3]
        + [max(s["ok"] + s["n429"], default=0) for c in entry["contenders"].values()
           for s in c["series"]]
    )  # fmt: skip
    peak = min(peak, max(limits) * 4)  # a cold-start burst would flatten the rest

    def x(t: float) -> float:
        return pad + (width - 2 * pad) * t / max(seconds, 1)

    def y(v: float) -> float:
        return float(height - pad - (height - 2 * pad) * min(v, peak) / peak)

    def points(values: Sequence[float | None]) -> str:
        return " ".join(
            f"{x(t + 0.5):.1f},{y(v):.1f}" for t, v in enumerate(values) if v is not None
        )

    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
        'font-family="sans-serif" font-size="11">',
        f'<rect width="{width}" height="{height}" fill="white"/>',
        f'<line x1="{pad}" y1="{y(0)}" x2="{width - pad}" y2="{y(0)}" stroke="#999"/>',
        f'<text x="{pad}" y="16" font-size="13">{html.escape(key)}: '
        f"{html.escape(entry['title'])}</text>",
        f'<polyline fill="none" stroke="#555" stroke-dasharray="5,4" points="{points(limits)}"/>',
    ]
    step = max(10, seconds // 6 // 10 * 10)
    for tick in range(0, seconds + 1, step):
        parts.append(f'<text x="{x(tick)}" y="{y(0) + 14}" text-anchor="middle">{tick}s</text>')
    for value in (0.5, 1.0):
        v = max(limits) * value
        parts.append(f'<text x="{pad - 4}" y="{y(v) + 4}" text-anchor="end">{v:.0f}</text>')
    legend = [("limit", "#555", "5,4")]
    for ckey, result in entry["contenders"].items():
        color = _COLORS.get(ckey, "#333")
        for s in result["series"][:1]:
            parts.append(
                f'<polyline fill="none" stroke="{color}" stroke-width="2" '
                f'points="{points(s["ok"])}"/>'
            )
            parts.append(
                f'<polyline fill="none" stroke="{color}" stroke-dasharray="2,2" '
                f'points="{points(s["n429"])}"/>'
            )
            legend += [(f"{result['label']} good/s", color, ""), ("429s/s", color, "2,2")]
    for i, (label, color, dash) in enumerate(legend):
        ly = pad + 14 * i
        parts.append(
            f'<line x1="{width - 230}" y1="{ly}" x2="{width - 205}" y2="{ly}" stroke="{color}" '
            f'stroke-width="2" stroke-dasharray="{dash}"/>'
            f'<text x="{width - 200}" y="{ly + 4}">{html.escape(label)}</text>'
        )
    parts.append("</svg>")
    return "\n".join(parts)


def write_html(report: dict[str, Any], path: Path) -> None:
    charts = "".join(f"<p>{_chart(k, e)}</p>" for k, e in report["families"].items())
    path.write_text(
        "<!doctype html><meta charset='utf-8'><title>pooledcrawl rate-limiter benchmark</title>"
        "<body style='font-family:sans-serif'><h2>Rate-limiter families</h2>"
        f"<pre>{html.escape(format_table(report))}</pre>{charts}"
    )


# ---- command line -------------------------------------------------------------------------
def _pick(table: dict[str, Any], text: str, what: str) -> list[Any]:
    keys = [k.strip() for k in text.split(",") if k.strip()]
    unknown = [k for k in keys if k not in table]
    if unknown or not keys:
        raise argparse.ArgumentTypeError(
            f"unknown {what} {', '.join(unknown) or '(none)'}: choose from {', '.join(table)}"
        )
    return [table[k] if what == "family" else k for k in keys]


def _parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.limiters", description=__doc__.split("\n\n")[0]
    )
    parser.add_argument(
        "--only",
        type=lambda t: _pick(FAMILIES, t, "family"),
        default=list(FAMILIES.values()),
        help=f"comma-separated families: {', '.join(FAMILIES)} (default: all)",
    )
    parser.add_argument(
        "--contenders",
        type=lambda t: _pick(CONTENDERS, t, "contender"),
        default=list(CONTENDERS),
        help="pooledcrawl,scrapy (default: both)",
    )
    parser.add_argument("--runs", type=int, default=3, help="runs per contender (default 3)")
    parser.add_argument(
        "--anchor-runs",
        type=int,
        help="runs for Scrapy (default: --runs; fewer saves time, it is the anchor)",
    )
    parser.add_argument(
        "--duration", type=float, default=60.0, help="seconds per crawl (x3 for 60 s windows)"
    )
    parser.add_argument(
        "--pages",
        type=int,
        default=20_000,
        help="site size (default 20000; more where a family allows more in its run)",
    )
    parser.add_argument("--site", type=Path, help="where the site is (generated if missing)")
    parser.add_argument("--out", type=Path, help="result JSON (default: benchmarks/results/)")
    parser.add_argument(
        "--report", type=Path, help="print the tables of a saved result JSON and rewrite its HTML"
    )
    args = parser.parse_args(argv)
    if args.anchor_runs is None:
        args.anchor_runs = args.runs
    if args.runs < 1 or args.anchor_runs < 1 or args.duration < 2 * _WINDOW:
        parser.error(f"--runs must be >= 1 and --duration >= {2 * _WINDOW}")
    return args


def main(argv: Sequence[str] | None = None) -> int:
    args = _parse_args(argv)
    if args.report:
        report = orjson.loads(args.report.read_bytes())
        print(format_table(report), format_markdown(report), sep="\n\n")
        write_html(report, args.report.with_suffix(".html"))
        return 0
    report = run_all(args)
    print(format_table(report), format_markdown(report), sep="\n\n")
    out = args.out or RESULTS_DIR / f"limiters-{time.strftime('%Y%m%d-%H%M%S')}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_bytes(orjson.dumps(report, option=orjson.OPT_INDENT_2))
    write_html(report, out.with_suffix(".html"))
    print(f"\nresults: {out}\ntimelines: {out.with_suffix('.html')}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
