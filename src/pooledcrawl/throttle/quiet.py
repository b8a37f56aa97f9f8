"""Learning a penalty box's quiet time while shut out.

A penalty box without ``Retry-After`` opens only to a client that kept quiet for
a while: each probe restarts its clock, so probes ever further apart never get
through. :class:`QuietSchedule` now and then stretches the gap to the next probe
to a quiet gap, doubled each time it fails; a probe that gets through after one
teaches the box's quiet time, which later blocks are waited out with at once. A
domain's first block, while nothing is known of its limiter, tries one long gap
early (:data:`_COLD_QUIET`). A window that happened to end during such a gap is
told apart by the block that follows soon after (:meth:`QuietSchedule.doubt`).

Pure: fed the block's events and times, it never sleeps and does no I/O.
"""

from __future__ import annotations

import math

__all__ = ["QuietSchedule"]

#: A block that outlasts probes ever further apart may be a penalty box that only
#: opens after a quiet time: the first quiet gap tried (seconds), doubled each time
#: it fails ...
_QUIET_FIRST = 1.25
#: ... and tried only once the block has lasted this many times the gap, so that a
#: window ending during it is overshot by at most half the block. Which windows end
#: inside a gap depends on this (a 5 s gap spans 10-15 s into the block at 2, 12.5-17.5 s
#: at 2.5); at 2 fewer common windows did in simulation, and a 5 s box opens 2.5 s sooner.
_QUIET_AFTER = 2.0
#: On a domain's first block, once it has outlasted the shortest common window (a
#: second, with a margin) ...
_COLD_AFTER = 1.25
#: ... the first quiet gap tried is this long: the first block decides much of a
#: short crawl (a box of up to this quiet time opens some 6.5 s into it, not 15 s:
#: 82% of a 5 s box's limit in a minute, not 68%). A window that ends during the gap
#: is overshot once, by up to its length: in simulation windows of 2-5 s lost 1-8
#: points of a minute's share; windows of 1, 10 and 60 s under one.
_COLD_QUIET = 5.0
#: ... up to this long: a longer quiet time is found by the probes alone, after ten
#: times it (a gap this long would overshoot a long window's end by as much).
_QUIET_MAX = 10.0
#: A quiet gap is kept this much longer than its nominal length: the server times it
#: from the arrival of the last probe, which may have been later than its send (a
#: loaded event loop), so a gap of exactly a box's round quiet time (5 s) was a coin
#: flip, and a lost one cost the next gap, twice as long.
_QUIET_MARGIN = 1.02


class QuietSchedule:
    """Quiet gaps tried between probes while shut out, and the quiet time learned.

    ``quiet`` is the quiet time a penalty box was learned to need (0.0: none).
    """

    __slots__ = ("_cold", "_doubted", "_due", "_next", "_pending", "_probe_quiet", "_undo", "quiet")

    def __init__(self) -> None:
        self._next = _QUIET_FIRST  # the next quiet gap to try while shut out ...
        self._due = _QUIET_AFTER * _QUIET_FIRST  # ... once the block has lasted this long
        self._cold = True  # no block yet: the first tries a long gap early
        self._pending = False  # the next probe comes after a quiet gap
        self._probe_quiet = False  # the probe in flight came after a quiet gap
        self.quiet = 0.0  # quiet time a penalty box was learned to need; 0: none
        # (cycle start, when, the cycle's time before the block) of the last block a
        # quiet gap ended
        self._undo: tuple[float, float, float] | None = None
        self._doubted = False  # a quiet gap was once taken for a penalty box wrongly

    def start(self, now: float) -> float:
        """A block began at ``now``: the earliest time to probe it.

        A penalty box learned before is waited out at once: probes sooner than its
        quiet time would only keep it shut.
        """
        self._probe_quiet = False
        quiet = self.quiet
        self._pending = bool(quiet)
        if quiet:
            self._plan(2.0 * quiet)
        elif self._cold:
            self._next, self._due = _COLD_QUIET, _COLD_AFTER
        else:
            self._plan(_QUIET_FIRST)
        self._cold = False
        if self._doubted:
            self._next = math.inf
        return now + quiet if quiet else -math.inf

    def _plan(self, gap: float) -> None:
        """The next quiet gap is ``gap``, tried once the block has lasted
        :data:`_QUIET_AFTER` times it."""
        self._next = gap
        self._due = _QUIET_AFTER * gap

    def doubt(self, now: float) -> float | None:
        """A block soon after a quiet gap ended the last one (within the quiet time,
        or twice the time the cycle before took to spend the quota): the pace
        resumed then, under the rate that closed a penalty box, would have held, so
        it was a window's end that fell in the gap, and the new window's quota that
        refuses now. The quiet time is forgotten; returned is the longest that
        window can be (the last cycle, to the probe that got through), else None.

        The new window began with that probe (a fixed window starts with the first
        request after the last one ended), so the cycle under way is measured from
        it, not joined to the one before: joined, the idle end of the gap counted
        as part of the window, and a 12 s window was learned as 28 s, its pace 30%
        low for good."""
        undo = self._undo
        self._undo = None
        if undo is None or now - undo[1] > max(self.quiet, 2.0 * undo[2]):
            return None
        start, at, _active = undo
        self.quiet = 0.0
        self._doubted = True  # and quiet gaps, which a window ends in, are not tried again
        return at - start

    def next_gap(self, elapsed: float, gap: float, told: bool) -> float:
        """Seconds from this probe to the next, ``elapsed`` into a block: ``gap`` as
        the probes ever further apart have it, or once the block has lasted long
        enough (see :meth:`_plan`), the next quiet gap instead (never when the
        server ``told`` how long the block lasts)."""
        self._probe_quiet = self._pending
        self._pending = False
        quiet = self._next
        if not told and elapsed >= self._due and gap < quiet <= _QUIET_MAX:
            self._plan(2.0 * quiet)
            self._pending = True
            return _QUIET_MARGIN * quiet
        return gap

    def learn(
        self, sent_at: float, told: bool, probes_refused: int, last_refused_probe: float
    ) -> bool:
        """Whether the probe that ended a block came after a quiet gap that the probes
        before it, refused, had not kept (or after the quiet time learned before):
        then the block was a penalty box, and the gap (an upper bound on its quiet
        time) is remembered."""
        if not self._probe_quiet or told:
            if probes_refused and not told:
                # refused, then let through after a short gap: a window that ended,
                # whatever an earlier quiet gap seemed to teach
                self.quiet = 0.0
            return False
        if probes_refused:
            self.quiet = sent_at - last_refused_probe
        return bool(self.quiet)  # else a quiet time learned before has held

    def may_undo(self, start: float, now: float, active: float) -> None:
        """A quiet time was learned just now, from a block that ended a cycle begun at
        ``start``, ``active`` seconds long: the next block may show it was a
        window's end instead (see :meth:`doubt`)."""
        self._undo = (start, now, active)
