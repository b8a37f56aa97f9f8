"""The documentation's figures, produced by measurement rather than drawn by hand.

    python -m benchmarks.docs_figures                        # both figures
    python -m benchmarks.docs_figures --only timeline --duration 20
    python -m benchmarks.docs_figures --only timeline --stats stats.json   # an existing crawl
    python -m benchmarks.docs_figures --only throughput --results benchmarks/results/x.json

``docs/img/adaptive-timeline.svg``: pooledcrawl crawls the benchmark link graph from
a cold start for ``--duration`` seconds behind a token-bucket limiter on 127.0.0.1
(scenario A of ``benchmarks.throttle``: nginx ``limit_req`` at 300 r/s, burst 10,
429 over it, 100 ms per page, or the Python server when nginx cannot add the
delay), with the ``datacenter`` profile. The chart is drawn from the crawl's own
``--stats`` file: the domain's controller timeline (pages/s, 429s/s, pace and
concurrency limit per second), with the charts of ``pooledcrawl.report``.

``docs/img/throughput.svg``: pages/s of pooledcrawl, the hand-written loop, Scrapy
and Crawlee, from the newest ``benchmarks/results/throughput-*.json`` (written by
``python -m benchmarks.throughput``) or, when there is none, from the table of the
README's Performance section (``docs/performance.md`` once the README no longer
has it), so the figure shows what the docs state.
"""

from __future__ import annotations

import argparse
import datetime
import re
import subprocess
import sys
import tempfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from html import escape
from pathlib import Path
from typing import Any

import orjson

from benchmarks.servers import Port, serve
from benchmarks.site import START_PATH, generate_site
from benchmarks.throttle import PC_SPIDER, SCENARIOS, Scenario
from pooledcrawl.report.svg import Series, line_chart, nice_ticks

__all__ = [
    "Bar",
    "DomainTimeline",
    "adaptive_timeline_svg",
    "bars_from_readme",
    "bars_from_results",
    "domain_timeline",
    "main",
    "performance_text",
    "throughput_svg",
]

ROOT = Path(__file__).resolve().parent.parent
IMG_DIR = ROOT / "docs" / "img"
RESULTS_DIR = Path(__file__).resolve().parent / "results"
README = ROOT / "README.md"
PERFORMANCE_PAGE = ROOT / "docs" / "performance.md"
#: the README's rows drawn by default: the side-by-side contenders, one target
DEFAULT_ROWS = ("a", "b", "c", "d", "e")

_WIDTH = 560
_TEXT = "#4a5560"
_BLUE, _PINK, _GREY, _PURPLE, _AMBER = "#2f6fde", "#e64980", "#868e96", "#5f3dc4", "#f08c00"


# ---- the adaptive timeline ----------------------------------------------------------------
@dataclass
class DomainTimeline:
    """One domain's controller timeline, per second from its first request."""

    host: str
    interval: float
    t: list[float]
    concurrency: list[float | None]
    rate: list[float | None]
    ok: list[float]
    n429: list[float]


def domain_timeline(stats: Mapping[str, Any]) -> DomainTimeline:
    """The busiest domain's timeline from a ``--stats`` file (rows ``[t, concurrency,
    rate, ok, n429]``; a bare list or ``{"interval_s", "rows"}``)."""
    domains: Mapping[str, Mapping[str, Any]] = stats.get("domains") or {}
    with_rows = {host: info for host, info in domains.items() if info.get("timeline")}
    if not with_rows:
        raise ValueError("the stats have no per-domain timeline (was autothrottle on?)")
    host, info = max(with_rows.items(), key=lambda kv: int(kv[1].get("pages") or 0))
    data = info["timeline"]
    interval = 1.0
    rows = data
    if isinstance(data, Mapping):
        interval = float(data.get("interval_s") or 1.0)
        rows = data.get("rows") or []
    out = DomainTimeline(host, interval, [], [], [], [], [])
    for row in rows:
        t, concurrency, rate, ok, n429 = row[:5]
        out.t.append(float(t))
        out.concurrency.append(None if concurrency is None else float(concurrency))
        out.rate.append(None if rate is None else float(rate))
        out.ok.append(float(ok or 0) / interval)
        out.n429.append(float(n429 or 0) / interval)
    return out


def _points(t: Sequence[float], values: Sequence[float | None]) -> list[tuple[float, float]]:
    return [(x, y) for x, y in zip(t, values, strict=True) if y is not None]


