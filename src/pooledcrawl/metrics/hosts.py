"""What a crawl keeps of each host once its slot is gone: a few packed numbers.

A broad crawl meets millions of hosts with a handful of pages each. A live slot
(its controller, histograms, timelines) costs kilobytes, so an idle one is folded
in here and dropped: its counts join the crawl-wide aggregates, what its
controller learned is packed into a few floats for when work for it returns, and
full detail is kept only for the hosts in the running top N by pages, errors and
429s.
"""

from __future__ import annotations

import heapq
import itertools
import struct
from collections.abc import Callable
from typing import Any

from pooledcrawl.metrics.histogram import Histogram

__all__ = ["HostBook"]

#: pages, responses, transport errors, 429s, 401/403s; then the controller's memo
_COUNTS = struct.Struct("<5I")
_MAX_COUNT = 0xFFFFFFFF
#: what the top-N lists rank hosts by
CRITERIA = ("pages", "errors", "n429")


def _pack(counts: tuple[int, int, int, int, int], memo: tuple[float, ...] | None) -> bytes:
    head = _COUNTS.pack(*(min(c, _MAX_COUNT) for c in counts))
    if not memo:
        return head
    return head + struct.pack(f"<{len(memo)}d", *memo)


def _unpack(record: bytes) -> tuple[tuple[int, ...], tuple[float, ...] | None]:
    counts = _COUNTS.unpack_from(record)
    rest = len(record) - _COUNTS.size
    if not rest:
        return counts, None
    return counts, struct.unpack_from(f"<{rest // 8}d", record, _COUNTS.size)


class HostBook:
    """Folded hosts: one packed record each (about 150 bytes with its key), the
    aggregates over all of them, and the details of the top ``top`` by each criterion."""

    def __init__(self, top: int = 50) -> None:
        self.top = top
        #: host -> packed counts (+ controller memo); bytes, as a Python object per
        #: field would cost more than the host's whole budget
        self._records: dict[str, bytes] = {}
        self.latency = Histogram()  # body latency of every response, all hosts
        self.retired = 0  # slots folded in (a host that came back counts again)
        self._heaps: dict[str, list[tuple[int, int, str]]] = {c: [] for c in CRITERIA}
        self._refs: dict[str, int] = {}
        self._details: dict[str, dict[str, Any]] = {}
        self._seq = itertools.count()

    def __len__(self) -> int:
        return len(self._records)

    def __contains__(self, key: str) -> bool:
        return key in self._records

    def learned(self, key: str) -> tuple[float, ...] | None:
        """The controller memo of a host folded earlier, if any."""
        record = self._records.get(key)
        return None if record is None else _unpack(record)[1]

    def fold(
        self,
        key: str,
        counts: tuple[int, int, int, int, int],
        memo: tuple[float, ...] | None,
        detail: Callable[[], dict[str, Any]],
        latency: Histogram | None = None,
    ) -> None:
        """Fold one slot's ``counts`` (pages, responses, errors, 429s, 401/403s) into
        the host's record; ``detail()`` is called only if the host makes a top-N list."""
        self.retired += 1
        old = self._records.get(key)
        if old is not None:
            before = _unpack(old)[0]
            counts = tuple(a + b for a, b in zip(before, counts, strict=True))  # type: ignore[assignment]
            if memo is None:
                memo = _unpack(old)[1]
        self._records[key] = _pack(counts, memo)
        if latency is not None:
            self.latency.merge(latency)
        scores = {"pages": counts[0], "errors": counts[2], "n429": counts[3]}
        made: dict[str, Any] | None = None
        for criterion, score in scores.items():
            if criterion != "pages" and not score:
                continue
            heap = self._heaps[criterion]
            if len(heap) >= self.top and score <= heap[0][0]:
                continue
            if made is None:
                made = detail()
                made.update(pages=counts[0], transport_errors=counts[2], n429=counts[3])
                self._details[key] = made
            entry = (score, next(self._seq), key)
            self._refs[key] = self._refs.get(key, 0) + 1
            if len(heap) < self.top:
                heapq.heappush(heap, entry)
            else:
                self._drop(heapq.heappushpop(heap, entry)[2])

    def _drop(self, key: str) -> None:
        left = self._refs[key] - 1
        if left:
            self._refs[key] = left
        else:
            del self._refs[key]
            del self._details[key]

    def top_domains(self) -> dict[str, dict[str, Any]]:
        """Full detail of the hosts in any top-N list, most pages first."""
        return dict(
            sorted(self._details.items(), key=lambda kv: (-int(kv[1].get("pages", 0)), kv[0]))
        )

    def summary(self, busy: int = 0) -> dict[str, Any]:
        """Aggregates over every host folded in; ``busy``: hosts still working at the end."""
        pages = Histogram()
        done = blocked = with_errors = 0
        total_pages = 0
        for record in self._records.values():
            n_pages, responses, errors, n429, n403 = _COUNTS.unpack_from(record)
            total_pages += n_pages
            pages.add(float(n_pages))
            if errors:
                with_errors += 1
            if responses and not n_pages and (n429 or n403):
                blocked += 1
        done = max(len(self._records) - busy, 0)
        return {
            "seen": len(self._records),
            "done": done,
            "blocked": blocked,
            "with_errors": with_errors,
            "pages_per_host": {
                "mean": round(total_pages / len(self._records), 2) if self._records else 0.0,
                "p50": round(pages.quantile(0.5)),
                "p90": round(pages.quantile(0.9)),
                "p99": round(pages.quantile(0.99)),
                "max": round(pages.max),
            },
            "latency_ms": {
                "p50": round(self.latency.quantile(0.5) * 1000, 2),
                "p95": round(self.latency.quantile(0.95) * 1000, 2),
                "p99": round(self.latency.quantile(0.99) * 1000, 2),
            },
            "detailed": len(self._details),
            "top_n": self.top,
        }
