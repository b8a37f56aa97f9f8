"""The memory benchmark runs and measures what it says (CI: small N, no thresholds on RSS)."""

from __future__ import annotations

import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))  # the repo's `benchmarks`

from benchmarks.memory import SHAPES, main, measure


def test_measure_pushes_every_request_and_reports_per_request() -> None:
    for shape in SHAPES:
        row = measure(shape, 5_000)
        assert row["requests"] == 5_000
        assert row["bytes_per_request"] == round(row["rss_added_bytes"] / 5_000, 1)


def test_command_line_writes_its_json(tmp_path: Path) -> None:
    out = tmp_path / "memory.json"
    main(["--requests", "2000", "--only", "site", "--out", str(out)])
    assert '"shape": "site"' in out.read_text()


def test_disk_bomb_and_sitemap_sections_measure_what_they_say(tmp_path: Path) -> None:
    """No thresholds here: the benchmark judges them; this checks it measured the
    right thing (every request kept, the bomb cut off, every sitemap entry read)."""
    out = tmp_path / "memory.json"
    argv = ["--requests", "3000", "--only", "disk,bomb,sitemap", "--transports", "aiohttp"]
    main([*argv, "--out", str(out)])
    result = json.loads(out.read_text())
    disk = result["disk"]
    assert (disk["requests"], disk["pending"]) == (3000, 0)  # 3,000 pushed, all served
    assert disk["peak_rss_mb"] > 0
    (bomb,) = result["bomb"]
    assert bomb["transport"] == "aiohttp" and bomb["outcome"] == "ResponseTooLarge"
    assert bomb["peak_rss_added_bytes"] >= 0
    assert [s["compression"] for s in result["sitemap"]] == ["plain", "gz"]
    for row in result["sitemap"]:
        assert row["stream"]["urls"] == row["tree"]["urls"] == 50_000
        assert row["tree"]["peak_rss_added_bytes"] > 0
