"""How big a step up the pace takes, given how long it has been clean.

Why: the rate where refusals began is set early, often by refusals of a cold
start's bunched sends (nginx ``limit_req`` without a burst refuses any two that
arrive together, whatever the rate). Probing by a fixed 1% of that rate per
step then takes minutes to find a limit twice as high. A pace that has stayed
clean step after step is evidence the limit is further up, so each clean step
is bigger than the last (as TCP's BIC and CUBIC probe past the last loss), up
to four times the usual step. A cut starts over at the usual step; a refusal
now and then that causes none (a gap-judging server's jitter) does not.

Only for limiters that answer an overshoot at once (a leaky or token bucket):
a window limiter tells only at its window's end, and each overshoot buys a
block, so the controller does not boost its steps there.

Pure: a counter and a formula, no clock.
"""

from __future__ import annotations

__all__ = ["CleanRun"]

#: Clean steps in a row taken at the usual size, before the steps start to grow.
_BOOST_AFTER = 5
#: The largest step, as a multiple of the usual one.
_BOOST_MAX = 4.0


class CleanRun:
    """Counts the steps up since the last cut, and scales the next step."""

    __slots__ = ("steps",)

    def __init__(self) -> None:
        self.steps = 0

    def reset(self) -> None:
        """A cut (or a block): the next step is the usual one."""
        self.steps = 0

    def step(self) -> float:
        """Count one clean step and return its size, as a multiple of the usual
        step: 1 for the first :data:`_BOOST_AFTER`, then twice the one before,
        up to :data:`_BOOST_MAX` (a limit twice as high is found in about twenty
        steps instead of a hundred)."""
        self.steps += 1
        over = self.steps - _BOOST_AFTER
        if over <= 0:
            return 1.0
        return _BOOST_MAX if over >= 2 else float(2**over)
