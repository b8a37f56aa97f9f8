"""The broad-crawl benchmark reports what issue #20 asks (CI: tiny sizes; no
threshold on any figure): medians over rounds, CPU per page, RSS slope, stats file
size, load, and each target met or not."""

from __future__ import annotations

import json
import shutil
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))  # the repo's `benchmarks`

from benchmarks.broad import main
from benchmarks.dnsmasq import dnsmasq_available


@pytest.mark.slow
def test_the_simulation_reports_medians_slope_and_dispatcher_cost(tmp_path: Path) -> None:
    out = tmp_path / "sim.json"
    main(["--simulate", "20,200", "--pages-per-host", "2", "--runs", "2", "--out", str(out)])
    result = json.loads(out.read_text())
    assert [row["hosts"] for row in result["rows"]] == [20, 200]
    assert all(row["runs"] == 2 and row["pages"] == row["hosts"] * 2 for row in result["rows"])
    assert result["rss_per_host"] is not None and result["dispatcher_spread"] >= 0


@pytest.mark.slow
def test_the_live_run_reports_rounds_medians_and_targets(tmp_path: Path) -> None:
    if shutil.which("nginx") is None or not dnsmasq_available():
        pytest.skip("nginx and dnsmasq are needed")
    out = tmp_path / "live.json"
    main(["--hosts", "3,12", "--only", "pooledcrawl", "--runs", "2", "--out", str(out)])
    result = json.loads(out.read_text())
    runs = result["runs"]["pooledcrawl"]
    assert {size: len(each) for size, each in runs.items()} == {"3": 2, "12": 2}
    for size, row in result["rows"]["pooledcrawl"].items():
        pages = [r["pages_per_s"] for r in runs[size]]
        assert min(pages) <= row["pages_per_s"] <= max(pages)  # the median of the rounds
        assert row["cpu_ms_per_page"] > 0 and row["peak_rss"] > 0
        assert row["stats_file_bytes"] > 0 and len(row["load"]) == 2
    summary = result["summary"]
    assert "rss_per_host" in summary["pooledcrawl"]
    assert set(summary["targets"]) == {"stats_file", "rss_per_host", "pages_per_s_kept"}
