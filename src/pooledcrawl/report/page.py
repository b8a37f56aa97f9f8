"""The crawl report: one self-contained HTML file built from the stats JSON."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from html import escape
from typing import Any

from pooledcrawl._version import __version__
from pooledcrawl.report.svg import Series, bar_chart, line_chart

__all__ = ["render_report"]

_Points = list[tuple[float, float]]

_PALETTE = ("#2f6fde", "#e8590c", "#2b8a3e", "#ae3ec9", "#c92a2a", "#0b7285", "#5f3dc4", "#868e96")
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
    ranked = sorted(domains.items(), key=lambda kv: (-_pages(kv[1]), kv[0]))
    timeline = _Timeline(stats.get("timeline"))
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
        *_per_domain(ranked[:_CHART_DOMAINS]),
        "</div>",
        _domain_table(
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
class _Timeline:
    """The stats' ``timeline`` section, read defensively (it may be absent or partial)."""

    def __init__(self, data: Any) -> None:
        self.interval = 1.0
        self.columns: dict[str, int] = {}
        self.rows: list[Sequence[Any]] = []
        if isinstance(data, Mapping) and isinstance(data.get("rows"), list):
            self.interval = float(data.get("interval_s") or 1.0)
            self.columns = {name: i for i, name in enumerate(data.get("columns") or [])}
            self.rows = [row for row in data["rows"] if isinstance(row, list | tuple)]

    @property
    def end(self) -> float:
        """Where the time axis of the crawl-wide charts ends: the last bucket's end."""
        t = self.columns.get("t", 0)
        return max((float(row[t]) for row in self.rows if row), default=0.0) + self.interval

    def column(self, name: str) -> list[tuple[float, float]]:
        index, t = self.columns.get(name), self.columns.get("t", 0)
        if index is None:
            return []
        return [(float(row[t]), float(row[index] or 0)) for row in self.rows if len(row) > index]

    def per_second(self, name: str) -> list[tuple[float, float]]:
        return [(t, value / self.interval) for t, value in self.column(name)]

    def increments_per_second(self, name: str) -> list[tuple[float, float]]:
        """A sampled running total (items) as a per-second rate."""
        out: list[tuple[float, float]] = []
        last = 0.0
        for t, total in self.column(name):
            total = max(total, last)  # a bucket with no sample carries the total on
            out.append((t, (total - last) / self.interval))
            last = total
        return out


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


def _panel(title: str, note: str, legend: Sequence[Series], chart: str) -> str:
    keys = "".join(
        f"<span><i class='{'dash' if s.dashed else ''}' style='"
        + (f"border-color:{s.color}" if s.dashed else f"background:{s.color}")
        + f"'></i>{escape(s.name)}</span>"
        for s in legend
    )
    return (
        f"<section class='panel'><h2>{escape(title)}</h2><p class='note'>{escape(note)}</p>"
        f"<div class='legend'>{keys}</div>{chart}</section>"
    )


def _throughput(timeline: _Timeline) -> str:
    series = [
        Series("pages/s", "#2f6fde", timeline.per_second("pages"), area=True),
        Series("items/s", "#e8590c", timeline.increments_per_second("items"), dashed=True),
    ]
    chart = line_chart(
        series, title="throughput", y_label="per second", unit="/s", x_max=timeline.end
    )
    return _panel("Throughput", "2xx pages and stored items per second.", series, chart)


def _statuses(timeline: _Timeline) -> str:
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
    return _panel(
        "Status codes over time", "Responses per second by class; errors got none.", shown, chart
    )


def _latency(timeline: _Timeline) -> str:
    answered = {t for t, n in timeline.column("responses") if n}  # empty buckets have no p50
    series = [
        Series("p50", "#2b8a3e", [p for p in timeline.column("p50_ms") if p[0] in answered]),
        Series("p95", "#c92a2a", [p for p in timeline.column("p95_ms") if p[0] in answered]),
    ]
    series[1].dashed = True
    chart = line_chart(
        series, title="latency", y_label="milliseconds", unit=" ms", x_max=timeline.end
    )
    return _panel("Latency percentiles", "Request start to full body, all domains.", series, chart)


