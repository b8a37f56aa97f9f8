"""Adaptive concurrency: pooledcrawl's controller next to Scrapy's AutoThrottle.

    python -m benchmarks.throttle                      # every scenario, 1 run each
    python -m benchmarks.throttle --runs 3 --scenarios a,halving --only pooledcrawl,scrapy

Each scenario serves the link-graph site behind a token-bucket limit (nginx
``limit_req ... burst=10 nodelay`` when installed, 429 over the limit, latency
added with the echo module; else a Python server) and crawls it from a cold
start for ``--duration`` seconds, every contender in its own process:

* ``a``: 300 r/s, 100 ms, pooledcrawl with the ``datacenter`` profile (50 -> 200);
* ``residential``: 50 r/s, 300 ms, the ``residential`` profile (30 -> 100);
* ``halving``: 300 r/s, 100 ms, halved to 150 r/s halfway through the crawl.

Contenders: ``pooledcrawl`` (adaptive), ``scrapy`` (AutoThrottle, target
concurrency 64; needs the ``bench`` extra), and ``fixed`` (pooledcrawl with
``--autothrottle off`` at 64 per domain, a reference).

Reported per scenario and contender (medians over the runs): good pages/s and
their share of the limit, the share of 429s among responses, the time until a
5 s window first averages 90% of the limit, and requests lost (given up on).
The table goes to stdout, the data to ``benchmarks/results/throttle-*.json`` and
the timelines to an HTML file with SVG charts (a PNG too if matplotlib is
installed).
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import html
import importlib.util
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

import orjson

from benchmarks._throttle_server import serve_switchable
from benchmarks.servers import Port, serve
from benchmarks.site import START_PATH, generate_site

__all__ = ["CONTENDERS", "SCENARIOS", "RunResult", "Scenario", "main", "summarize"]

ROOT = Path(__file__).resolve().parent.parent
RESULTS_DIR = Path(__file__).resolve().parent / "results"
PC_SPIDER = Path(__file__).resolve().parent / "contenders" / "pc_css.py"
#: the targets for scenario A (issue 5)
TARGETS = {"share": 0.95, "share_429": 0.02, "t90": 10.0, "lost": 0}
_WINDOW = 5  # seconds: "a 5 s window first reaches 90% of the limit"


@dataclasses.dataclass(frozen=True)
class Scenario:
    key: str
    title: str
    rate: float
    delay: float
    profile: str
    burst: int = 10
    halve: bool = False
    """Halve the limit halfway through the crawl."""

    def limit_at(self, second: int, duration: float) -> float:
        return self.rate / 2 if self.halve and second >= duration / 2 else self.rate


SCENARIOS = {
    s.key: s
    for s in (
        Scenario("a", "A: 300 r/s, 100 ms, datacenter (50 -> 200)", 300, 0.1, "datacenter"),
        Scenario("residential", "residential: 50 r/s, 300 ms (30 -> 100)", 50, 0.3, "residential"),
        Scenario(
            "halving", "300 r/s halved to 150 halfway, 100 ms", 300, 0.1, "datacenter", halve=True
        ),
    )
}


@dataclasses.dataclass
class RunResult:
    """One crawl, reduced to per-second counts from the first request."""

    ok: list[int]
    n429: list[int]
    other: int = 0
    lost: int = 0
    rate: list[float | None] = dataclasses.field(default_factory=list)
    concurrency: list[int] = dataclasses.field(default_factory=list)
    error: str | None = None


@dataclasses.dataclass(frozen=True)
class Contender:
    key: str
    label: str
    run: Callable[[Scenario, str, Path, float], RunResult]
    requires: str | None = None


# ---- contenders --------------------------------------------------------------------------
def _pooledcrawl(extra: Sequence[str]) -> Callable[[Scenario, str, Path, float], RunResult]:
    def run(scenario: Scenario, url: str, workdir: Path, duration: float) -> RunResult:
        stats_path = workdir / "stats.json"
        argv = [
            sys.executable, "-m", "pooledcrawl", "crawl", str(PC_SPIDER),
            "-a", f"start={url}", "-O", str(workdir / "items.jsonl"),
            "--stats", str(stats_path), "--timeout", str(duration),
            "--profile", scenario.profile, "--log-level", "ERROR", *extra,
        ]  # fmt: skip
        proc = subprocess.run(argv, capture_output=True, text=True, cwd=ROOT)
        if not stats_path.exists():
            return RunResult([], [], error=(proc.stderr.strip() or "no stats")[-300:])
        stats = orjson.loads(stats_path.read_bytes())
        domains = stats.get("domains", {})
        if not domains:
            return RunResult([], [], error="no domain in stats")
        domain = next(iter(domains.values()))
        rows = domain.get("timeline", [])
        seconds = int(duration)
        result = RunResult([0] * seconds, [0] * seconds, lost=int(stats.get("failed", 0)))
        result.rate = [None] * seconds
        result.concurrency = [0] * seconds
        for t, concurrency, rate, ok, n429 in rows:
            if 0 <= t < seconds:
                result.ok[t], result.n429[t] = ok, n429
                result.rate[t], result.concurrency[t] = rate, concurrency
        counts = domain.get("status_counts", {})
        result.other = sum(n for code, n in counts.items() if code not in ("200", "429"))
        return result

    return run


def _scrapy(scenario: Scenario, url: str, workdir: Path, duration: float) -> RunResult:
    events_path = workdir / "events.json"
    argv = [
        sys.executable, "-m", "benchmarks._throttle_scrapy", url, str(events_path),
        "--duration", str(duration), "--concurrency", "64", "--out", str(workdir / "items.jsonl"),
    ]  # fmt: skip
    proc = subprocess.run(argv, capture_output=True, text=True, cwd=ROOT)
    if not events_path.exists():
        return RunResult([], [], error=(proc.stderr.strip() or "no events")[-300:])
    data = orjson.loads(events_path.read_bytes())
    seconds = int(duration)
    result = RunResult([0] * seconds, [0] * seconds, lost=int(data.get("lost", 0)))
    for t, status in data["events"]:
        second = int(t)
        if not 0 <= second < seconds:
            continue
        if status == 200:
            result.ok[second] += 1
        elif status == 429:
            result.n429[second] += 1
        else:
            result.other += 1
    return result


CONTENDERS = {
    c.key: c
    for c in (
        Contender("pooledcrawl", "pooledcrawl (adaptive)", _pooledcrawl(())),
        Contender("scrapy", "Scrapy AutoThrottle", _scrapy, requires="scrapy"),
        Contender(
            "fixed",
            "pooledcrawl fixed 64",
            _pooledcrawl(("--autothrottle", "off", "-s", "domain_concurrency=64")),
        ),
    )
}


# ---- measures ----------------------------------------------------------------------------
def summarize(result: RunResult, scenario: Scenario, duration: float) -> dict[str, Any]:
    """The table's measures for one run."""
    seconds = len(result.ok)
    limits = [scenario.limit_at(s, duration) for s in range(seconds)]
    good = sum(result.ok)
    responses = good + sum(result.n429) + result.other
    t90 = None
    for end in range(_WINDOW, seconds + 1):
        window = slice(end - _WINDOW, end)
        if sum(result.ok[window]) >= 0.9 * sum(limits[window]):
            t90 = float(end)
            break
    good_per_s = good / duration
    return {
        "good_per_s": round(good_per_s, 1),
        "share": round(good_per_s / (sum(limits) / max(seconds, 1)), 4),
        "share_429": round(sum(result.n429) / responses, 4) if responses else 0.0,
        "t90": t90,
        "lost": result.lost,
    }


