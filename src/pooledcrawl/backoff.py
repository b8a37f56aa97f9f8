"""Backoff delays: the one formula every retry and reconnect loop in pooledcrawl uses.

Pure: nothing here sleeps; the caller waits (or, for retries, schedules) the delay.
"""

from __future__ import annotations

import random

import tenacity

__all__ = ["Doubling", "full_jitter"]


def full_jitter(retry: int, base: float, cap: float, rng: random.Random) -> float:
    """The delay before retry number ``retry`` (1-based): ``uniform(0, min(cap, base *
    2 ** (retry - 1)))``.

    This is "full jitter" (M. Brooker, "Exponential Backoff And Jitter", AWS
    Architecture Blog, 2015): clients that failed together spread their retries over
    the whole interval instead of retrying in step. The ceiling is tenacity's
    ``wait_exponential`` (overflow-safe for any retry count); the draw takes the
    caller's ``rng``, where tenacity's ``wait_random_exponential`` would use the
    global one, so tests can replay it.
    """
    attempt = tenacity.RetryCallState(None, None, (), {})  # type: ignore[arg-type]
    attempt.attempt_number = max(retry, 1)
    ceiling = tenacity.wait_exponential(multiplier=base, max=cap)(attempt)
    return rng.uniform(0.0, ceiling)


class Doubling:
    """A reconnect loop's wait: ``first`` after the first failure, then twice the last
    wait, up to ``cap``; :meth:`reset` after a success. Deterministic, unlike
    :func:`full_jitter`."""

    __slots__ = ("_cap", "_first", "delay")

    def __init__(self, first: float = 0.1, cap: float = 5.0) -> None:
        self._first = first
        self._cap = cap
        self.delay = first
        """The wait the next failure returns."""

    def failed(self) -> float:
        """The wait after this failure; the next one waits twice as long."""
        delay = self.delay
        self.delay = min(delay * 2, self._cap)
        return delay

    def reset(self) -> None:
        self.delay = self._first
