"""Per-second stats rows of one slot's controller, for ``stats()`` and the docs' figures."""

from __future__ import annotations

from collections import deque

__all__ = ["TIMELINE_ROWS", "Row", "Timeline"]

TOO_MANY_REQUESTS = 429

#: Timeline rows kept per domain (one per second); older rows are dropped.
TIMELINE_ROWS = 3600
#: Seconds of silence filled with empty timeline rows; a longer gap just skips ahead.
_TIMELINE_GAP_FILL = 300

Row = list[float | int | None]
"""``[second, in-flight cap, rate or None, successes, 429s]``."""


class Timeline:
    """Successes and 429s per second since the slot's first event, with the cap and
    rate at the end of each second: bounded, so a long crawl keeps the last hour."""

    __slots__ = ("_n429", "_ok", "_rows", "_second")

    def __init__(self) -> None:
        self._second = 0
        self._ok = 0
        self._n429 = 0
        self._rows: deque[Row] = deque(maxlen=TIMELINE_ROWS)

    def record(self, second: int, status: int, limit: int, rate: float | None) -> None:
        """Count a response answered in ``second``; ``limit`` and ``rate`` (the
        controller's now) close the rows of the seconds before, if it is a new one."""
        if second != self._second:
            self._flush(second, limit, rate)
        if status == TOO_MANY_REQUESTS:
            self._n429 += 1
        elif 200 <= status < 400:
            self._ok += 1

    def _flush(self, second: int, limit: int, rate: float | None) -> None:
        rows = self._rows
        rows.append([self._second, limit, rate, self._ok, self._n429])
        self._ok = self._n429 = 0
        gap = second - self._second - 1
        if 0 < gap <= _TIMELINE_GAP_FILL:
            for missing in range(self._second + 1, second):
                rows.append([missing, limit, rate, 0, 0])
        self._second = second

    def rows(self, limit: int, rate: float | None) -> list[Row]:
        """Every row kept, the second under way too if it saw a response."""
        rows = list(self._rows)
        if self._ok or self._n429:
            rows.append([self._second, limit, rate, self._ok, self._n429])
        return rows
