"""Command line shared by the contenders that are not pooledcrawl."""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable
from pathlib import Path

__all__ = ["main"]


def main(crawl: Callable[[str, Path, int], None], description: str) -> None:
    """Parse ``START OUT --concurrency N --timing FILE``, run ``crawl``, write its seconds."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("start", help="the first URL")
    parser.add_argument("out", type=Path, help="JSON-lines output (overwritten)")
    parser.add_argument("--concurrency", type=int, default=64)
    parser.add_argument("--timing", type=Path, help="write the crawl's seconds here")
    args = parser.parse_args()
    started = time.perf_counter()
    crawl(args.start, args.out, args.concurrency)
    elapsed = time.perf_counter() - started
    if args.timing is not None:
        args.timing.write_text(f"{elapsed:.6f}\n")
