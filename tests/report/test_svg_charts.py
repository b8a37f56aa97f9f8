"""`report/svg.py`: the report's charts are well-formed SVG whose axes, lines, bars and
hover titles say what the data says, with no data, one point, or a great many."""

from __future__ import annotations

import itertools
import math
import re
import xml.etree.ElementTree as ET

import pytest

from pooledcrawl.report.svg import Series, bar_chart, line_chart, nice_ticks

NS = "{http://www.w3.org/2000/svg}"


def parse(svg: str) -> ET.Element:
    root = ET.fromstring(svg)  # raises on anything that is not well-formed XML
    assert root.tag == f"{NS}svg"
    return root


def texts(root: ET.Element) -> list[str]:
    return [t.text or "" for t in root.iter(f"{NS}text")]


def titles(root: ET.Element) -> list[str]:
    return [t.text or "" for t in root.iter(f"{NS}title")]


def polyline_points(element: ET.Element) -> list[tuple[float, float]]:
    pairs = element.attrib["points"].split()
    return [(float(x), float(y)) for x, y in (p.split(",") for p in pairs)]


def y_ticks(root: ET.Element) -> list[float]:
    """The y-axis labels, read back as numbers (they sit right-aligned left of the plot)."""
    out = []
    for t in root.iter(f"{NS}text"):
        if t.attrib.get("text-anchor") == "end":
            label = (t.text or "").replace(",", "")
            out.append(float(label[:-1]) * 1000 if label.endswith("k") else float(label))
    return out


def x_ticks(root: ET.Element) -> list[float]:
    """The time-axis labels (``12s``, ``5m``, ``2m10``, ``5h33``) read back as seconds."""
    out = []
    for t in root.iter(f"{NS}text"):
        label = t.text or ""
        if t.attrib.get("text-anchor") != "middle" or "class" in t.attrib:
            continue
        if m := re.fullmatch(r"([\d.]+)s", label):
            out.append(float(m[1]))
        elif m := re.fullmatch(r"(\d+)m(\d\d)?", label):
            out.append(int(m[1]) * 60 + int(m[2] or 0))
        elif m := re.fullmatch(r"(\d+)h(\d\d)", label):
            out.append(int(m[1]) * 3600 + int(m[2]) * 60)
    return out


def viewbox(root: ET.Element) -> tuple[float, float, float, float]:
    x, y, w, h = (float(v) for v in root.attrib["viewBox"].split())
    return x, y, w, h


# ---- ticks -------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("low", "high"), [(0, 1), (0, 7), (0, 99.5), (0, 1234), (0, 3e9), (0, 0.003), (5, 5)]
)
def test_nice_ticks_cover_the_range_in_round_steps(low: float, high: float) -> None:
    ticks = nice_ticks(low, high)
    assert ticks[0] <= low and ticks[-1] >= high
    steps = {round(b - a, 12) for a, b in itertools.pairwise(ticks)}
    assert len(steps) == 1  # evenly spaced
    step = steps.pop()
    mantissa = step / 10 ** math.floor(math.log10(step))
    assert round(mantissa, 9) in (1, 2, 2.5, 5, 10)
    assert 2 <= len(ticks) <= 12


def test_nice_ticks_of_a_non_finite_range_is_a_single_zero() -> None:
    assert nice_ticks(0, math.inf) == [0.0]
    assert nice_ticks(math.nan, 1) == [0.0]


# ---- line charts -------------------------------------------------------------------------
def test_a_line_chart_draws_one_line_per_series_scaled_to_the_data() -> None:
    rate = Series("pages/s", "#1f77b4", [(0, 10), (10, 40), (20, 25), (30, 80)])
    limit = Series("limit", "#d62728", [(0, 100), (30, 100)], dashed=True)
    root = parse(line_chart([rate, limit], title="Throughput", y_label="pages/s"))
    lines = list(root.iter(f"{NS}polyline"))
    assert [line.attrib["stroke"] for line in lines] == ["#1f77b4", "#d62728"]
    assert "stroke-dasharray" in lines[1].attrib and "stroke-dasharray" not in lines[0].attrib
    assert root.attrib["aria-label"] == "Throughput"
    # the y axis reaches past the highest value, and starts at 0
    ticks = y_ticks(root)
    assert min(ticks) == 0 and 100 <= max(ticks) < 200
    # the x axis labels time, up to the last point
    assert min(x_ticks(root)) == 0 and 30 <= max(x_ticks(root)) < 60
    assert {"time since start", "pages/s"} <= set(texts(root))
    # pixels follow the data: x grows with time, y shrinks (SVG's y points down) with value
    points = polyline_points(lines[0])
    assert len(points) == 4
    xs, ys = [p[0] for p in points], [p[1] for p in points]
    assert xs == sorted(xs) and len(set(xs)) == 4
    assert ys[3] < ys[1] < ys[2] < ys[0]  # 80 highest, then 40, 25, 10
    flat = polyline_points(lines[1])
    assert flat[0][1] == flat[1][1] < min(ys)  # the limit line is above every rate point
    # within the picture
    _, _, width, height = viewbox(root)
    assert all(0 <= x <= width and 0 <= y <= height for x, y in points + flat)


