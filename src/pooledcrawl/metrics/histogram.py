"""Quantiles of durations in bounded memory."""

from __future__ import annotations

import math

__all__ = ["Histogram"]

#: Durations below this (1 µs) count as zero: a pool wait is mostly exactly 0.
_FLOOR = 1e-6
#: Each bucket is 4% wider than the last, so a quantile is within ±2% of the truth.
_GROWTH = 1.04
_INV_LOG_GROWTH = 1.0 / math.log(_GROWTH)


class Histogram:
    """Log-bucketed counts of non-negative durations (seconds).

    A crawl may time millions of requests per domain; keeping every sample
    would grow without bound, so samples go into sparse buckets 4% wide (about
    30 buckets for a typical latency spread) and quantiles come back within
    ±2%. Histograms merge by adding counts.
    """

    __slots__ = ("_buckets", "count", "max", "min", "total", "zeros")

    def __init__(self) -> None:
        self._buckets: dict[int, int] = {}
        self.count = 0
        self.zeros = 0
        self.total = 0.0
        self.min = math.inf
        self.max = 0.0

    def add(self, value: float) -> None:
        self.count += 1
        if value < _FLOOR:
            self.zeros += 1
            self.min = 0.0
            return
        self.total += value
        if value < self.min:
            self.min = value
        if value > self.max:
            self.max = value
        index = int(math.log(value / _FLOOR) * _INV_LOG_GROWTH)
        buckets = self._buckets
        buckets[index] = buckets.get(index, 0) + 1

    def merge(self, other: Histogram) -> None:
        self.count += other.count
        self.zeros += other.zeros
        self.total += other.total
        self.min = min(self.min, other.min)
        self.max = max(self.max, other.max)
        for index, n in other._buckets.items():
            self._buckets[index] = self._buckets.get(index, 0) + n

    @property
    def mean(self) -> float:
        return self.total / self.count if self.count else 0.0

    def quantile(self, q: float) -> float:
        """The nearest-rank ``q`` quantile (0 < q <= 1); 0.0 when empty."""
        if not self.count:
            return 0.0
        rank = max(1, math.ceil(q * self.count))
        if rank <= self.zeros:
            return 0.0
        seen = self.zeros
        for index in sorted(self._buckets):
            seen += self._buckets[index]
            if seen >= rank:
                # the bucket's geometric middle, clamped to what was really seen
                value: float = _FLOOR * _GROWTH ** (index + 0.5)
                return min(max(value, self.min), self.max)
        return self.max  # pragma: no cover - counts always add up
