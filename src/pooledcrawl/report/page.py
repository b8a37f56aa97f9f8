"""The crawl report: one self-contained HTML file built from the stats JSON."""

from __future__ import annotations

from collections.abc import Mapping
from html import escape
from typing import Any

from pooledcrawl._version import __version__
from pooledcrawl.report.domains import domain_table, pages, per_domain
from pooledcrawl.report.parts import Timeline, panel, table
from pooledcrawl.report.svg import Series, bar_chart, line_chart

__all__ = ["render_report"]

Points = list[tuple[float, float]]

_STATUS = (
    ("pages", "2xx", "#37b24d"),
    ("s3xx", "3xx", "#4dabf7"),
    ("s4xx", "4xx", "#f59f00"),
    ("s429", "429", "#e64980"),
    ("s5xx", "5xx", "#e03131"),
    ("errors", "errors", "#495057"),
)
#: Domains drawn in the per-domain charts (the busiest); the table lists more.
_CHART_DOMAINS = 6
_TABLE_DOMAINS = 50

_CSS = """
*{box-sizing:border-box}
body{margin:0;background:#f4f6f8;color:#1f2a33;font:14px/1.45 system-ui,-apple-system,
"Segoe UI",Roboto,sans-serif}
header{background:#16202a;color:#fff;padding:22px 32px}
header h1{margin:0;font-size:22px;font-weight:600}
header p{margin:4px 0 0;color:#b6c2cd}
main{padding:20px 32px 40px;max-width:1280px;margin:0 auto}
.cards{display:grid;grid-template-columns:repeat(auto-fill,minmax(140px,1fr));gap:12px;
margin-bottom:20px}
.card{background:#fff;border-radius:8px;padding:12px 14px;box-shadow:0 1px 2px #0001}
.card b{display:block;font-size:22px;font-weight:650;color:#16202a}
.card span{color:#66727d;font-size:12px;text-transform:uppercase;letter-spacing:.04em}
.grid{display:grid;grid-template-columns:repeat(auto-fit,minmax(520px,1fr));gap:16px;
margin-bottom:16px}
.panel{background:#fff;border-radius:8px;padding:14px 16px 8px;box-shadow:0 1px 2px #0001}
.panel h2{margin:0 0 2px;font-size:15px;font-weight:600}
.panel p.note{margin:0 0 6px;color:#66727d;font-size:12px}
.legend{display:flex;flex-wrap:wrap;gap:4px 14px;margin:4px 0 6px;font-size:12px;color:#44505b}
.legend i{display:inline-block;width:10px;height:10px;border-radius:2px;margin-right:5px;
vertical-align:-1px}
.legend i.dash{height:0;border-top:2px dashed;border-radius:0;vertical-align:3px}
table{border-collapse:collapse;width:100%;font-size:13px}
.scroll{overflow-x:auto}
th,td{padding:6px 8px;text-align:right;border-bottom:1px solid #edf0f2;white-space:nowrap}
th{color:#66727d;font-weight:500;font-size:12px;white-space:normal;vertical-align:bottom}
th:first-child,td:first-child{text-align:left}
td.host{font-family:ui-monospace,Menlo,monospace;font-size:12px}
svg .label{fill:#66727d;font-size:11px}
footer{color:#8a96a1;font-size:12px;text-align:center;padding:0 0 24px}
"""


def render_report(stats: Mapping[str, Any]) -> str:
    """The whole report for one crawl's stats (``Stats.to_dict()`` or the ``--stats`` file)."""
    domains: Mapping[str, Mapping[str, Any]] = stats.get("domains") or {}
    ranked = sorted(domains.items(), key=lambda kv: (-pages(kv[1]), kv[0]))
    timeline = Timeline(stats.get("timeline"))
    parts = [
        "<!doctype html><html lang='en'><head><meta charset='utf-8'>",
        "<meta name='viewport' content='width=device-width, initial-scale=1'>",
        f"<title>pooledcrawl report: {stats.get('pages', 0):,} pages</title>",
        f"<style>{_CSS}</style></head><body>",
        _header(stats),
        "<main>",
        _cards(stats),
        "<div class='grid'>",
        _throughput(timeline),
        _statuses(timeline),
        _latency(timeline),
        _inflight(timeline),
        "</div><div class='grid'>",
        *per_domain(ranked[:_CHART_DOMAINS]),
        "</div>",
        domain_table(
            ranked[:_TABLE_DOMAINS],
            max(len(ranked), int((stats.get("hosts") or {}).get("seen") or 0)),
        ),
        _counts_tables(stats),
        _blocks_and_cost(stats),
        "</main>",
        f"<footer>pooledcrawl {escape(__version__)}: a self-contained file, "
        "no network needed to view it.</footer></body></html>",
    ]
    return "\n".join(parts)


