"""Counters per time bucket over a whole crawl, in bounded memory."""

from __future__ import annotations

from collections.abc import Collection, Sequence
from typing import Any

from pooledcrawl.metrics.histogram import Histogram

__all__ = ["Timeline"]


class Timeline:
    """Rows of counters, one per ``interval`` seconds since the crawl started.

    A crawl may run for seconds or for days; when the rows run out, neighbouring
    rows merge and the interval doubles, so a one-minute crawl keeps 1 s rows and
    a ten-hour crawl 128 s rows, never more than ``max_rows`` of them. Columns
    named in ``peaks`` keep the highest value seen in the bucket; the others add
    up. With ``latency`` on, each row also keeps a histogram for p50/p95.

    Rows start at the first bucket that saw an event, not at the crawl's start: a
    domain first met an hour into a crawl holds its own few rows, not an hour of
    empty ones (a broad crawl has thousands of such domains).
    """

    __slots__ = ("_base", "_hists", "_peaks", "_rows", "columns", "interval", "max_rows")

    def __init__(
        self,
        columns: Sequence[str],
        *,
        peaks: Collection[str] = (),
        latency: bool = False,
        interval: float = 1.0,
        max_rows: int = 512,
    ) -> None:
        if interval <= 0 or max_rows < 2:
            raise ValueError("interval must be > 0 and max_rows >= 2")
        self.columns = tuple(columns)
        self._peaks = tuple(i for i, name in enumerate(self.columns) if name in peaks)
        self.interval = interval
        self.max_rows = max_rows
        self._rows: list[list[float]] = []
        self._hists: list[Histogram] | None = [] if latency else None
        #: the bucket (since the crawl's start) of ``_rows[0]``
        self._base = 0

    def _index(self, t: float) -> int:
        """The row of time ``t``, added (and older rows merged) as needed."""
        bucket = int(max(t, 0.0) / self.interval)
        rows = self._rows
        if not rows:
            self._base = bucket
        elif bucket < self._base:
            bucket = self._base  # late news of an earlier moment: the first row
        while bucket - self._base >= self.max_rows:
            self._coarsen()
            bucket = max(int(max(t, 0.0) / self.interval), self._base)
        index = bucket - self._base
        rows = self._rows
        while len(rows) <= index:
            rows.append([0.0] * len(self.columns))
            if self._hists is not None:
                self._hists.append(Histogram())
        return index

    def add(self, t: float, column: int, n: float = 1.0) -> None:
        index = self._index(t)  # first: it may coarsen, replacing self._rows
        self._rows[index][column] += n

    def peak(self, t: float, column: int, value: float) -> None:
        index = self._index(t)
        row = self._rows[index]
        if value > row[column]:
            row[column] = value

    def latency(self, t: float, seconds: float) -> None:
        index = self._index(t)
        if self._hists is not None:
            self._hists[index].add(seconds)

    def _coarsen(self) -> None:
        rows, hists = self._rows, self._hists
        if self._base % 2:
            # keep pairs aligned on the doubled interval: pad one empty row in front
            rows.insert(0, [0.0] * len(self.columns))
            if hists is not None:
                hists.insert(0, Histogram())
            self._base -= 1
        self._base //= 2
        merged: list[list[float]] = []
        merged_hists: list[Histogram] = []
        for i in range(0, len(rows), 2):
            row = rows[i]
            if i + 1 < len(rows):
                other = rows[i + 1]
                row = [a + b for a, b in zip(row, other, strict=True)]
                for c in self._peaks:
                    row[c] = max(rows[i][c], other[c])
            merged.append(row)
            if hists is not None:
                hist = hists[i]
                if i + 1 < len(hists):
                    hist.merge(hists[i + 1])
                merged_hists.append(hist)
        self._rows = merged
        if hists is not None:
            self._hists = merged_hists
        self.interval *= 2

    def __len__(self) -> int:
        return len(self._rows)

    def to_dict(self) -> dict[str, Any]:
        """``{"interval_s", "columns", "rows"}``; each row starts with its start time ``t``."""
        columns = ["t", *self.columns]
        if self._hists is not None:
            columns += ["p50_ms", "p95_ms"]
        rows: list[list[float]] = []
        for i, row in enumerate(self._rows):
            out = [round((self._base + i) * self.interval, 3), *(_compact(v) for v in row)]
            if self._hists is not None:
                hist = self._hists[i]
                out += [round(hist.quantile(0.5) * 1000, 2), round(hist.quantile(0.95) * 1000, 2)]
            rows.append(out)
        return {"interval_s": self.interval, "columns": columns, "rows": rows}


def _compact(value: float) -> float:
    return int(value) if value == int(value) else round(value, 3)
