"""The per-domain table at the end of the crawl summary (plain text, aligned)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

__all__ = ["domain_table"]

_COLUMNS = (
    ("domain", "<"),
    ("pages", ">"),
    ("pages/s", ">"),
    ("p50/p95 ms", ">"),
    ("pool wait avg/p95", ">"),
    ("reuse", ">"),
    ("conns", ">"),
    ("disconn", ">"),
    ("peak", ">"),
)
#: Domains listed; the rest are counted in one line (a broad crawl has thousands).
_MAX_ROWS = 20


def domain_table(domains: Mapping[str, Mapping[str, Any]], *, indent: str = "  ") -> list[str]:
    """Lines of a table: one row per domain with pool metrics, busiest first."""
    measured = [(host, info) for host, info in domains.items() if "pool_wait_avg_ms" in info]
    if not measured:
        return []
    measured.sort(key=lambda item: (-int(item[1].get("pages", 0) or 0), item[0]))
    rows = [tuple(name for name, _ in _COLUMNS)]
    for host, info in measured[:_MAX_ROWS]:
        ratio = info.get("reuse_ratio")
        p50, p95 = info.get("latency_body_p50_ms", 0), info.get("latency_body_p95_ms", 0)
        rows.append(
            (
                host,
                f"{info.get('pages', 0):,}",
                f"{info.get('pages_per_s', 0.0):,.1f}",
                f"{p50:,.0f}/{p95:,.0f}",
                f"{info.get('pool_wait_avg_ms', 0):,.1f}/{info.get('pool_wait_p95_ms', 0):,.1f} ms",
                "-" if ratio is None else f"{ratio:.0%}",
                f"{info.get('connections_opened', 0):,}",
                f"{info.get('server_disconnects', 0):,}",
                str(info.get("peak_concurrency", "-")),
            )
        )
    widths = [max(len(row[i]) for row in rows) for i in range(len(_COLUMNS))]
    lines = [
        indent
        + "  ".join(
            f"{cell:{align}{width}}"
            for cell, (_, align), width in zip(row, _COLUMNS, widths, strict=True)
        ).rstrip()
        for row in rows
    ]
    if len(measured) > _MAX_ROWS:
        lines.append(f"{indent}... and {len(measured) - _MAX_ROWS} more domains (see --stats)")
    return lines
