"""Link extraction speed: pages per second, parse included, one process, no network.

    python -m benchmarks.link_extraction                 # 2,000 pages, 5 runs, medians
    python -m benchmarks.link_extraction --pages 500 --runs 3 --docs

Contenders, each on a fresh Response per page (so each pays for the parse, as a
crawl does):

- ``follow_all``: ``list(response.follow_all(css="a"))``, the hand-written way;
- ``LinkExtractor()``: ours with the defaults (a/area, IGNORED_EXTENSIONS, unique);
- ``LinkExtractor(rules)``: with allow/deny regexes and ``restrict_css``;
- ``scrapy``: Scrapy's ``LinkExtractor()`` on an ``HtmlResponse`` (reference).

``extract only`` repeats the first three on pages parsed beforehand, which isolates
the extraction from the parse. Pages are the throughput benchmark's (``benchmarks/
site.py``, 10 links each); ``--docs`` adds the HTML pages of the Debian
documentation packages installed (real pages, hundreds of links on some).
"""

from __future__ import annotations

import argparse
import random
import statistics
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from benchmarks.site import _targets, page_html

__all__ = ["main"]

_DOCS = (
    Path("/usr/share/doc/python-requests-doc/html"),
    Path("/usr/share/doc/docbook-xsl-doc-html/doc"),
)


def _site_pages(n: int) -> list[tuple[str, bytes]]:
    rnd = random.Random(42)
    return [
        (f"http://127.0.0.1:8080/p/{i}.html", page_html(i, _targets(i, n, rnd)).encode())
        for i in range(n)
    ]


def _doc_pages(limit: int) -> list[tuple[str, bytes]]:
    pages = []
    for root in _DOCS:
        if root.is_dir():
            for path in sorted(root.rglob("*.html"))[:limit]:
                pages.append((f"http://127.0.0.1:8080/{path.relative_to(root)}", path.read_bytes()))
    return pages


def _contenders() -> dict[str, Callable[[Any], int]]:
    from pooledcrawl import LinkExtractor

    default = LinkExtractor()
    rules = LinkExtractor(
        allow=r"/p/\d+\.html$|\.html$", deny=r"/p/9\d\.html$", restrict_css="body"
    )
    return {
        "follow_all": lambda r: len(list(r.follow_all(css="a"))),
        "LinkExtractor()": lambda r: len(default.extract_links(r)),
        "LinkExtractor(rules)": lambda r: len(rules.extract_links(r)),
    }


def _ours(pages: list[tuple[str, bytes]]) -> list[Any]:
    from multidict import CIMultiDict

    from pooledcrawl import Request, Response

    return [
        Response(url, 200, CIMultiDict({"Content-Type": "text/html"}), body, Request(url))
        for url, body in pages
    ]


def _time(func: Callable[[Any], int], responses: list[Any]) -> tuple[float, int]:
    started = time.perf_counter()
    links = sum(func(r) for r in responses)
    return time.perf_counter() - started, links


def measure(pages: list[tuple[str, bytes]], runs: int) -> dict[str, tuple[float, int]]:
    """Median pages/s per contender (and the links each found)."""
    results: dict[str, list[float]] = {}
    found: dict[str, int] = {}
    contenders = _contenders()
    for _ in range(runs):
        for name, func in contenders.items():
            elapsed, links = _time(func, _ours(pages))  # fresh: parse included
            results.setdefault(name, []).append(len(pages) / elapsed)
            found[name] = links
            parsed = _ours(pages)
            for response in parsed:
                response.selector  # noqa: B018 -- parse first
            elapsed, links = _time(func, parsed)
            results.setdefault(f"{name} (extract only)", []).append(len(pages) / elapsed)
            found[f"{name} (extract only)"] = links
        try:
            from scrapy.http import HtmlResponse
            from scrapy.linkextractors import LinkExtractor as ScrapyLinkExtractor
        except ImportError:
            continue
        fresh = [HtmlResponse(url, body=body) for url, body in pages]
        extract = ScrapyLinkExtractor().extract_links
        elapsed, links = _time(lambda r, extract=extract: len(extract(r)), fresh)
        results.setdefault("scrapy LinkExtractor()", []).append(len(pages) / elapsed)
        found["scrapy LinkExtractor()"] = links
    return {name: (statistics.median(rates), found[name]) for name, rates in results.items()}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--pages", type=int, default=2000)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--docs", action="store_true", help="also real Debian doc pages")
    args = parser.parse_args(argv)
    sets = {"benchmark site": _site_pages(args.pages)}
    if args.docs:
        docs = _doc_pages(args.pages)
        if docs:
            sets["Debian docs"] = docs
    for label, pages in sets.items():
        print(f"{label}: {len(pages)} pages, median of {args.runs} runs")
        for name, (rate, links) in measure(pages, args.runs).items():
            print(f"  {name:38} {rate:10,.0f} pages/s  ({links} links)")


if __name__ == "__main__":
    main()
