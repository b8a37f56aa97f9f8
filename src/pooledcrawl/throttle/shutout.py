"""Being shut out: single probes while a limiter refuses everything, and what the
block they end teaches.

When requests sent after a cut, at the lower rate, are refused too (or a
``Retry-After`` says so), the server has not asked for a slower pace but shut the
door: a window's quota is spent, or a penalty box is closed. :class:`ShutOut`
schedules single probes, ever further apart (now and then after a quiet gap, see
:class:`~pooledcrawl.throttle.quiet.QuietSchedule`), until one gets through; the
cycle that closes gives the limiter away, and :meth:`ShutOut.end` says at what
pace to resume and how rarely to step up after.

Pure: fed the block's events and a clock, it never sleeps and does no I/O.
"""

from __future__ import annotations

from typing import NamedTuple

from pooledcrawl.throttle.quiet import QuietSchedule
from pooledcrawl.throttle.window import SHORTEST_WINDOW, WindowLearner

__all__ = ["Resume", "ShutOut"]

#: While shut out, the next probe waits this share of the time shut out so far (so
#: a block of B seconds is overshot by at most this share of B) ...
_PROBE_GROWTH = 0.1
#: ... and at least this long.
_FIRST_PROBE = 0.1
#: Seconds a later Retry-After must move the block's end to mean a penalty box
#: (Retry-After has a resolution of a second).
_MOVED_END = 1.5
#: Steps up of the pace are at least this many times the last block's length apart.
_BLOCK_COST = 5.0
#: After a block, the pace resumes at no less than this share of the last rate that
#: was clean before it.
_RESUME = 0.9
#: After a block the server set at a second at most, the pace first tried is this
#: share of what got through before it (after a longer one, :data:`_RESUME`).
_TOLD_RESUME = 0.95
#: Steps up of the pace after a penalty box are at least this many times its quiet
#: time apart.
_BOX_COST = 20.0


class Resume(NamedTuple):
    """How the pace resumes after a block."""

    rate: float
    """The pace to resume at (before the controller's floor)."""
    windowed: bool
    """The block was a spent window (or one the server set the length of), not
    congestion that the first probe outlasted: the rate is the new ceiling."""
    quiet: bool
    """The block was a penalty box's quiet time, learned just now or before."""
    gate: float | None
    """Seconds between steps up of the pace from now on; None: unchanged."""