def _median(values: Sequence[float | None]) -> float | None:
    present = [v for v in values if v is not None]
    return float(statistics.median(present)) if present else None


# ---- running -----------------------------------------------------------------------------
@contextlib.contextmanager
def _target(
    scenario: Scenario, site: Path, kind: str, duration: float
) -> Iterator[tuple[str, str]]:
    """``(start URL, server description)``; for ``halving``, the limit halves
    ``duration / 2`` seconds after the first request."""
    if not scenario.halve:
        port = Port("limited", rate=scenario.rate, burst=scenario.burst, delay=scenario.delay)
        with serve(site, [port], kind=kind) as server:  # type: ignore[arg-type]
            yield server.url("limited") + START_PATH, f"{server.kind}: {server.detail}"
        return
    with serve_switchable(
        site,
        rate=scenario.rate,
        burst=scenario.burst,
        delay=scenario.delay,
        kind=kind,  # type: ignore[arg-type]
    ) as target:
        stop = threading.Event()

        def switch() -> None:
            first = target.wait_first_request(timeout=120)
            if first is not None and not stop.wait(max(first + duration / 2 - time.monotonic(), 0)):
                target.halve()

        thread = threading.Thread(target=switch, daemon=True)
        thread.start()
        try:
            yield target.url + START_PATH, f"{target.kind}: {target.detail}"
        finally:
            stop.set()
            thread.join(timeout=5)


