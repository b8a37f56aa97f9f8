"""The quickest end-to-end check: the demo crawl from the CLI."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import orjson


def test_demo_crawls_the_bundled_bookstore(tmp_path: Path) -> None:
    out = tmp_path / "items.jsonl"
    stats = tmp_path / "stats.json"
    proc = subprocess.run(
        [sys.executable, "-m", "pooledcrawl", "demo", "-O", str(out), "--stats", str(stats)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr
    items = [orjson.loads(line) for line in out.read_bytes().splitlines()]
    assert len(items) == 1000
    assert len({item["url"] for item in items}) == 1000
    assert all(item["title"] and item["price"].startswith("£") for item in items)
    assert orjson.loads(stats.read_bytes())["items"] == 1000
