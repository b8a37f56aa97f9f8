"""What the blocks of a window limiter teach: its window, and the quota over it.

A window limiter (a fixed or moving window, a counter of refused requests too)
lets a quota through and then shuts the client out until its window ends. The
cycle from the end of one block to the end of the next is about one window, and
what got through in it is the quota. :class:`WindowLearner` keeps the successes
(per slot of a tenth of a second, two minutes back, and those of the cycle under
way) and the window and short-window quota learned from them.

Pure: fed successes and block times, it never sleeps and does no I/O.
"""

from __future__ import annotations

from collections import deque

__all__ = ["SHORTEST_WINDOW", "WindowLearner"]

#: Window assumed when a block says nothing of the limiter's window.
SHORTEST_WINDOW = 1.0
#: Successes are counted in slots of this many seconds, as far back as the longest
#: window worth learning (two minutes).
_HIST_STEP = 0.1
_HIST_SLOTS = 1200
#: The pace after a block is at most this share of the last window's quota.
_WINDOW_MARGIN = 0.97


class WindowLearner:
    """Successes over time, the cycle since the last block, and what they teach.

    ``window`` is the shortest cycle seen, about the limiter's window (0.0: none);
    ``hi`` a short window's quota over a second (0.0: none).
    """

    __slots__ = ("_hist", "cycle_ok", "cycle_start", "hi", "window")

    def __init__(self) -> None:
        self.cycle_start: float | None = None  # first send since the last block ended
        self.cycle_ok = 0  # successes of requests sent since then
        self.window = 0.0  # shortest cycle seen: about the limiter's window
        self.hi = 0.0  # a short window's quota over a second; 0: none
        self._hist: deque[list[int]] = deque(maxlen=_HIST_SLOTS)  # [slot, successes]

    def on_success(self, now: float, sent_at: float) -> None:
        """A request sent at ``sent_at`` got through at ``now`` (outside a block)."""
        start = self.cycle_start
        if start is not None and sent_at >= start:
            self.cycle_ok += 1
        slot = int(now / _HIST_STEP)
        hist = self._hist
        if hist and hist[-1][0] == slot:
            hist[-1][1] += 1
        else:
            hist.append([slot, 1])

    def ok_between(self, start: float, end: float) -> int:
        """Successes answered between two times (to :data:`_HIST_STEP`)."""
        first, last = int(start / _HIST_STEP), int(end / _HIST_STEP)
        return sum(n for slot, n in self._hist if first <= slot < last)

    def peak(self, start: float, end: float, span: float = SHORTEST_WINDOW) -> int:
        """Most successes answered in any ``span`` seconds between two times: what
        the server let through at its fastest, whatever the pace said (a client
        short of CPU does not reach a pace it was given, and a cold start ramps up,
        so neither a pace nor an average over the cycle is what got through)."""
        first, last = int(start / _HIST_STEP), int(end / _HIST_STEP)
        width = max(1, round(span / _HIST_STEP))
        best = total = 0
        spanned: deque[tuple[int, int]] = deque()
        for slot, n in self._hist:
            if not first <= slot < last:
                continue
            spanned.append((slot, n))
            total += n
            while spanned[0][0] <= slot - width:
                total -= spanned.popleft()[1]
            if total > best:
                best = total
        return best

    def new_cycle(self, sent_at: float) -> None:
        """A block ended with the probe sent at ``sent_at``, which got through."""
        self.cycle_start = sent_at
        self.cycle_ok = 1

    def learn(self, cycle: float) -> None:
        """A block ended a cycle ``cycle`` seconds long: the window is no longer."""
        self.window = cycle if not self.window else min(self.window, cycle)

    def last_quota(self, blocked: float) -> float:
        """What the last window before the block at ``blocked`` let through per
        second, under a margin: a window limiter's quota, without the block's own
        idle time in it. 0.0 for a window too short to count in slots."""
        window = self.window
        if window < _HIST_STEP * 4:
            return 0.0
        recent = self.ok_between(blocked - window, blocked)
        return _WINDOW_MARGIN * recent / window

    def learn_hi(self, blocked: float, start: float, windowed: bool) -> None:
        """After the block of a window of a second or two, the quota over a second.

        Such a window is learned only roughly: probes a tenth of a second apart
        stretch it, and so do refusals that count against the limit, or a
        ``Retry-After`` in whole seconds. Its block is cheap, so the pace climbs back
        towards what got through in the window's first second (no window is
        shorter), and a block on the way marks the top.
        """
        window = self.window
        if not windowed or not window or window > 2.0 * SHORTEST_WINDOW:
            return
        active = max(blocked - start, SHORTEST_WINDOW)
        hi = _WINDOW_MARGIN * self.cycle_ok / active
        self.hi = hi if not self.hi else min(self.hi, hi)

    def refused(self, rate: float) -> None:
        """A block began at a pace of ``rate``: what was let through has just been
        refused, so the short window's quota is no higher."""
        if self.hi > rate:
            self.hi = rate

    def toward_hi(self, rate: float) -> float:
        """The pace half way from ``rate`` to :meth:`learn_hi`'s quota, if it is
        higher; else 0.0."""
        hi = self.hi
        return rate + 0.5 * (hi - rate) if hi > rate else 0.0
