"""The benchmark site: a static link graph of product pages.

``N`` pages ``/p/{i}.html`` of about 4 KB, each with a name, a price and 10
links. Page ``i`` links to ``i+1``, ``2i+1`` and ``2i+2`` (mod ``N``), so a
breadth-first crawl from page 0 reaches every page; the other links are random
(seeded, so every run serves the same graph).
"""

from __future__ import annotations

import random
from pathlib import Path

__all__ = ["LINKS_PER_PAGE", "START_PATH", "expected_names", "generate_site", "page_html"]

LINKS_PER_PAGE = 10
START_PATH = "/p/0.html"
_FILLER = " ".join(["lorem ipsum dolor sit amet"] * 120)
_MARKER = ".complete"


def _targets(i: int, n: int, rnd: random.Random) -> list[int]:
    links = {(i + 1) % n, (2 * i + 1) % n, (2 * i + 2) % n}
    while len(links) < min(LINKS_PER_PAGE, n):
        links.add(rnd.randrange(n))
    return sorted(links)


def page_html(i: int, links: list[int]) -> str:
    """Page ``i``: ``h1.name``, ``span.price`` and one ``<a href="/p/j.html">`` per link."""
    body = "".join(f'<li><a href="/p/{j}.html">item {j}</a></li>' for j in links)
    return (
        f"<html><head><title>Item {i}</title></head><body>"
        f'<h1 class="name">Item {i}</h1><span class="price">{i % 997}.99</span>'
        f"<p>{_FILLER}</p><ul>{body}</ul></body></html>"
    )


def generate_site(root: Path, n: int, *, seed: int = 42) -> Path:
    """Write the ``n``-page site under ``root/p/`` (skipped when already there)."""
    if n < 1:
        raise ValueError("a site needs at least one page")
    marker = root / _MARKER
    if marker.is_file() and marker.read_text() == f"{n} {seed}":
        return root
    pages = root / "p"
    pages.mkdir(parents=True, exist_ok=True)
    rnd = random.Random(seed)
    for i in range(n):
        (pages / f"{i}.html").write_text(page_html(i, _targets(i, n, rnd)))
    marker.write_text(f"{n} {seed}")
    return root


def expected_names(n: int) -> set[str]:
    """The ``name`` every correct crawl of an ``n``-page site extracts, once each."""
    return {f"Item {i}" for i in range(n)}
