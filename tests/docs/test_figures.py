"""The docs' figures (``python -m benchmarks.docs_figures``) on tiny inputs: a stats
file with a controller timeline, a throughput results file and a README table. The
20 s crawl itself is a benchmark, not a test."""

from __future__ import annotations

import re
import sys
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

import orjson
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))  # the repo's `benchmarks`

from benchmarks import docs_figures
from benchmarks.docs_figures import (
    Bar,
    adaptive_timeline_svg,
    bars_from_readme,
    bars_from_results,
    domain_timeline,
    throughput_svg,
)

ROOT = Path(__file__).resolve().parents[2]
SVG = "{http://www.w3.org/2000/svg}"

STATS: dict[str, Any] = {
    "domains": {
        "127.0.0.1:8080": {
            "pages": 12,
            "timeline": {
                "interval_s": 1.0,
                # [t, concurrency, rate, ok, n429]; no pace until the first 429
                "rows": [[0, 50, None, 3, 0], [1, 60, 120.5, 5, 2], [2, 45, 100, 4, 1]],
            },
        },
        "quiet.example": {"pages": 1, "timeline": [[0, 8, None, 1, 0]]},
    }
}


def _polyline_points(root: ET.Element) -> list[list[tuple[float, float]]]:
    return [
        [tuple(map(float, p.split(","))) for p in line.attrib["points"].split()]  # type: ignore[misc]
        for line in root.iter(f"{SVG}polyline")
    ]


def test_timeline_svg_draws_each_series_of_the_busiest_domain() -> None:
    svg = adaptive_timeline_svg(STATS, limit=100.0, caption="a line\nanother")
    root = ET.fromstring(svg)  # well-formed XML, an <svg> at the root
    assert root.tag == f"{SVG}svg"
    texts = [t.text for t in root.iter(f"{SVG}text")]
    for name in ("pages/s (200)", "429s/s", "pace (r/s)", "server limit", "concurrency limit"):
        assert name in texts
    assert "a line" in texts and "another" in texts
    assert len(list(root.iter(f"{SVG}svg"))) == 3  # the image and its two charts
    # Hover titles carry the values of the busiest domain, not of the quiet one.
    titles = {t.text for t in root.iter(f"{SVG}title")}
    assert {"pages/s (200) at 1s: 5/s", "429s/s at 2s: 1/s", "pace (r/s) at 1s: 120.5/s"} <= titles
    assert {"concurrency limit at 0s: 50", "concurrency limit at 2s: 45"} <= titles
    lines = _polyline_points(root)
    # pages/s, 429s/s: 3 points; the pace starts with the first 429 (2 points); the
    # limit is a flat line; the concurrency limit is drawn as steps (2n - 1 points).
    assert sorted(len(points) for points in lines) == [2, 2, 3, 3, 5]


def test_timeline_accepts_a_bare_row_list_and_a_coarser_interval() -> None:
    stats = {
        "domains": {"h": {"pages": 1, "timeline": {"interval_s": 2.0, "rows": [[0, 4, 10, 8, 2]]}}}
    }
    tl = domain_timeline(stats)
    assert (tl.ok, tl.n429) == ([4.0], [1.0])  # counts per bucket, drawn per second
    quiet = {"domains": {"q": STATS["domains"]["quiet.example"]}}  # rows with no wrapper
    assert domain_timeline(quiet).concurrency == [8.0]
    with pytest.raises(ValueError, match="no per-domain timeline"):
        domain_timeline({"domains": {"h": {"pages": 3}}})


TABLE = """
## Performance

| contender | pages/s (median) | runs | CPU/page |
|---|---:|---|---:|
| (a) pooledcrawl, `response.css` | **3,428** | 4,040 · 3,428 | 315 µs |
| (d) Scrapy 2.19 | 206 | 224 · 206 | 4,858 µs |
| (e) Crawlee ParselCrawler | 1,484.5 | 484 · 408 | 2,235 µs |

| ratio | value |
|---|---:|
| (a)/(d) | 16.6 |
"""