# ---- the crawl-wide parts ---------------------------------------------------------------
def _header(stats: Mapping[str, Any]) -> str:
    reason = escape(str(stats.get("finish_reason") or "finished"))
    elapsed = float(stats.get("elapsed_s") or 0.0)
    versions = stats.get("http_versions") or {}
    protocol = ", ".join(f"{escape(str(k))} {v:,}" for k, v in versions.items()) or "-"
    return (
        "<header><h1>pooledcrawl crawl report</h1>"
        f"<p>{reason} after {_duration(elapsed)} &middot; {_host_count(stats)} "
        f"domains &middot; {protocol}</p></header>"
    )


def _host_count(stats: Mapping[str, Any]) -> str:
    """Hosts seen (a broad crawl's stats detail only the top N), with the aggregates."""
    hosts = stats.get("hosts") or {}
    seen = int(hosts.get("seen") or len(stats.get("domains") or {}))
    if not hosts or seen <= len(stats.get("domains") or {}):
        return f"{seen:,}"
    spread = hosts.get("pages_per_host") or {}
    return escape(
        f"{seen:,} ({int(hosts.get('done') or 0):,} done, "
        f"{int(hosts.get('blocked') or 0):,} blocked, "
        f"{int(hosts.get('with_errors') or 0):,} with errors; pages per host "
        f"p50 {spread.get('p50', 0)}, max {spread.get('max', 0)})"
    )


def _cards(stats: Mapping[str, Any]) -> str:
    statuses = stats.get("status_counts") or {}
    errors = stats.get("errors") or {}
    cards = [
        ("pages", f"{stats.get('pages', 0):,}"),
        ("items", f"{stats.get('items', 0):,}"),
        ("pages / s", f"{float(stats.get('pages_per_s') or 0):,.1f}"),
        ("requests", f"{stats.get('requests', 0):,}"),
        ("retries", f"{stats.get('retries', 0):,}"),
        ("failed", f"{stats.get('failed', 0):,}"),
        ("429 responses", f"{int(statuses.get('429', 0)):,}"),
        ("errors", f"{sum(int(v) for v in errors.values()):,}"),
        ("max in flight", f"{stats.get('max_inflight', 0):,}"),
    ]
    return (
        "<section class='cards'>"
        + "".join(f"<div class='card'><b>{v}</b><span>{name}</span></div>" for name, v in cards)
        + "</section>"
    )


def _throughput(timeline: Timeline) -> str:
    series = [
        Series("pages/s", "#2f6fde", timeline.per_second("pages"), area=True),
        Series("items/s", "#e8590c", timeline.increments_per_second("items"), dashed=True),
    ]
    chart = line_chart(
        series, title="throughput", y_label="per second", unit="/s", x_max=timeline.end
    )
    return panel("Throughput", "2xx pages and stored items per second.", series, chart)


def _statuses(timeline: Timeline) -> str:
    stacks = [Series(label, color, timeline.per_second(name)) for name, label, color in _STATUS]
    starts = [t for t, _ in stacks[0].points]
    if any(len(s.points) != len(starts) for s in stacks):
        starts = []
    chart = bar_chart(
        starts,
        timeline.interval,
        stacks,
        title="status codes",
        y_label="responses / s",
        x_max=timeline.end,
    )
    shown = [s for s in stacks if any(y for _, y in s.points)] or stacks[:1]
    return panel(
        "Status codes over time", "Responses per second by class; errors got none.", shown, chart
    )


