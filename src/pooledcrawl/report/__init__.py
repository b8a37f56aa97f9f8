"""``--report report.html``: a crawl report people can look at, built from the stats.

One self-contained HTML file with inline SVG charts: no JavaScript, no CDN,
nothing fetched, so it opens offline and can be mailed or archived as is.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from pooledcrawl.report.page import render_report

__all__ = ["render_report", "write_report"]


def write_report(stats: Mapping[str, Any], path: str | Path) -> None:
    """Write the report for ``stats`` (a ``Stats.to_dict()``) to ``path``, atomically."""
    target = Path(path)
    tmp = target.with_name(target.name + ".tmp")
    tmp.write_text(render_report(stats), encoding="utf-8")
    tmp.replace(target)
