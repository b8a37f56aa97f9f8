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

    __slots__ = ("_n429", "_ok", "_rows", "second")

    def __init__(self) -> None:
        self.second = 0  # the second under way, counted from the slot's first event
        self._ok = 0
        self._n429 = 0
        self._rows: deque[Row] = deque(maxlen=TIMELINE_ROWS)

    def count(self, status: int) -> None:
        """Count a response answered in the current second (see :meth:`flush`)."""
        if status == TOO_MANY_REQUESTS:
            self._n429 += 1
        elif 200 <= status < 400:
            self._ok += 1

    def flush(self, second: int, limit: int, rate: float | None) -> None:
        """``second`` has begun: close the rows of the seconds before it, with the
        controller's ``limit`` and ``rate`` now."""
        rows = self._rows
        rows.append([self.second, limit, rate, self._ok, self._n429])
        self._ok = self._n429 = 0
        gap = second - self.second - 1
        if 0 < gap <= _TIMELINE_GAP_FILL:
            for missing in range(self.second + 1, second):
                rows.append([missing, limit, rate, 0, 0])
        self.second = second

    def rows(self, limit: int, rate: float | None) -> list[Row]:
        """Every row kept, the second under way too if it saw a response."""
        rows = list(self._rows)
        if self._ok or self._n429:
            rows.append([self.second, limit, rate, self._ok, self._n429])
        return rows