def adaptive_timeline_svg(
    stats: Mapping[str, Any], *, limit: float | None = None, caption: str = ""
) -> str:
    """Two panels over one time axis: responses per second (good pages, 429s, the
    controller's pace, the server's limit) above the concurrency limit."""
    tl = domain_timeline(stats)
    end = (tl.t[-1] + tl.interval) if tl.t else 0.0
    rates = [
        Series("pages/s (200)", _BLUE, _points(tl.t, tl.ok), area=True),
        Series("429s/s", _PINK, _points(tl.t, tl.n429)),
        Series("pace (r/s)", _AMBER, _points(tl.t, tl.rate), dashed=True),
    ]
    if limit is not None and tl.t:
        rates.append(Series("server limit", _GREY, [(0.0, limit), (end, limit)], dashed=True))
    concurrency = [Series("concurrency limit", _PURPLE, _points(tl.t, tl.concurrency), step=True)]
    top = line_chart(rates, title="responses per second", y_label="per second", unit="/s",
                     x_max=end, height=250)  # fmt: skip
    bottom = line_chart(concurrency, title="concurrency limit", y_label="requests",
                        x_max=end, height=170)  # fmt: skip
    title = "Adaptive concurrency behind a rate limit, from a cold start"
    return _compose(title, caption, [*rates, *concurrency], [(top, 250), (bottom, 170)])


def _compose(
    title: str, caption: str, legend: Sequence[Series], charts: Sequence[tuple[str, int]]
) -> str:
    """Stack charts of :mod:`pooledcrawl.report.svg` in one standalone SVG, with a title
    and a legend (the report draws its legends in HTML, which an image cannot)."""
    body = [f'<text x="10" y="20" font-size="14" font-weight="600">{escape(title)}</text>']
    y = 30
    for line in caption.splitlines():
        body.append(f'<text x="10" y="{y + 6}" font-size="11">{escape(line)}</text>')
        y += 14
    x = 10
    for s in legend:
        label = escape(s.name)
        width = 34 + 6.2 * len(s.name)
        if x + width > _WIDTH:
            x, y = 10, y + 16
        dash = ' stroke-dasharray="5 4"' if s.dashed else ""
        body.append(
            f'<line x1="{x}" x2="{x + 22}" y1="{y + 10}" y2="{y + 10}" stroke="{s.color}" '
            f'stroke-width="{5 if s.area else 2}"{dash}/>'
            f'<text x="{x + 27}" y="{y + 14}">{label}</text>'
        )
        x += int(width)
    y += 24
    prefix = '<svg xmlns="http://www.w3.org/2000/svg" viewBox='
    for chart, height in charts:
        if not chart.startswith(prefix):
            raise ValueError("unexpected chart markup from pooledcrawl.report.svg")
        # Nested <svg>: the chart keeps its own coordinates, placed at (0, y).
        body.append(
            chart.replace(' width="100%"', f' x="0" y="{y}" width="{_WIDTH}" height="{height}"', 1)
        )
        y += height
    return _standalone(_WIDTH, y + 4, title, body)


def _standalone(width: int, height: int, title: str, body: list[str]) -> str:
    return (
        f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {width} {height}" '
        f'width="{width}" height="{height}" role="img" aria-label="{escape(title)}" '
        f'font-family="system-ui, sans-serif" font-size="11" fill="{_TEXT}">'
        f'<rect width="{width}" height="{height}" fill="white"/>' + "".join(body) + "</svg>\n"
    )


def crawl_stats(
    duration: float, pages: int, scenario: Scenario, workdir: Path
) -> tuple[dict[str, Any], str]:
    """Crawl the link graph behind the scenario's limiter: the crawl's stats, and a
    caption saying what was measured, on what."""
    site = workdir / "site"
    generate_site(site, pages)
    port = Port("limited", rate=scenario.rate, burst=scenario.burst, delay=scenario.delay)
    stats_path = workdir / "stats.json"
    with serve(site, [port]) as server:
        argv = [
            sys.executable, "-m", "pooledcrawl", "crawl", str(PC_SPIDER),
            "-a", f"start={server.url('limited')}{START_PATH}",
            "-O", str(workdir / "items.jsonl"), "--stats", str(stats_path),
            "--timeout", str(duration), "--profile", scenario.profile, "--log-level", "ERROR",
        ]  # fmt: skip
        proc = subprocess.run(
            argv, capture_output=True, text=True, cwd=ROOT, timeout=duration + 120
        )
        detail = f"{server.kind}: {server.detail}"
    if not stats_path.exists():
        raise RuntimeError(f"the crawl wrote no stats: {proc.stderr.strip()[-500:]}")
    stats: dict[str, Any] = orjson.loads(stats_path.read_bytes())
    return stats, f"{_scenario_text(scenario, duration)}\n{detail}; {datetime.date.today()}"