def test_readme_table_is_parsed_not_hard_coded() -> None:
    bars = bars_from_readme(TABLE, ["a", "e", "d"])
    assert bars == [
        Bar("(a) pooledcrawl, response.css", 3428.0),
        Bar("(e) Crawlee ParselCrawler", 1484.5),
        Bar("(d) Scrapy 2.19", 206.0),
    ]
    with pytest.raises(ValueError, match=r"\['z'\]"):
        bars_from_readme(TABLE, ["a", "z"])
    with pytest.raises(ValueError, match="no table with a pages/s column"):
        bars_from_readme("# nothing here")


def test_the_table_is_read_from_the_readme_then_from_the_docs_page(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    readme, page = tmp_path / "README.md", tmp_path / "performance.md"
    monkeypatch.setattr(docs_figures, "README", readme)
    monkeypatch.setattr(docs_figures, "PERFORMANCE_PAGE", page)
    readme.write_text(f"# x\n<!-- section:performance -->{TABLE}<!-- section:dev -->\nmore")
    where, text = docs_figures.performance_text()
    assert where == "README, Performance" and "(d) Scrapy" in text and "more" not in text
    readme.write_text("# a landing page, the tables moved to the docs\n")
    page.write_text(TABLE)
    assert docs_figures.performance_text() == ("docs/performance.md", TABLE)


def test_the_readme_states_pooledcrawl_scrapy_and_crawlee_figures() -> None:
    _, text = docs_figures.performance_text()  # the README's section, else the docs page
    bars = bars_from_readme(text)
    labels = " ".join(b.label for b in bars)
    assert "pooledcrawl" in labels and "Scrapy" in labels and "Crawlee" in labels
    assert all(b.value > 0 for b in bars)


def test_throughput_bars_are_proportional_to_the_figures() -> None:
    report = {
        "contenders": {
            "a": {"label": "pooledcrawl, CSS", "median_pages_per_s": 3000.0},
            "d": {"label": "Scrapy, CSS", "median_pages_per_s": 200.0},
            "e": {"label": "Crawlee", "median_pages_per_s": None},  # failed: no bar
        }
    }
    bars = bars_from_results(report)
    assert [b.label for b in bars] == ["(a) pooledcrawl, CSS", "(d) Scrapy, CSS"]
    root = ET.fromstring(throughput_svg(bars, caption="tiny"))
    rects = [r for r in root.iter(f"{SVG}rect") if r.find(f"{SVG}title") is not None]
    widths = [float(r.attrib["width"]) for r in rects]
    assert widths[0] / widths[1] == pytest.approx(3000 / 200, rel=0.01)  # pixels to 0.1
    assert rects[0].attrib["fill"] != rects[1].attrib["fill"]  # ours stands out
    assert "3,000" in {t.text for t in root.iter(f"{SVG}text")}


def test_command_line_draws_both_figures_from_given_files(tmp_path: Path) -> None:
    stats = tmp_path / "stats.json"
    stats.write_bytes(orjson.dumps(STATS))
    results = tmp_path / "throughput-x.json"
    results.write_bytes(
        orjson.dumps(
            {
                "pages": 100,
                "runs": 1,
                "contenders": {"a": {"label": "pc", "median_pages_per_s": 9.0}},
            }
        )
    )
    argv = ["--stats", str(stats), "--results", str(results), "--out-dir", str(tmp_path)]
    assert docs_figures.main(argv) == 0
    timeline = (tmp_path / "adaptive-timeline.svg").read_text(encoding="utf-8")
    assert "pace (r/s) at 1s: 120.5/s" in timeline
    throughput = ET.fromstring((tmp_path / "throughput.svg").read_text(encoding="utf-8"))
    assert any(t.text == "(a) pc: 9 pages/s" for t in throughput.iter(f"{SVG}title"))


def test_committed_figures_are_well_formed_and_from_a_real_run() -> None:
    timeline = ET.parse(ROOT / "docs" / "img" / "adaptive-timeline.svg").getroot()
    titles = [t.text or "" for t in timeline.iter(f"{SVG}title")]
    good = [
        float(m.group(1)) for t in titles if (m := re.match(r"pages/s \(200\) at .*: ([\d.]+)", t))
    ]
    assert len(good) >= 15 and max(good) > 50  # seconds of a real crawl, not a sketch
    ET.parse(ROOT / "docs" / "img" / "throughput.svg")