def _latency(timeline: Timeline) -> str:
    answered = {t for t, n in timeline.column("responses") if n}  # empty buckets have no p50
    series = [
        Series("p50", "#2b8a3e", [p for p in timeline.column("p50_ms") if p[0] in answered]),
        Series("p95", "#c92a2a", [p for p in timeline.column("p95_ms") if p[0] in answered]),
    ]
    series[1].dashed = True
    chart = line_chart(
        series, title="latency", y_label="milliseconds", unit=" ms", x_max=timeline.end
    )
    return panel("Latency percentiles", "Request start to full body, all domains.", series, chart)


def _inflight(timeline: Timeline) -> str:
    series = [Series("peak in flight", "#5f3dc4", timeline.column("inflight"), step=True)]
    chart = line_chart(series, title="in flight", y_label="requests", x_max=timeline.end)
    return panel(
        "Requests in flight", "The most requests on the wire at once, per interval.", series, chart
    )


def _counts_tables(stats: Mapping[str, Any]) -> str:
    statuses = stats.get("status_counts") or {}
    errors = stats.get("errors") or {}
    status_rows = "".join(
        f"<tr><td>{escape(str(code))}</td><td>{int(n):,}</td></tr>" for code, n in statuses.items()
    )
    error_rows = "".join(
        f"<tr><td>{escape(str(name))}</td><td>{int(n):,}</td></tr>" for name, n in errors.items()
    )
    return (
        "<div class='grid'>"
        "<section class='panel'><h2>Status codes</h2><table><tr><th>status</th><th>responses</th>"
        f"</tr>{status_rows or '<tr><td>-</td><td>0</td></tr>'}</table></section>"
        "<section class='panel'><h2>Errors</h2><table><tr><th>kind</th><th>count</th></tr>"
        f"{error_rows or '<tr><td>none</td><td>0</td></tr>'}</table></section></div>"
    )


def _blocks_and_cost(stats: Mapping[str, Any]) -> str:
    """Blocks per domain, tier and kind; bytes and cost per profile, tier and domain; each
    domain's tier. Absent sections (no blocks configured, no price) are left out."""
    panels: list[str] = []
    blocks = stats.get("blocks")
    if isinstance(blocks, Mapping):
        rows = [
            [f"{axis}: {key}", f"{int(n):,}"]
            for axis in ("kinds", "domain", "tier", "proxy")
            for key, n in (blocks.get(axis) or {}).items()
        ]
        rows.append(
            ["retried on a fresh session or after a pause", f"{blocks.get('retried', 0):,}"]
        )
        rows.append(["sessions blocked", f"{blocks.get('sessions_blocked', 0):,}"])
        panels.append(table(f"Blocks ({blocks.get('total', 0):,})", ["where", "blocks"], rows))
    cost = stats.get("cost")
    if isinstance(cost, Mapping):
        rows = []
        for axis in ("profile", "tier", "domain"):
            for key, tally in (cost.get(axis) or {}).items():
                rows.append(
                    [
                        f"{axis}: {key}",
                        f"{int(tally.get('requests', 0)):,}",
                        f"{int(tally.get('bytes', 0)) / 1e6:,.2f} MB",
                        f"{float(tally.get('cost', 0)):.4f}",
                    ]
                )
        total = cost.get("total") or {}
        budget = cost.get("budget")
        title = f"Cost ({float(total.get('cost', 0)):.4f}"
        title += f" of a {float(budget):g} budget)" if budget is not None else ")"
        panels.append(table(title, ["where", "requests", "on the wire", "cost"], rows))
    tiers = stats.get("tiers")
    if isinstance(tiers, Mapping):
        rows = [
            [
                str(domain),
                str(info.get("tier", "")),
                " -> ".join(f"{name} at {float(t):.0f} s" for t, name in info.get("history", [])),
            ]
            for domain, info in (tiers.get("domains") or {}).items()
        ]
        panels.append(table("Proxy tier per domain", ["domain", "tier", "changes"], rows))
    return f"<div class='grid'>{''.join(panels)}</div>" if panels else ""


def _duration(seconds: float) -> str:
    if seconds < 120:
        return f"{seconds:.1f} s"
    minutes, secs = divmod(int(seconds), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours} h {minutes:02d} min" if hours else f"{minutes} min {secs:02d} s"