def test_hover_titles_give_each_points_value_and_unit() -> None:
    series = Series("latency p95", "#333", [(0, 0.25), (130, 1.5), (7300, 1234)])
    root = parse(line_chart([series], title="Latency", y_label="s", unit=" s"))
    assert titles(root) == [
        "latency p95 at 0s: 0.25 s",
        "latency p95 at 2m10: 1.5 s",
        "latency p95 at 2h01: 1.2k s",
    ]
    assert len(list(root.iter(f"{NS}circle"))) == 3


def test_x_max_aligns_the_time_axis_of_charts_shown_together() -> None:
    short = Series("a", "#000", [(0, 1), (10, 2)])
    alone = parse(line_chart([short], title="t", y_label="y"))
    aligned = parse(line_chart([short], title="t", y_label="y", x_max=120))
    assert max(x_ticks(alone)) < 20 and max(x_ticks(aligned)) >= 120
    # the same last point sits further left on the longer axis
    assert (
        polyline_points(next(aligned.iter(f"{NS}polyline")))[-1][0]
        < (polyline_points(next(alone.iter(f"{NS}polyline")))[-1][0])
    )


def test_step_and_area_series() -> None:
    step = Series("inflight", "#090", [(0, 1), (5, 3), (10, 2)], step=True, area=True)
    root = parse(line_chart([step], title="t", y_label="y"))
    points = polyline_points(next(root.iter(f"{NS}polyline")))
    # a step holds the previous value until the next point: 3 points become 5
    assert len(points) == 5
    assert points[1] == (points[2][0], points[0][1]) and points[3] == (points[4][0], points[2][1])
    polygon = next(root.iter(f"{NS}polygon"))
    assert polygon.attrib["fill"] == "#090"
    corners = polygon.attrib["points"].split()
    assert corners[0].split(",")[1] == corners[-1].split(",")[1]  # closed along the x axis


def test_names_and_labels_from_the_web_are_escaped() -> None:
    hostile = '<script>alert("x")</script> & co'
    series = Series(hostile, "#000", [(0, 1), (1, 2)])
    svg = line_chart([series], title=hostile, y_label=hostile, x_label=hostile, unit="<u>")
    root = parse(svg)
    assert "<script>" not in svg
    assert root.attrib["aria-label"] == hostile
    assert hostile in texts(root)
    assert titles(root)[0].startswith(hostile) and titles(root)[0].endswith("<u>")


@pytest.mark.parametrize(
    "series",
    [[], [Series("a", "#000")], [Series("a", "#000"), Series("b", "#111")]],
    ids=["none", "one-empty", "all-empty"],
)
def test_a_line_chart_without_points_says_so(series: list[Series]) -> None:
    root = parse(line_chart(series, title="Empty", y_label="y"))
    assert texts(root) == ["no data recorded"]
    assert not list(root.iter(f"{NS}polyline"))
    assert root.attrib["aria-label"] == "Empty"


def test_an_empty_series_beside_a_full_one_is_left_out() -> None:
    root = parse(
        line_chart([Series("a", "#000"), Series("b", "#111", [(0, 1)])], title="t", y_label="y")
    )
    assert [p.attrib["stroke"] for p in root.iter(f"{NS}polyline")] == ["#111"]


@pytest.mark.parametrize("point", [(0.0, 0.0), (0.0, 5.0), (42.0, 0.0), (3.0, 7.0)])
def test_a_single_point_draws_inside_the_frame(point: tuple[float, float]) -> None:
    """One sample, possibly at time 0 or value 0: no division by zero, nothing off-canvas."""
    root = parse(line_chart([Series("a", "#000", [point])], title="t", y_label="y"))
    (x, y) = polyline_points(next(root.iter(f"{NS}polyline")))[0]
    _, _, width, height = viewbox(root)
    assert 0 <= x <= width and 0 <= y <= height
    assert all(math.isfinite(v) for v in (x, y))
    assert len(list(root.iter(f"{NS}circle"))) == 1
    assert max(y_ticks(root)) >= point[1]


