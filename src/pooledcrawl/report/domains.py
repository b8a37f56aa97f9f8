"""The report's per-domain sections: concurrency and rate charts for the busiest
domains (with the adaptive controller's limit and pace), and the per-domain table."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from html import escape
from typing import Any

from pooledcrawl.report.parts import Points, Timeline, panel
from pooledcrawl.report.svg import Series, line_chart

__all__ = ["domain_table", "pages", "per_domain"]

_PALETTE = ("#2f6fde", "#e8590c", "#2b8a3e", "#ae3ec9", "#c92a2a", "#0b7285", "#5f3dc4", "#868e96")


def per_domain(ranked: Sequence[tuple[str, Mapping[str, Any]]]) -> list[str]:
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
        panel(
            "Concurrency per domain",
            "Solid: most requests in flight per interval."
            + (f"{dashed} concurrency limit." if dashed else ""),
            legend,
            line_chart(concurrency, title="concurrency per domain", y_label="in flight"),
        ),
        panel(
            "Rate per domain",
            "Solid: responses per second." + (f"{dashed} pace, when pacing." if dashed else ""),
            legend,
            line_chart(rates, title="rate per domain", y_label="per second", unit="/s"),
        ),
    ]


def _domain_lines(info: Mapping[str, Any]) -> tuple[Points, Points, Points, Points]:
    """(in flight, responses/s) measured, and (limit, pace) from the adaptive controller's
    timeline when there is one (rows ``[t, concurrency, rate, ok, n429]``, ``t`` counted
    from the domain's first request; ``rate`` is None while it does not pace)."""
    offset = float(info.get("started_s") or 0.0)
    activity = Timeline(info.get("activity"))
    inflight = [(offset + t, v) for t, v in activity.column("inflight")]
    achieved = [(offset + t, v) for t, v in activity.per_second("responses")]
    limit: Points = []
    pace: Points = []
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


def domain_table(ranked: Sequence[tuple[str, Mapping[str, Any]]], total: int) -> str:
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
            f"<td>{pages(info):,}</td><td>{float(info.get('pages_per_s') or 0):,.1f}</td>"
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


def pages(info: Mapping[str, Any]) -> int:
    try:
        return int(info.get("pages") or 0)
    except (TypeError, ValueError):
        return 0