def _scenario_text(scenario: Scenario, duration: float) -> str:
    return (
        f"{scenario.rate:g} r/s limit (burst {scenario.burst}, 429 over it), "
        f"{scenario.delay * 1000:g} ms per page, {scenario.profile} profile, {duration:g} s"
    )


# ---- the throughput comparison ------------------------------------------------------------
@dataclass
class Bar:
    label: str
    value: float


def bars_from_results(report: Mapping[str, Any]) -> list[Bar]:
    """``python -m benchmarks.throughput``'s JSON: each contender's median pages/s."""
    bars = []
    for key, info in (report.get("contenders") or {}).items():
        value = info.get("median_pages_per_s")
        if value is not None:
            bars.append(Bar(f"({key}) {info.get('label', key)}", float(value)))
    return bars


def performance_text() -> tuple[str, str]:
    """``(where, text)``: the README's Performance section, else the docs' page."""
    readme = README.read_text(encoding="utf-8")
    section = readme.split("<!-- section:performance -->", 1)
    if len(section) == 2:
        return "README, Performance", section[1].split("<!-- section:", 1)[0]
    return "docs/performance.md", PERFORMANCE_PAGE.read_text(encoding="utf-8")


def bars_from_readme(text: str, rows: Sequence[str] = DEFAULT_ROWS) -> list[Bar]:
    """The Performance table (``| (a) label | **3,428** | ...``), rows by letter, from
    the first table with a pages/s column in ``text``."""
    lines = text.splitlines()
    header = next(
        (i for i, line in enumerate(lines) if line.startswith("|") and "pages/s" in line), None
    )
    if header is None:
        raise ValueError("no table with a pages/s column")
    columns = [c.strip() for c in lines[header].strip("|").split("|")]
    column = next(i for i, c in enumerate(columns) if "pages/s" in c)
    found: dict[str, Bar] = {}
    for line in lines[header + 2 :]:
        if not line.startswith("|"):
            break
        cells = [c.strip() for c in line.strip("|").split("|")]
        match = re.match(r"\(([a-z])\)\s*(.+)", cells[0])
        if not match:
            continue
        label = re.sub(r"[`*]", "", match.group(2)).strip()
        value = float(re.sub(r"[*,\s]", "", cells[column]))
        found[match.group(1)] = Bar(f"({match.group(1)}) {label}", value)
    missing = [r for r in rows if r not in found]
    if missing:
        raise ValueError(f"rows {missing} are not in the performance table")
    return [found[r] for r in rows]


def _color(label: str) -> str:
    lowered = label.lower()
    if "pooledcrawl" in lowered:
        return _BLUE
    if "scrapy" in lowered or "crawlee" in lowered:
        return _AMBER
    return _GREY


def throughput_svg(bars: Sequence[Bar], *, caption: str = "") -> str:
    """Horizontal bars, one per contender, longest scale first at the top."""
    if not bars:
        raise ValueError("no throughput figures to draw")
    title = "Pages per second, one target, concurrency 64"
    width_px, label_w, bar_h, gap, top = 660, 330, 20, 8, 48 if caption else 34
    plot_w = width_px - label_w - 50
    ticks = nice_ticks(0.0, max(b.value for b in bars), 4)
    scale = plot_w / ticks[-1]
    body = [f'<text x="10" y="20" font-size="14" font-weight="600">{escape(title)}</text>']
    if caption:
        body.append(f'<text x="10" y="36">{escape(caption)}</text>')
    bottom = top + len(bars) * (bar_h + gap)
    for tick in ticks:
        x = label_w + tick * scale
        body.append(
            f'<line x1="{x:.1f}" x2="{x:.1f}" y1="{top - 4}" y2="{bottom}" stroke="#e8ebef"/>'
            f'<text x="{x:.1f}" y="{bottom + 14}" text-anchor="middle">{tick:,.0f}</text>'
        )
    for i, bar in enumerate(bars):
        y = top + i * (bar_h + gap)
        label = bar.label if len(bar.label) <= 54 else bar.label[:53] + "…"
        width = max(bar.value * scale, 1.0)
        body.append(
            f'<text x="{label_w - 8}" y="{y + 14}" text-anchor="end">{escape(label)}</text>'
            f'<rect x="{label_w}" y="{y}" width="{width:.1f}" height="{bar_h}" rx="2" '
            f'fill="{_color(bar.label)}"><title>{escape(bar.label)}: {bar.value:,.0f} pages/s'
            f"</title></rect>"
            f'<text x="{label_w + width + 5:.1f}" y="{y + 14}">{bar.value:,.0f}</text>'
        )
    body.append(
        f'<text x="{label_w + plot_w / 2:.0f}" y="{bottom + 30}" text-anchor="middle">'
        "pages/s (median), higher is better</text>"
    )
    return _standalone(width_px, bottom + 40, title, body)