def run_all(args: argparse.Namespace) -> dict[str, Any]:
    site = args.site or Path(tempfile.gettempdir()) / f"pcbench-site-{args.pages}"
    if not (site / "p" / f"{args.pages - 1}.html").exists():
        print(f"generating {args.pages} pages in {site} ...", file=sys.stderr)
        generate_site(site, args.pages)
    report: dict[str, Any] = {
        "machine": (
            f"{platform.machine()}, {os.cpu_count()} CPUs, Python {platform.python_version()}"
        ),
        "duration_s": args.duration,
        "runs": args.runs,
        "scenarios": {},
    }
    for scenario in args.scenarios:
        entry: dict[str, Any] = {"title": scenario.title, "contenders": {}}
        report["scenarios"][scenario.key] = entry
        for contender in args.only:
            if contender.requires and importlib.util.find_spec(contender.requires) is None:
                missing = f"{contender.requires} not installed (pip install 'pooledcrawl[bench]')"
                entry["contenders"][contender.key] = {"label": contender.label, "skipped": missing}
                continue
            runs: list[dict[str, Any]] = []
            series: list[dict[str, Any]] = []
            for run in range(args.runs):
                print(f"{scenario.key} / {contender.key} run {run + 1} ...", file=sys.stderr)
                with (
                    tempfile.TemporaryDirectory(prefix="pcbench-") as tmp,
                    _target(scenario, site, args.server, args.duration) as (url, server),
                ):
                    entry["server"] = server
                    result = contender.run(scenario, url, Path(tmp), args.duration)
                if result.error:
                    print(f"  failed: {result.error}", file=sys.stderr)
                    runs.append({"error": result.error})
                    continue
                runs.append(summarize(result, scenario, args.duration))
                series.append(dataclasses.asdict(result))
            entry["contenders"][contender.key] = {
                "label": contender.label,
                "runs": runs,
                "median": {
                    key: _median([r.get(key) for r in runs if "error" not in r])
                    for key in ("good_per_s", "share", "share_429", "t90", "lost")
                },
                "series": series[:1],  # the first run's timeline, for the plot
            }
    return report


# ---- reporting ---------------------------------------------------------------------------
def format_table(report: dict[str, Any]) -> str:
    lines = [f"adaptive concurrency, {report['duration_s']:.0f} s from a cold start, "
             f"median of {report['runs']} run(s); {report['machine']}"]  # fmt: skip
    header = (
        f"{'contender':<26}{'good pages/s':>14}{'of limit':>10}{'429s':>8}{'90% at':>9}{'lost':>6}"
    )
    for key, entry in report["scenarios"].items():
        lines += ["", f"[{key}] {entry['title']}  ({entry.get('server', '-')})", header]
        for result in entry["contenders"].values():
            if "skipped" in result:
                lines.append(f"{result['label']:<26}  skipped: {result['skipped']}")
                continue
            m = result["median"]
            if m["good_per_s"] is None:
                lines.append(f"{result['label']:<26}  failed")
                continue
            t90 = "never" if m["t90"] is None else f"{m['t90']:.0f} s"
            lines.append(
                f"{result['label']:<26}{m['good_per_s']:>14.1f}{m['share']:>10.1%}"
                f"{m['share_429']:>8.2%}{t90:>9}{m['lost']:>6.0f}"
            )
    lines += [
        "",
        f"targets (A): >= {TARGETS['share']:.0%} of the limit, <= {TARGETS['share_429']:.0%} 429s, "
        f"90% within {TARGETS['t90']:.0f} s, {TARGETS['lost']} lost",
    ]
    return "\n".join(lines)