def test_a_long_crawl_keeps_every_point_but_no_hover_target_per_point() -> None:
    """A day at one sample a second: every point on the line, no 86,400 hover circles."""
    n = 86_400
    points = [(float(t), float((t * 7919) % 5000)) for t in range(n)]
    svg = line_chart([Series("rate", "#000", points)], title="t", y_label="y")
    root = parse(svg)
    assert len(polyline_points(next(root.iter(f"{NS}polyline")))) == n
    assert not list(root.iter(f"{NS}circle"))
    assert max(x_ticks(root)) >= n - 60  # the time axis reaches the last minute
    assert 5000 <= max(y_ticks(root)) < 10_000
    assert len(svg) < 40 * n  # about one short coordinate pair per point


def test_huge_values_stay_on_the_canvas_with_compact_labels() -> None:
    points = [(0.0, 0.0), (1.0, 3.5e9), (2.0, 1.0e9)]
    root = parse(line_chart([Series("bytes", "#000", points)], title="t", y_label="B"))
    labels = [t for t in texts(root) if re.fullmatch(r"[\d,.]+k?", t)]
    assert all(len(label) <= 12 for label in labels)
    assert max(y_ticks(root)) >= 3.5e9
    _, _, width, height = viewbox(root)
    coords = polyline_points(next(root.iter(f"{NS}polyline")))
    assert all(0 <= x <= width and 0 <= y <= height for x, y in coords)


# ---- bar charts --------------------------------------------------------------------------
def test_stacked_bars_stack_in_series_order_and_scale_to_the_tallest_bucket() -> None:
    starts = [0.0, 10.0, 20.0]
    ok = Series("200", "#2ca02c", [(0, 5), (10, 20), (20, 0)])
    errors = Series("5xx", "#d62728", [(0, 1), (10, 0), (20, 4)])
    root = parse(bar_chart(starts, 10.0, [ok, errors], title="Statuses", y_label="req/s"))
    rects = list(root.iter(f"{NS}rect"))
    # zero-height parts are not drawn: 200 x2 and 5xx x2
    assert [(r.attrib["fill"], r.find(f"{NS}title").text) for r in rects] == [  # type: ignore[union-attr]
        ("#2ca02c", "200 at 0s: 5/s"),
        ("#d62728", "5xx at 0s: 1/s"),
        ("#2ca02c", "200 at 10s: 20/s"),
        ("#d62728", "5xx at 20s: 4/s"),
    ]
    ticks = y_ticks(root)
    assert min(ticks) == 0 and 20 <= max(ticks) < 40
    # heights are proportional to the values; the 5xx part sits on top of the 200 part
    first_ok, first_err, tall, last = (
        {k: float(v) for k, v in r.attrib.items() if k in ("x", "y", "width", "height")}
        for r in rects
    )
    assert first_ok["height"] == pytest.approx(5 * first_err["height"], rel=0.05)
    assert tall["height"] == pytest.approx(4 * first_ok["height"], rel=0.05)
    assert first_err["y"] + first_err["height"] == pytest.approx(first_ok["y"], abs=0.15)
    assert first_ok["x"] == first_err["x"] < tall["x"] < last["x"]
    assert all(r["width"] >= 1 for r in (first_ok, first_err, tall, last))
    # bars end where the next bucket starts
    assert first_ok["x"] + first_ok["width"] <= tall["x"]


@pytest.mark.parametrize(
    ("starts", "stacks"),
    [([], []), ([0.0], [Series("a", "#000", [(0, 0)])]), ([0.0, 1.0], [])],
    ids=["nothing", "all-zero", "no-series"],
)
def test_a_bar_chart_without_data_says_so(starts: list[float], stacks: list[Series]) -> None:
    root = parse(bar_chart(starts, 1.0, stacks, title="Empty", y_label="y"))
    assert texts(root) == ["no data recorded"]
    assert not [r for r in root.iter(f"{NS}rect") if r.find(f"{NS}title") is not None]


def test_one_bucket_is_one_bar() -> None:
    root = parse(bar_chart([0.0], 5.0, [Series("a", "#000", [(0, 3)])], title="t", y_label="y"))
    (rect,) = list(root.iter(f"{NS}rect"))
    _, _, width, height = viewbox(root)
    x, w = float(rect.attrib["x"]), float(rect.attrib["width"])
    assert x >= 0 and x + w <= width and 0 < float(rect.attrib["height"]) <= height


def test_many_buckets_still_get_a_visible_bar_each() -> None:
    """A long crawl in one-second buckets: bars never narrower than a pixel."""
    n = 20_000
    starts = [float(i) for i in range(n)]
    root = parse(
        bar_chart(
            starts, 1.0, [Series("a", "#000", [(s, 1.0) for s in starts])], title="t", y_label="y"
        )
    )
    rects = list(root.iter(f"{NS}rect"))
    assert len(rects) == n
    assert min(float(r.attrib["width"]) for r in rects) >= 1.0
    assert max(x_ticks(root)) >= n - 60
    assert max(float(r.attrib["x"]) for r in rects) < viewbox(root)[2]