class ShutOut:
    """The block under way (``since`` is None when there is none) and the probes
    sent into it. ``told_end`` outlives a block: a later ``Retry-After`` is
    compared with the last one the server gave."""

    __slots__ = (
        "last_refused_probe",
        "misread",
        "probe_at",
        "probes_refused",
        "quiet",
        "quiet_box",
        "since",
        "told",
        "told_end",
    )

    def __init__(self) -> None:
        self.since: float | None = None
        self.probe_at = 0.0
        self.probes_refused = 0
        self.last_refused_probe = 0.0  # when the last refused probe was sent
        self.told = False  # the server said how long (Retry-After)
        self.told_end = 0.0  # when its first Retry-After said the block ends
        self.quiet_box = False  # later Retry-Afters moved that end back
        self.quiet = QuietSchedule()  # a penalty box that waits for quiet
        self.misread = False  # this block showed a penalty box learned was a window

    def begin(self, now: float, paused_until: float, windows: WindowLearner) -> None:
        """Stop sending but for single probes, until one gets through."""
        self.since = now
        self.probe_at = max(now + _FIRST_PROBE, paused_until)
        self.probes_refused = 0
        self.last_refused_probe = now
        self.told = False
        self.quiet_box = False
        longest = self.quiet.doubt(now)
        self.misread = longest is not None
        if longest is not None:
            windows.learn(longest)  # a window, then, and no longer than that
        self.probe_at = max(self.probe_at, self.quiet.start(now))

    def told_until(self, end: float) -> None:
        """The server said the block it began ends at ``end`` (``Retry-After``)."""
        self.told = True
        self.told_end = end

    def retry_after(self, end: float) -> None:
        """A refusal while blocked said to retry at ``end``."""
        if end > self.told_end + _MOVED_END:
            # each refusal pushes the end back: the server waits for quiet (a
            # penalty box), so the block's length says nothing of its window
            self.quiet_box = True

    def refused(self, sent_at: float, paused_until: float) -> None:
        """A request sent at ``sent_at`` was refused while blocked."""
        assert self.since is not None
        if sent_at >= self.since:
            self.probes_refused += 1
            self.last_refused_probe = max(self.last_refused_probe, sent_at)
        if paused_until > self.probe_at:
            self.probe_at = paused_until

    def probe_sent(self, now: float) -> None:
        """A probe went at ``now``: the next waits :meth:`_probe_gap`."""
        assert self.since is not None
        self.probe_at = now + self._probe_gap(now, self.since)

    def _probe_gap(self, now: float, blocked: float) -> float:
        """Seconds from this probe to the next while shut out.

        Probes ever further apart (a share of the time shut out so far) find the end
        of a spent window closely. A penalty box that waits for quiet never opens to
        them: each probe restarts its clock. So once the block has lasted a few
        times the next quiet gap, that gap is kept instead, doubled each time it
        fails; a probe that gets through after one teaches the box's quiet time
        (see :class:`~pooledcrawl.throttle.quiet.QuietSchedule`).
        """
        elapsed = now - blocked
        gap = max(_FIRST_PROBE, _PROBE_GROWTH * elapsed)
        return self.quiet.next_gap(elapsed, gap, self.told)

    def end(
        self,
        now: float,
        sent_at: float,
        windows: WindowLearner,
        *,
        min_window: float,
        t0: float | None,
        clean_rate: float,
    ) -> Resume:
        """A probe sent at ``sent_at`` got through: the block is over, and the cycle
        it closes (from the end of the last block to this one) shows the rate the
        server sustains. ``clean_rate`` is the pace that was clean until the last
        step up (0.0: none), ``t0`` when the slot's first event came.

        For a window limiter the cycle is one window (its start to the moment the
        refusals stopped), so its successes over its length are the quota over the
        window; over a shorter span they would only show how fast a burst went.
        """
        blocked = self.since
        assert blocked is not None
        start = windows.cycle_start if windows.cycle_start is not None else blocked
        # the block ended between the last refused probe and this one (or when the
        # server said it would)
        end = sent_at
        if not self.told:
            end = 0.5 * (sent_at + min(self.last_refused_probe, sent_at))
        cycle = max(end - start, min_window)
        estimate = windows.cycle_ok / cycle
        quiet = self.quiet.learn(sent_at, self.told, self.probes_refused, self.last_refused_probe)
        if quiet:
            self.quiet_box = True
            if self.probes_refused:  # learned just now: the next block may undo it
                active = blocked - start
                self.quiet.may_undo(start, now, active)
        if self.quiet_box or (self.told and not windows.window):
            # The server set the block's length: for a window that is the rest of
            # it, but for a penalty box only how long to keep quiet. So the first
            # time, what got through before it over at least a second (the
            # shortest common window) is tried too; a window will refuse it, and
            # its next block, measured from a cycle of its own, will tell.
            active = max(blocked - start, SHORTEST_WINDOW)
            estimate = max(estimate, self._told_share() * windows.cycle_ok / active)
            if self.told:
                estimate = max(estimate, self._told_recent(windows))
            if quiet:
                estimate = self._quiet_resume(estimate, windows, min_window, t0)
        # A block the first probe ended was congestion (a bucket refilling), not a
        # spent window: its estimate is only a floor to grow from.
        windowed = self.probes_refused > 0 or self.told
        if not windowed and cycle < windows.window:
            # A cycle shorter than the window learned is that window's tail (a moving
            # window frees its entries one by one as they age), no measure of a rate:
            # what the last window let through is (one success over the tail's tenth
            # of a second held a 3 s window at 4/s for good).
            estimate = max(estimate, windows.last_quota(blocked))
        gate: float | None = None
        if quiet:
            # the block was the quiet time, not a window: overshooting again costs it
            gate = max(windows.window, _BOX_COST * self.quiet.quiet)
        elif windowed:
            windows.learn(cycle)
            # Step up only as often as a block costs: each step that overshoots
            # buys a block, so a long one (a penalty box) makes probing rare.
            gate = max(windows.window, _BLOCK_COST * (sent_at - blocked))
            if self.told:
                gate = self._told_gate(sent_at, windows)
            # what the last window before the block let through: a window
            # limiter's quota, without the block's own idle time in it
            estimate = max(estimate, windows.last_quota(blocked))
        if self.misread and gate is None:
            # The box's gate (20 quiet times) is no window's, nor is the window just
            # learned, an upper bound, a measure of how rarely to step up: left as
            # either, a 2 s sliding-window counter held 72% of its limit for good.
            gate = _BLOCK_COST * (sent_at - blocked)
        rate = estimate
        if clean_rate:
            # A pace that was clean until the last step up is worth resuming near
            # (a penalty box's block says nothing of the rate, only of the quiet),
            # unless the server has just taken far less: a spent burst allowance.
            # Only as far as the cycle ever got through in a second, though: a pace
            # is clean, too, when the client never reached it (short of CPU in
            # its cold start, it was "clean" at 480/s against a 100/s box).
            reached = windows.peak(start, blocked + 1.0)
            resume = _RESUME * min(clean_rate, reached) if reached else _RESUME * clean_rate
            if not windowed:
                resume = min(resume, windows.ok_between(blocked - 1.0, blocked) / 1.0)
            rate = max(rate, resume)
        # (not from a misread box's cycle: the pace resumed after it was a burst)
        windows.learn_hi(blocked, start, windowed and not quiet and not self.misread)
        self.since = None
        windows.new_cycle(sent_at)
        return Resume(rate, windowed, quiet, gate)

    def _told_gate(self, sent_at: float, windows: WindowLearner) -> float:
        """Seconds between steps up after a block the server set the length of: a
        step that overshoots costs that whole length again (a penalty box's quiet
        time), and a step of a percent near the limit overshoots as often as not."""
        assert self.since is not None
        return max(windows.window, _BOX_COST * (sent_at - self.since))

    def _told_recent(self, windows: WindowLearner) -> float:
        """What got through over the span a ``Retry-After`` gave, just before it: a
        window that a slow client spent only after many cycles was about that
        long, not as long as the cycle."""
        blocked = self.since
        assert blocked is not None
        span = max(self.told_end - blocked, SHORTEST_WINDOW)
        return self._told_share() * windows.ok_between(blocked - span, blocked) / span

    def _told_share(self) -> float:
        """The share of what got through that the pace resumes at after a block the
        server set the length of: the dearer an overshoot (a penalty box's seconds of
        quiet), the wider the margin. A real client's sends bunch: a 95% pace was
        seen to close a 100/s box."""
        assert self.since is not None
        told = self.told_end - self.since
        return _TOLD_RESUME if told <= SHORTEST_WINDOW else _RESUME

    def _quiet_resume(
        self, estimate: float, windows: WindowLearner, min_window: float, t0: float | None
    ) -> float:
        """A penalty box closed on the last second's rate: resume under it, not at
        the cycle's average (a box may close on a rate it let through before)."""
        blocked = self.since
        assert blocked is not None
        start = windows.cycle_start if windows.cycle_start is not None else blocked
        # over the last second at most (a box that closed at once on a pace just
        # resumed says that pace was too fast), and answered within a second of
        # the box closing: in flight when it did
        span = min(max(blocked - start, min_window), 1.0)
        if t0 is None or start <= t0:
            # The cold start: its first answers come after the box closed, and it
            # ramps up, so its average over the cycle is no measure; what the box
            # let through in its fastest second is (counting what was in flight).
            peak = _RESUME * windows.peak(start, blocked + 1.0)
            return peak if peak > 0 else estimate
        last = _RESUME * windows.ok_between(blocked - span, blocked + 1.0) / span
        return min(estimate, last) if last > 0 else estimate
