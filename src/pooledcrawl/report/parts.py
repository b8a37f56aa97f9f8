"""The building blocks of the report's sections: the stats' timelines, read
defensively, and the HTML of a chart panel and of a table panel."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from html import escape
from typing import Any

from pooledcrawl.report.svg import Series

__all__ = ["Points", "Timeline", "panel", "table"]

Points = list[tuple[float, float]]


class Timeline:
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


def panel(title: str, note: str, legend: Sequence[Series], chart: str) -> str:
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


def table(title: str, head: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    header = "".join(f"<th>{escape(h)}</th>" for h in head)
    body = "".join(
        "<tr>" + "".join(f"<td>{escape(cell)}</td>" for cell in row) + "</tr>" for row in rows
    )
    empty = "<tr>" + "<td>-</td>" * len(head) + "</tr>"
    return (
        f"<section class='panel'><h2>{escape(title)}</h2><table><tr>{header}</tr>"
        f"{body or empty}</table></section>"
    )