def _inflight(timeline: _Timeline) -> str:
    series = [Series("peak in flight", "#5f3dc4", timeline.column("inflight"), step=True)]
    chart = line_chart(series, title="in flight", y_label="requests", x_max=timeline.end)
    return _panel(
        "Requests in flight", "The most requests on the wire at once, per interval.", series, chart
    )


# ---- per domain -------------------------------------------------------------------------
def _per_domain(ranked: Sequence[tuple[str, Mapping[str, Any]]]) -> list[str]:
    concurrency: list[Series] = []
    rates: list[Series] = []
    legend: list[Series] = []
    controlled = False
    for i, (host, info) in enumerate(ranked):
        color = _PALETTE[i % len(_PALETTE)]
        inflight, achieved, limit, pace = _domain_lines(info)
        controlled = controlled or bool(limit or pace)
        legend.append(Series(host, color))
        concurrency.append(Series(host, color, inflight, step=True))
        rates.append(Series(host, color, achieved))
        if limit:
            concurrency.append(Series(f"{host} limit", color, limit, step=True, dashed=True))
        if pace:
            rates.append(Series(f"{host} pace", color, pace, dashed=True))
    dashed = " Dashed: the adaptive controller's" if controlled else ""
    return [
        _panel(
            "Concurrency per domain",
            "Solid: most requests in flight per interval."
            + (f"{dashed} concurrency limit." if dashed else ""),
            legend,
            line_chart(concurrency, title="concurrency per domain", y_label="in flight"),
        ),
        _panel(
            "Rate per domain",
            "Solid: responses per second." + (f"{dashed} pace, when pacing." if dashed else ""),
            legend,
            line_chart(rates, title="rate per domain", y_label="per second", unit="/s"),
        ),
    ]


def _domain_lines(info: Mapping[str, Any]) -> tuple[_Points, _Points, _Points, _Points]:
    """(in flight, responses/s) measured, and (limit, pace) from the adaptive controller's
    timeline when there is one (rows ``[t, concurrency, rate, ok, n429]``, ``t`` counted
    from the domain's first request; ``rate`` is None while it does not pace)."""
    offset = float(info.get("started_s") or 0.0)
    activity = _Timeline(info.get("activity"))
    inflight = [(offset + t, v) for t, v in activity.column("inflight")]
    achieved = [(offset + t, v) for t, v in activity.per_second("responses")]
    limit: _Points = []
    pace: _Points = []
    rows = info.get("timeline")
    if isinstance(rows, Mapping):
        rows = rows.get("rows")
    for row in rows if isinstance(rows, list) else []:
        if not isinstance(row, list | tuple) or len(row) < 3 or row[0] is None:
            continue
        t = offset + float(row[0])
        if row[1] is not None:
            limit.append((t, float(row[1])))
        if row[2] is not None:
            pace.append((t, float(row[2])))
    return inflight, achieved, limit, pace