def _newest_results() -> Path | None:
    found = sorted(RESULTS_DIR.glob("throughput-*.json"))
    return found[-1] if found else None


def _throughput_from_args(args: argparse.Namespace) -> str:
    path = args.results or _newest_results()
    if path is not None:
        report = orjson.loads(Path(path).read_bytes())
        caption = f"python -m benchmarks.throughput, {report.get('pages', '?')} pages, " + (
            f"medians of {report.get('runs', '?')} runs, {str(report.get('date', ''))[:10]}"
        )
        return throughput_svg(bars_from_results(report), caption=caption)
    where, text = performance_text()
    caption = where
    match = re.search(r"\(`python -m benchmarks\.throughput ([^`]*)`\)", text)
    if match:
        caption = f"{where} (python -m benchmarks.throughput {match.group(1)})"
    return throughput_svg(bars_from_readme(text, args.rows), caption=caption)


# ---- command line -------------------------------------------------------------------------
def _parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.docs_figures", description=__doc__.split("\n\n")[1]
    )
    parser.add_argument("--only", choices=("timeline", "throughput"), help="one figure only")
    parser.add_argument("--duration", type=float, default=20.0, help="crawl seconds (20)")
    parser.add_argument("--pages", type=int, default=20_000, help="site size (20000)")
    parser.add_argument("--stats", type=Path, help="draw this --stats file instead of crawling")
    parser.add_argument("--results", type=Path, help="throughput JSON (default: the newest)")
    parser.add_argument(
        "--rows",
        type=lambda text: [r.strip() for r in text.split(",") if r.strip()],
        default=list(DEFAULT_ROWS),
        help="README rows to draw when there is no results JSON (default a,b,c,d,e)",
    )
    parser.add_argument("--out-dir", type=Path, default=IMG_DIR, help="default docs/img")
    args = parser.parse_args(argv)
    if args.duration < 5 or args.pages < 1:
        parser.error("--duration must be >= 5 and --pages >= 1")
    return args


def main(argv: Sequence[str] | None = None) -> int:
    args = _parse_args(argv)
    args.out_dir.mkdir(parents=True, exist_ok=True)
    scenario = SCENARIOS["a"]
    if args.only in (None, "timeline"):
        if args.stats:
            stats = orjson.loads(args.stats.read_bytes())
            caption = f"{_scenario_text(scenario, args.duration)}\nfrom {args.stats.name}"
        else:
            with tempfile.TemporaryDirectory(prefix="pcdocs-") as tmp:
                stats, caption = crawl_stats(args.duration, args.pages, scenario, Path(tmp))
        tl = domain_timeline(stats)
        good, seconds = sum(tl.ok) * tl.interval, len(tl.t) * tl.interval
        limits = [c for c in tl.concurrency if c is not None] or [0.0]
        print(
            f"timeline: {good:,.0f} pages in {seconds:g} s ({good / max(seconds, 1):,.1f}/s), "
            f"{sum(tl.n429) * tl.interval:,.0f} 429s, concurrency limit "
            f"{limits[0]:g} -> {max(limits):g}"
        )
        svg = adaptive_timeline_svg(stats, limit=scenario.rate, caption=caption)
        out = args.out_dir / "adaptive-timeline.svg"
        out.write_text(svg, encoding="utf-8")
        print(f"wrote {out}")
    if args.only in (None, "throughput"):
        out = args.out_dir / "throughput.svg"
        out.write_text(_throughput_from_args(args), encoding="utf-8")
        print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
