"""Memory of the in-memory frontier: RSS added per pending request, dedup set included.

    python -m benchmarks.memory                      # 1,000,000 requests, every shape
    python -m benchmarks.memory --requests 200000 --only site

Each shape runs in a fresh process: it pushes N distinct requests into a
``MemoryFrontier`` the way the engine does (canonical URL, then ``push``), with
nothing popped, and reports (RSS after - RSS before) / N. The URLs are built
inside the measured section, since a pending request has to keep its URL.

Shapes: ``site`` -- the benchmark site's links (``http://127.0.0.1:8080/p/N.html``)
with a callback and a depth, as ``response.follow`` makes them; ``long`` -- the
same with 70-character URLs; ``meta`` -- requests carrying a ``meta`` dict, which
the frontier keeps as whole Request objects (for comparison).
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

__all__ = ["SHAPES", "main", "measure"]

RESULTS_DIR = Path(__file__).resolve().parent / "results"
TARGET_BYTES = 250


def _site_url(i: int) -> str:
    return f"http://127.0.0.1:8080/p/{i}.html"


def _long_url(i: int) -> str:
    return f"https://books.example.com/catalogue/category/fiction/item-{i:07d}/index.html"


#: name -> (URL maker, whether requests carry meta, description)
SHAPES: dict[str, tuple[Callable[[int], str], bool, str]] = {
    "site": (_site_url, False, "benchmark-site links with a callback and a depth"),
    "long": (_long_url, False, "70-character URLs with a callback and a depth"),
    "meta": (_site_url, True, "requests with a meta dict (kept as whole Request objects)"),
}


def _rss() -> int:
    """Resident set size in bytes (Linux /proc; elsewhere the peak from getrusage)."""
    try:
        with open("/proc/self/statm") as statm:
            return int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except OSError:
        import resource

        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        return peak if sys.platform == "darwin" else peak * 1024


def measure(shape: str, count: int) -> dict[str, Any]:
    """Push ``count`` distinct requests of ``shape``; the RSS they added, per request."""
    from pooledcrawl import Request, Response, Spider
    from pooledcrawl.frontier.memory import MemoryFrontier
    from pooledcrawl.http.url import canonical_or_raise

    class Bench(Spider):
        def parse(self, response: Response) -> None:
            return None

    make_url, with_meta, _ = SHAPES[shape]
    callback = Bench().parse
    frontier = MemoryFrontier()
    gc.collect()
    before = _rss()
    started = time.perf_counter()
    for i in range(count):
        request = Request(make_url(i), callback, meta={"n": i} if with_meta else None)
        request.depth = 3
        frontier.push(request, canonical_or_raise(request.url))
    elapsed = time.perf_counter() - started
    gc.collect()
    added = _rss() - before
    if len(frontier) != count:
        raise RuntimeError(f"frontier holds {len(frontier)} requests, expected {count}")
    first = frontier.pop(0.0)
    if first is None or first.url != make_url(0) or first.callback != callback:
        raise RuntimeError("the first request did not come back intact")
    return {
        "shape": shape,
        "description": SHAPES[shape][2],
        "requests": count,
        "url_length": len(make_url(count - 1)),
        "rss_added_bytes": added,
        "bytes_per_request": round(added / count, 1),
        "push_us_per_request": round(elapsed / count * 1e6, 2),
    }


def _parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.memory", description=__doc__.split("\n\n")[0]
    )
    parser.add_argument("--requests", type=int, default=1_000_000)
    parser.add_argument("--only", default=",".join(SHAPES), help="shapes, e.g. site,long")
    parser.add_argument("--out", type=Path, help="result JSON (default: benchmarks/results/)")
    parser.add_argument("--child", help=argparse.SUPPRESS)  # run one shape in this process
    args = parser.parse_args(argv)
    args.only = [s.strip() for s in args.only.split(",") if s.strip()]
    unknown = sorted(set(args.only) - set(SHAPES))
    if unknown:
        parser.error(f"unknown shape(s) {', '.join(unknown)}: choose from {', '.join(SHAPES)}")
    return args


def main(argv: Sequence[str] | None = None) -> int:
    args = _parse_args(argv)
    if args.child:
        print(json.dumps(measure(args.child, args.requests)))
        return 0
    root = Path(__file__).resolve().parent.parent
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join(filter(None, [str(root), os.environ.get("PYTHONPATH")])),
    }
    rows = []
    for shape in args.only:
        # a fresh interpreter per shape: nothing freed by one shape inflates the next
        out = subprocess.run(
            [
                sys.executable,
                "-m",
                "benchmarks.memory",
                "--child",
                shape,
                "--requests",
                str(args.requests),
            ],
            capture_output=True,
            text=True,
            check=True,
            cwd=root,
            env=env,
        ).stdout
        rows.append(json.loads(out.strip().splitlines()[-1]))
    print(
        f"{'shape':6}{'requests':>11}{'URL chars':>11}{'bytes/request':>15}"
        f"  target <= {TARGET_BYTES}"
    )
    for row in rows:
        verdict = (
            ""
            if row["shape"] == "meta"
            else ("met" if row["bytes_per_request"] <= TARGET_BYTES else "MISSED")
        )
        print(
            f"{row['shape']:6}{row['requests']:>11,}{row['url_length']:>11}"
            f"{row['bytes_per_request']:>15,.0f}  {verdict}"
        )
    out_path = args.out or RESULTS_DIR / f"memory-{time.strftime('%Y%m%d-%H%M%S')}.json"
    out_path.parent.mkdir(parents=True, exist_ok=True)
    out_path.write_text(json.dumps({"target_bytes": TARGET_BYTES, "results": rows}, indent=2))
    print(f"results: {out_path}")
    headline = [r for r in rows if r["shape"] != "meta"]
    return 0 if all(r["bytes_per_request"] <= TARGET_BYTES for r in headline) else 1


if __name__ == "__main__":
    sys.exit(main())