def _domain_table(ranked: Sequence[tuple[str, Mapping[str, Any]]], total: int) -> str:
    if not ranked:
        return ""
    top = max(
        [float(info.get("latency_body_p95_ms") or 0) for _, info in ranked]
        + [float(info.get("latency_headers_p95_ms") or 0) for _, info in ranked]
        + [1.0]
    )
    head = (
        "<tr><th>domain</th><th>pages</th><th>pages/s</th><th>429s</th>"
        "<th>latency p50 | p95<br>(headers, body)</th><th>body p50 / p95</th>"
        "<th>pool wait<br>avg / p95</th><th>reuse</th><th>conns</th>"
        "<th>disconn.</th><th>peak in flight</th></tr>"
    )
    body = []
    for host, info in ranked:
        ratio = info.get("reuse_ratio")
        n429 = (info.get("status_counts") or {}).get("429", 0)
        body.append(
            f"<tr><td class='host'>{escape(host)}</td>"
            f"<td>{_pages(info):,}</td><td>{float(info.get('pages_per_s') or 0):,.1f}</td>"
            f"<td>{int(n429):,}</td><td>{_latency_bar(info, top)}</td>"
            f"<td>{_ms_pair(info, 'latency_body')}</td>"
            f"<td>{float(info.get('pool_wait_avg_ms') or 0):,.1f} / "
            f"{float(info.get('pool_wait_p95_ms') or 0):,.1f} ms</td>"
            f"<td>{'-' if ratio is None else f'{float(ratio):.0%}'}</td>"
            f"<td>{int(info.get('connections_opened') or 0):,}</td>"
            f"<td>{int(info.get('server_disconnects') or 0):,}</td>"
            f"<td>{escape(str(info.get('peak_concurrency', '-')))}</td></tr>"
        )
    more = (
        f"<p class='note'>The {len(ranked)} busiest of {total:,} domains; the stats JSON "
        "has the top hosts by pages, errors and 429s, and aggregates over all.</p>"
        if total > len(ranked)
        else ""
    )
    return (
        "<section class='panel' style='margin-bottom:16px'><h2>Per domain</h2>"
        "<p class='note'>Latency from request start; pool wait is time a ready request "
        "waited for its domain's slot or a connection; reuse is requests on kept-alive "
        f"connections.</p><div class='scroll'><table>{head}{''.join(body)}</table></div>"
        f"{more}</section>"
    )


def _latency_bar(info: Mapping[str, Any], top: float) -> str:
    width = 180
    rows = []
    for i, prefix in enumerate(("latency_headers", "latency_body")):
        p50 = float(info.get(f"{prefix}_p50_ms") or 0)
        p95 = float(info.get(f"{prefix}_p95_ms") or 0)
        y = 2 + i * 9
        rows.append(
            f'<rect x="0" y="{y}" width="{width * p95 / top:.1f}" height="7" rx="2" '
            f'fill="{"#a5c8ff" if i == 0 else "#ffc9a5"}"><title>p95 {p95:,.1f} ms</title></rect>'
            f'<rect x="0" y="{y}" width="{width * p50 / top:.1f}" height="7" rx="2" '
            f'fill="{"#2f6fde" if i == 0 else "#e8590c"}"><title>p50 {p50:,.1f} ms</title></rect>'
        )
    return (
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="20" '
        f'viewBox="0 0 {width} 20">{"".join(rows)}</svg>'
    )


def _ms_pair(info: Mapping[str, Any], prefix: str) -> str:
    p50 = float(info.get(f"{prefix}_p50_ms") or 0)
    p95 = float(info.get(f"{prefix}_p95_ms") or 0)
    return f"{p50:,.0f} / {p95:,.0f} ms"


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


def _table(title: str, head: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    header = "".join(f"<th>{escape(h)}</th>" for h in head)
    body = "".join(
        "<tr>" + "".join(f"<td>{escape(cell)}</td>" for cell in row) + "</tr>" for row in rows
    )
    empty = "<tr>" + "<td>-</td>" * len(head) + "</tr>"
    return (
        f"<section class='panel'><h2>{escape(title)}</h2><table><tr>{header}</tr>"
        f"{body or empty}</table></section>"
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
        panels.append(_table(f"Blocks ({blocks.get('total', 0):,})", ["where", "blocks"], rows))
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
        panels.append(_table(title, ["where", "requests", "on the wire", "cost"], rows))
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
        panels.append(_table("Proxy tier per domain", ["domain", "tier", "changes"], rows))
    return f"<div class='grid'>{''.join(panels)}</div>" if panels else ""


def _pages(info: Mapping[str, Any]) -> int:
    try:
        return int(info.get("pages") or 0)
    except (TypeError, ValueError):
        return 0


def _duration(seconds: float) -> str:
    if seconds < 120:
        return f"{seconds:.1f} s"
    minutes, secs = divmod(int(seconds), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours} h {minutes:02d} min" if hours else f"{minutes} min {secs:02d} s"
