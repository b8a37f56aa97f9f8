"""Telling a limiter that judges the gap between requests from one that judges the rate.

A leaky bucket without a burst (nginx ``limit_req`` without ``burst``) refuses a
request that comes closer than 1/rate after the one before, at any average rate.
A pacer's catch-up after a late wake-up does just that. :class:`SpacingDetector`
remembers which sends came close to the one before and which refusals fell on
them; the controller asks it whether refusals single the close ones out, and from
then on keeps every send a full interval from the one before.

Pure: fed send times and refusals, it never sleeps and does no I/O.
"""

from __future__ import annotations

import bisect
from collections import deque

__all__ = ["SpacingDetector"]

#: Sends this close to the one before are a bunch (one event-loop turn's worth).
_BUNCH_GAP = 0.0005
#: Bunched sends remembered, to tell whether a refused request was one of them.
_EARLY_KEPT = 256
#: Spacing (a leaky bucket without a burst, nginx ``limit_req`` without ``burst``):
#: refusals of bunched sends (a pacer's catch-up), at least this many and this many
#: times as common among refusals as bunched sends are among sends, mean the server
#: judges the gap to the last request, not the rate: from then on every send keeps
#: a full 1/rate from the one before, and catch-ups stop.
_SPACED_REFUSALS = 6
_SPACED_BIAS = 5.0
_SPACED_FAR = 50
_SPACED_FLOOR = 0.01
#: Weaker evidence (see SpacingDetector.favours_close): this many refusals of close
#: sends, this many times as common among them as among the others.
_LEANING_REFUSALS = 2
_LEANING_BIAS = 2.0
#: A send this share of an interval after the one before, or less, is close.
_CLOSE = 0.99
#: A spaced send goes this share of an interval early at most, to make up for an
#: event loop that is late as a rule.
_LATE_SHARE = 0.5


class SpacingDetector:
    """What the sends' gaps and the refusals among them say of a gap-judging server.

    ``spaced`` is set by the controller once :meth:`judges_gaps` says so; ``late``
    is how late spaced sends usually go (an EWMA, in seconds), which the pacer
    sends early by.
    """

    __slots__ = (
        "_close",
        "_close_sends",
        "_early",
        "_paced_sends",
        "_refused_close",
        "_refused_far",
        "late",
        "spaced",
    )

    def __init__(self) -> None:
        self.spaced = False
        self.late = 0.0
        self._paced_sends = 0  # sends while paced and not spaced ...
        self._close_sends = 0  # ... of them closer than 1/rate to the one before
        self._refused_far = 0  # refusals of the others ...
        self._refused_close = 0  # ... and of the close ones
        self._close: deque[float] = deque(maxlen=_EARLY_KEPT)  # close send times
        self._early: deque[float] = deque(maxlen=_EARLY_KEPT)  # bunched send times

    def on_send(self, now: float, last_send: float, rate: float, paced: bool) -> None:
        """A send at ``now``, ``last_send`` the one before, at a pace of ``rate``
        (0.0 for none); ``paced`` once a rate has been learned."""
        # bunched: sent right after the one before (a catch-up, or a burst of links)
        bunched = now - last_send < (0.5 / rate if rate else _BUNCH_GAP)
        if bunched:
            self._early.append(now)
        if self.spaced and rate:
            interval = 1.0 / rate
            late = now - (last_send + interval - self.late)
            if 0.0 <= late < interval:  # later than that: the slot had no work
                late = min(late, _LATE_SHARE * interval)
                self.late += 0.05 * (late - self.late)
        elif paced:
            self._paced_sends += 1
            if rate and now - last_send < _CLOSE / rate:
                self._close_sends += 1
                self._close.append(now)

    def was_bunched(self, sent_at: float) -> bool:
        """Whether the request sent at ``sent_at`` came right after another."""
        early = self._early
        i = bisect.bisect_left(early, sent_at - 1e-6)
        return i < len(early) and early[i] <= sent_at + 1e-6

    def favours_close(self) -> bool:
        """Whether refusals so far fell on close sends more than on the others
        (at least :data:`_LEANING_REFUSALS` of them, :data:`_LEANING_BIAS` times
        as often): weaker evidence than :meth:`judges_gaps`, enough to take a lone
        refusal a little above the rate where refusals began for spacing. A bucket
        with a burst mostly refuses close and far sends alike (near empty, a close
        send finds less refilled, so it can lean too: weak evidence, and only
        asked near the limit)."""
        refused = self._refused_close
        if refused < _LEANING_REFUSALS:
            return False
        far = self._paced_sends - self._close_sends
        close_share = refused / max(self._close_sends, 1)
        far_share = self._refused_far / max(far, 1)
        return close_share >= _LEANING_BIAS * far_share

    def judges_gaps(self, sent_at: float) -> bool:
        """Count a refusal of the request sent at ``sent_at`` (paced, not yet
        spaced), and say whether refusals single out sends that came closer than
        the pace to the one before (see :data:`_SPACED_REFUSALS`). A window
        limiter's refusals fall on every send alike once its quota is spent, and a
        token bucket's on every send while it is empty."""
        close = self._close
        i = bisect.bisect_left(close, sent_at - 1e-6)
        if i < len(close) and close[i] <= sent_at + 1e-6:
            self._refused_close += 1
        else:
            self._refused_far += 1
        refused = self._refused_close
        if refused < _SPACED_REFUSALS:
            return False
        far = self._paced_sends - self._close_sends
        if far < _SPACED_FAR:
            return False  # too few to tell how often the others are refused
        close_share = refused / max(self._close_sends, 1)
        far_share = self._refused_far / far
        return close_share >= max(_SPACED_BIAS * far_share, _SPACED_FLOOR)
