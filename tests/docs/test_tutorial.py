"""The getting-started tutorial's commands, run as a reader would type them."""

from __future__ import annotations

import re
import signal
import subprocess
import sys
from pathlib import Path

import orjson

ROOT = Path(__file__).resolve().parents[2]


def test_demo_serve_then_crawl_it_with_the_example_spider(tmp_path: Path) -> None:
    server = subprocess.Popen(
        [sys.executable, "-m", "pooledcrawl", "demo", "--serve"],
        stdout=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        assert server.stdout is not None
        found = re.search(r"http://127\.0\.0\.1:\d+/", server.stdout.readline())
        assert found is not None
        url = found.group(0)
        out = tmp_path / "books.jsonl"
        spider = str(ROOT / "examples" / "bookstore.py")
        crawl = subprocess.run(
            [
                sys.executable, "-m", "pooledcrawl", "crawl", spider,
                "-a", f"start={url}", "-O", str(out), "--log-level", "WARNING",
            ],
            capture_output=True, text=True, timeout=240,
        )  # fmt: skip
        assert crawl.returncode == 0, crawl.stderr[-2000:]
        items = [orjson.loads(line) for line in out.read_bytes().splitlines()]
        assert len(items) > 500
        assert all(item["url"].startswith(url) and item["title"] for item in items)
    finally:
        server.send_signal(signal.SIGINT)
        assert server.wait(timeout=30) == 130


def test_demo_serve_on_a_busy_port_is_a_one_line_user_error() -> None:
    server = subprocess.Popen(
        [sys.executable, "-m", "pooledcrawl", "demo", "--serve"], stdout=subprocess.PIPE, text=True
    )
    try:
        assert server.stdout is not None
        found = re.search(r"http://127\.0\.0\.1:(\d+)/", server.stdout.readline())
        assert found is not None
        port = found.group(1)
        second = subprocess.run(
            [sys.executable, "-m", "pooledcrawl", "demo", "--serve", "--port", port],
            capture_output=True, text=True, timeout=60,
        )  # fmt: skip
        assert second.returncode == 2
        assert "cannot listen on 127.0.0.1:" in second.stderr
        assert "Traceback" not in second.stderr
    finally:
        server.send_signal(signal.SIGINT)
        server.wait(timeout=30)