_COLORS = {"pooledcrawl": "#1f77b4", "scrapy": "#ff7f0e", "fixed": "#2ca02c"}


def _svg_chart(key: str, entry: dict[str, Any], duration: float, scenario: Scenario) -> str:
    width, height, pad = 760, 300, 40
    seconds = int(duration)
    peak = max(
        [scenario.rate * 1.2]
        + [max(s["ok"] + s["n429"], default=0) for c in entry["contenders"].values()
           for s in c.get("series", [])]
    )  # fmt: skip

    def x(t: float) -> float:
        return pad + (width - 2 * pad) * t / max(seconds, 1)

    def y(v: float) -> float:
        return float(height - pad - (height - 2 * pad) * v / peak)

    def path(values: Sequence[float | None]) -> str:
        points = [f"{x(t + 0.5):.1f},{y(v):.1f}" for t, v in enumerate(values) if v is not None]
        return " ".join(points)

    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
        f'font-family="sans-serif" font-size="11">',
        f'<rect width="{width}" height="{height}" fill="white"/>',
        f'<line x1="{pad}" y1="{y(0)}" x2="{width - pad}" y2="{y(0)}" stroke="#999"/>',
        f'<line x1="{pad}" y1="{y(0)}" x2="{pad}" y2="{pad}" stroke="#999"/>',
    ]
    for tick in range(0, seconds + 1, 5):
        parts.append(f'<text x="{x(tick)}" y="{y(0) + 14}" text-anchor="middle">{tick}s</text>')
    step = max(round(peak / 5, -1), 10)
    value = 0.0
    while value <= peak:
        parts.append(f'<text x="{pad - 4}" y="{y(value) + 4}" text-anchor="end">{value:.0f}</text>')
        value += step
    limits = [scenario.limit_at(s, duration) for s in range(seconds)]
    parts.append(
        f'<polyline fill="none" stroke="#555" stroke-dasharray="5,4" points="{path(limits)}"/>'
    )
    legend = [("limit", "#555", "5,4")]
    for ckey, result in entry["contenders"].items():
        for s in result.get("series", [])[:1]:
            color = _COLORS.get(ckey, "#333")
            parts.append(
                f'<polyline fill="none" stroke="{color}" stroke-width="2" '
                f'points="{path(s["ok"])}"/>'
            )
            parts.append(
                f'<polyline fill="none" stroke="{color}" stroke-dasharray="2,2" '
                f'points="{path(s["n429"])}"/>'
            )
            legend.append((f"{result['label']}: good/s", color, ""))
            legend.append((f"{result['label']}: 429/s", color, "2,2"))
            if any(r is not None for r in s.get("rate", [])):
                parts.append(
                    f'<polyline fill="none" stroke="{color}" stroke-opacity="0.35" '
                    f'points="{path(s["rate"])}"/>'
                )
                legend.append((f"{result['label']}: paced rate", color + "59", ""))
    for i, (label, color, dash) in enumerate(legend):
        ly = pad + 4 + 14 * i
        parts.append(
            f'<line x1="{width - 250}" y1="{ly}" x2="{width - 225}" y2="{ly}" stroke="{color}" '
            f'stroke-width="2" stroke-dasharray="{dash}"/>'
        )
        parts.append(f'<text x="{width - 220}" y="{ly + 4}">{html.escape(label)}</text>')
    parts.append(f'<text x="{pad}" y="16" font-size="13">{html.escape(entry["title"])}</text>')
    parts.append("</svg>")
    return "\n".join(parts)


