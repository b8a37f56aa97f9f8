"""Small inline-SVG charts: lines and stacked bars over time, with axes and legends.

No JavaScript and nothing fetched: the report must open offline, from a file,
years later. Hovering a point or bar shows its value (SVG ``<title>``).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from html import escape

__all__ = ["Series", "bar_chart", "line_chart", "nice_ticks"]

_W, _H = 560, 230
_LEFT, _RIGHT, _TOP, _BOTTOM = 52, 14, 14, 40
_AXIS = "#9aa3ad"
_GRID = "#e8ebef"
_TEXT = "#4a5560"


@dataclass
class Series:
    name: str
    color: str
    points: list[tuple[float, float]] = field(default_factory=list)
    dashed: bool = False
    area: bool = False
    step: bool = False


def nice_ticks(low: float, high: float, count: int = 5) -> list[float]:
    """Round tick values (1, 2, 5 x 10^k steps) covering ``low..high``."""
    if not math.isfinite(low) or not math.isfinite(high):
        return [0.0]
    if high <= low:
        high = low + 1.0
    raw = (high - low) / max(count, 1)
    magnitude = 10 ** math.floor(math.log10(raw))
    step = next(m * magnitude for m in (1, 2, 2.5, 5, 10) if m * magnitude >= raw)
    first = math.floor(low / step) * step
    ticks: list[float] = []
    value = first
    while value <= high + step * 1e-9 and len(ticks) < 50:
        ticks.append(round(value, 10))
        value += step
    if ticks[-1] < high:
        ticks.append(round(value, 10))
    return ticks


def _fmt(value: float) -> str:
    if abs(value) >= 10_000:
        return f"{value / 1000:,.0f}k"
    if abs(value) >= 1000:
        return f"{value / 1000:,.1f}k".replace(".0k", "k")
    if value == int(value):
        return f"{int(value)}"
    return f"{value:.1f}" if abs(value) >= 1 else f"{value:.2f}"


def _fmt_time(seconds: float) -> str:
    if seconds < 120:
        return f"{seconds:g}s"
    minutes, secs = divmod(int(seconds), 60)
    if minutes < 120:
        return f"{minutes}m{secs:02d}" if secs else f"{minutes}m"
    return f"{minutes // 60}h{minutes % 60:02d}"


class _Frame:
    """The plotting area and the mapping from data to pixels."""

    def __init__(self, x_max: float, y_max: float, width: int, height: int) -> None:
        self.width, self.height = width, height
        self.x_ticks = nice_ticks(0.0, max(x_max, 1e-9), 6)
        self.y_ticks = nice_ticks(0.0, max(y_max, 1e-9), 4)
        self.x_max = self.x_ticks[-1]
        self.y_max = self.y_ticks[-1]
        self.plot_w = width - _LEFT - _RIGHT
        self.plot_h = height - _TOP - _BOTTOM

    def x(self, value: float) -> float:
        return _LEFT + self.plot_w * (value / self.x_max if self.x_max else 0.0)

    def y(self, value: float) -> float:
        return _TOP + self.plot_h * (1 - (value / self.y_max if self.y_max else 0.0))

    def axes(self, x_label: str, y_label: str) -> list[str]:
        out: list[str] = []
        for tick in self.y_ticks:
            y = self.y(tick)
            out.append(
                f'<line x1="{_LEFT}" x2="{self.width - _RIGHT}" y1="{y:.1f}" y2="{y:.1f}" '
                f'stroke="{_GRID}"/>'
                f'<text x="{_LEFT - 6}" y="{y + 4:.1f}" text-anchor="end">{_fmt(tick)}</text>'
            )
        base = self.y(0)
        for tick in self.x_ticks:
            x = self.x(tick)
            out.append(
                f'<line x1="{x:.1f}" x2="{x:.1f}" y1="{base:.1f}" y2="{base + 4:.1f}" '
                f'stroke="{_AXIS}"/>'
                f'<text x="{x:.1f}" y="{base + 16:.1f}" text-anchor="middle">'
                f"{_fmt_time(tick)}</text>"
            )
        out.append(
            f'<line x1="{_LEFT}" x2="{self.width - _RIGHT}" y1="{base:.1f}" y2="{base:.1f}" '
            f'stroke="{_AXIS}"/>'
            f'<text x="{_LEFT + self.plot_w / 2:.1f}" y="{self.height - 6}" '
            f'text-anchor="middle" class="label">{escape(x_label)}</text>'
            f'<text transform="translate(12,{_TOP + self.plot_h / 2:.1f}) rotate(-90)" '
            f'text-anchor="middle" class="label">{escape(y_label)}</text>'
        )
        return out


def _svg(width: int, height: int, body: list[str], title: str) -> str:
    return (
        f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {width} {height}" '
        f'width="100%" role="img" aria-label="{escape(title)}" '
        f'font-family="system-ui, sans-serif" font-size="11" fill="{_TEXT}">'
        + "".join(body)
        + "</svg>"
    )


def _empty(width: int, height: int, title: str, message: str) -> str:
    return _svg(
        width,
        height,
        [
            f'<rect x="1" y="1" width="{width - 2}" height="{height - 2}" rx="6" '
            f'fill="#fafbfc" stroke="{_GRID}"/>',
            f'<text x="{width / 2}" y="{height / 2}" text-anchor="middle">{escape(message)}</text>',
        ],
        title,
    )


def line_chart(
    series: Sequence[Series],
    *,
    title: str,
    y_label: str,
    x_label: str = "time since start",
    unit: str = "",
    x_max: float = 0.0,
    width: int = _W,
    height: int = _H,
) -> str:
    """Lines (or filled areas) of ``(seconds, value)`` points; ``x_max`` aligns the
    time axis of charts shown together."""
    drawn = [s for s in series if s.points]
    if not drawn:
        return _empty(width, height, title, "no data recorded")
    x_max = max(x_max, *(x for s in drawn for x, _ in s.points))
    y_max = max(max(y for _, y in s.points) for s in drawn)
    frame = _Frame(x_max, y_max * 1.05, width, height)
    body = frame.axes(x_label, y_label)
    for s in drawn:
        points = _stepped(s.points) if s.step else s.points
        coords = " ".join(f"{frame.x(x):.1f},{frame.y(y):.1f}" for x, y in points)
        if s.area:
            base = frame.y(0)
            first, last = frame.x(points[0][0]), frame.x(points[-1][0])
            body.append(
                f'<polygon points="{first:.1f},{base:.1f} {coords} {last:.1f},{base:.1f}" '
                f'fill="{s.color}" fill-opacity="0.15" stroke="none"/>'
            )
        dash = ' stroke-dasharray="5 4"' if s.dashed else ""
        body.append(
            f'<polyline points="{coords}" fill="none" stroke="{s.color}" stroke-width="2" '
            f'stroke-linejoin="round"{dash}/>'
        )
        if len(s.points) <= 240:  # hover targets; more would only weigh the file down
            body.extend(
                f'<circle cx="{frame.x(x):.1f}" cy="{frame.y(y):.1f}" r="3" fill="{s.color}" '
                f'fill-opacity="0"><title>{escape(s.name)} at {_fmt_time(round(x, 1))}: '
                f"{_fmt(y)}{escape(unit)}</title></circle>"
                for x, y in s.points
            )
    return _svg(width, height, body, title)


def bar_chart(
    starts: Sequence[float],
    interval: float,
    stacks: Sequence[Series],
    *,
    title: str,
    y_label: str,
    x_label: str = "time since start",
    x_max: float = 0.0,
    width: int = _W,
    height: int = _H,
) -> str:
    """Stacked bars, one per bucket starting at ``starts[i]``; stack values are the
    ``y`` of each series' points, in the same order as ``starts``."""
    if not starts or not any(y for s in stacks for _, y in s.points):
        return _empty(width, height, title, "no data recorded")
    totals = [sum(s.points[i][1] for s in stacks) for i in range(len(starts))]
    frame = _Frame(max(x_max, max(starts) + interval), max(totals) * 1.05, width, height)
    body = frame.axes(x_label, y_label)
    bar_w = max(frame.x(interval) - frame.x(0) - 1, 1.0)
    for i, start in enumerate(starts):
        base = 0.0
        x = frame.x(start)
        for s in stacks:
            value = s.points[i][1]
            if value <= 0:
                continue
            top, bottom = frame.y(base + value), frame.y(base)
            body.append(
                f'<rect x="{x:.1f}" y="{top:.1f}" width="{bar_w:.1f}" '
                f'height="{max(bottom - top, 0.5):.1f}" fill="{s.color}">'
                f"<title>{escape(s.name)} at {_fmt_time(start)}: {_fmt(value)}/s</title></rect>"
            )
            base += value
    return _svg(width, height, body, title)


def _stepped(points: list[tuple[float, float]]) -> list[tuple[float, float]]:
    out: list[tuple[float, float]] = []
    for i, (x, y) in enumerate(points):
        if i:
            out.append((x, points[i - 1][1]))
        out.append((x, y))
    return out
