"""The memory benchmark runs and measures what it says (CI: small N, no thresholds on RSS)."""

from __future__ import annotations

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