def write_plot(report: dict[str, Any], path: Path, scenarios: dict[str, Scenario]) -> list[Path]:
    """An HTML page with one SVG chart per scenario; also a PNG with matplotlib."""
    duration = report["duration_s"]
    charts = [
        _svg_chart(key, entry, duration, scenarios[key])
        for key, entry in report["scenarios"].items()
    ]
    page = (
        "<!doctype html><meta charset='utf-8'><title>pooledcrawl throttle benchmark</title>"
        "<body style='font-family:sans-serif'><h2>Adaptive concurrency timelines</h2>"
        f"<pre>{html.escape(format_table(report))}</pre>" + "".join(f"<p>{c}</p>" for c in charts)
    )
    path.write_text(page)
    written = [path]
    if importlib.util.find_spec("matplotlib") is not None:
        written.append(_write_png(report, path.with_suffix(".png"), scenarios))
    return written


def _write_png(report: dict[str, Any], path: Path, scenarios: dict[str, Scenario]) -> Path:
    import matplotlib  # type: ignore[import-not-found,unused-ignore]

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt  # type: ignore[import-not-found,unused-ignore]

    duration = report["duration_s"]
    entries = list(report["scenarios"].items())
    fig, axes = plt.subplots(len(entries), 1, figsize=(10, 3.5 * len(entries)), squeeze=False)
    for ax, (key, entry) in zip(axes[:, 0], entries, strict=True):
        seconds = range(int(duration))
        ax.plot(
            seconds, [scenarios[key].limit_at(s, duration) for s in seconds], "k--", label="limit"
        )
        for ckey, result in entry["contenders"].items():
            for s in result.get("series", [])[:1]:
                color = _COLORS.get(ckey)
                ax.plot(s["ok"], color=color, label=f"{result['label']} good/s")
                ax.plot(s["n429"], color=color, linestyle=":", label=f"{result['label']} 429/s")
        ax.set_title(entry["title"])
        ax.set_xlabel("seconds")
        ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path)
    return path


# ---- command line ------------------------------------------------------------------------
def _choices(table: dict[str, Any], text: str, what: str) -> list[Any]:
    keys = [k.strip().lower() for k in text.split(",") if k.strip()]
    unknown = [k for k in keys if k not in table]
    if unknown or not keys:
        raise argparse.ArgumentTypeError(
            f"unknown {what} {', '.join(unknown) or '(none)'}: choose from {', '.join(table)}"
        )
    return [table[k] for k in keys]


def _parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.throttle", description=__doc__.split("\n\n")[0]
    )
    parser.add_argument(
        "--scenarios",
        type=lambda t: _choices(SCENARIOS, t, "scenario"),
        default=list(SCENARIOS.values()),
        help=f"comma-separated: {', '.join(SCENARIOS)} (default: all)",
    )
    parser.add_argument(
        "--only",
        type=lambda t: _choices(CONTENDERS, t, "contender"),
        default=[CONTENDERS["pooledcrawl"], CONTENDERS["scrapy"]],
        help=f"contenders: {', '.join(CONTENDERS)} (default: pooledcrawl,scrapy)",
    )
    parser.add_argument("--runs", type=int, default=1, help="runs per contender (default 1)")
    parser.add_argument("--duration", type=float, default=30.0, help="seconds per crawl")
    parser.add_argument("--pages", type=int, default=20_000, help="site size (default 20000)")
    parser.add_argument("--server", choices=("auto", "nginx", "python"), default="auto")
    parser.add_argument("--site", type=Path, help="where the site is (generated if missing)")
    parser.add_argument("--out", type=Path, help="result JSON (default: benchmarks/results/)")
    parser.add_argument("--plot", type=Path, help="timeline HTML (default: next to the JSON)")
    parser.add_argument("--no-plot", action="store_true", help="skip the timeline charts")
    args = parser.parse_args(argv)
    if args.runs < 1 or args.duration < _WINDOW:
        parser.error(f"--runs must be >= 1 and --duration >= {_WINDOW}")
    return args


def main(argv: Sequence[str] | None = None) -> int:
    args = _parse_args(argv)
    report = run_all(args)
    print(format_table(report))
    stamp = time.strftime("%Y%m%d-%H%M%S")
    out = args.out or RESULTS_DIR / f"throttle-{stamp}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_bytes(orjson.dumps(report, option=orjson.OPT_INDENT_2))
    print(f"\nresults: {out}")
    if not args.no_plot:
        plot = args.plot or out.with_suffix(".html")
        for path in write_plot(report, plot, SCENARIOS):
            print(f"timeline: {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
