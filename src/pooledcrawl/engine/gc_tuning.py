"""Fewer young garbage collections while a crawl runs.

CPython collects its youngest generation each time 700 more container objects have
been allocated than freed. A crawl allocates and frees thousands per page (a
request, its headers, futures, a response, parsed links), nearly all of them freed
by reference counting, so most of those collections find nothing; and every tenth
one scans the middle generation, whose survivors push full collections over every
live object. In a 5,000-host crawl that was 1,100 young, 100 middle and 9 full
collections, about 15% of its CPU. With a threshold of 20,000 it was 5 young ones.
Cyclic garbage (a failed connection's exception and traceback) waits a little
longer to be freed: a few MB at most.

The threshold is raised only for the crawl, and put back after it unless someone
else changed it meanwhile (another crawl in the same process started later, a
user's own setting): the interpreter is the user's, not the crawl's.
"""

from __future__ import annotations

import contextlib
import gc
from collections.abc import Iterator

__all__ = ["young_gc_threshold"]


@contextlib.contextmanager
def young_gc_threshold(threshold: int | None) -> Iterator[None]:
    """Collect the youngest generation every ``threshold`` allocations inside the
    block, unless it is already at least that (or None: leave it alone)."""
    before = gc.get_threshold()
    if threshold is None or before[0] >= threshold or before[0] == 0:
        yield  # already as high, or automatic collection is off (0)
        return
    gc.set_threshold(threshold, *before[1:])
    try:
        yield
    finally:
        now = gc.get_threshold()
        if now[0] == threshold:
            gc.set_threshold(before[0], *now[1:])
