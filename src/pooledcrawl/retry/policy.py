"""Retry policy: what is retried, and after how long. Pure; the engine does the waiting.

Backoff is exponential with full jitter (:func:`pooledcrawl.backoff.full_jitter`). A retry never
sleeps in place: the engine puts the request back in the frontier with a
not-before time, so it holds no slot, connection or proxy while it waits.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

from pooledcrawl.backoff import full_jitter
from pooledcrawl.http.request import Request
from pooledcrawl.settings import Settings

__all__ = ["RetryDecision", "RetryPolicy"]

TOO_MANY_REQUESTS = 429


@dataclass(frozen=True, slots=True)
class RetryDecision:
    delay: float
    """Seconds until the next attempt."""
    counts: bool
    """Whether this retry uses up the request's retry budget."""


class RetryPolicy:
    def __init__(
        self,
        *,
        max_retries: int,
        backoff_base: float,
        backoff_cap: float,
        retry_after_cap: float,
        retry_statuses: frozenset[int],
        rng: random.Random | None = None,
    ) -> None:
        self.max_retries = max_retries
        self.retry_statuses = retry_statuses
        self.retry_after_cap = retry_after_cap
        self._backoff_base = backoff_base
        self._backoff_cap = backoff_cap
        self._rng = rng or random.Random()

    @classmethod
    def from_settings(cls, settings: Settings) -> RetryPolicy:
        return cls(
            max_retries=settings.max_retries,
            backoff_base=settings.retry_backoff_base,
            backoff_cap=settings.retry_backoff_cap,
            retry_after_cap=settings.retry_after_cap,
            retry_statuses=frozenset(settings.retry_http_codes),
        )

    def backoff(self, attempt: int) -> float:
        """Full-jitter exponential delay before retry number ``attempt`` (1-based)."""
        return full_jitter(attempt, self._backoff_base, self._backoff_cap, self._rng)

    def _budget(self, request: Request) -> int:
        override = request.get_meta("max_retries")
        if override is None:
            return self.max_retries
        try:
            return max(int(override), 0)
        except (TypeError, ValueError):
            # A bad meta value is the spider's bug; it must not kill a worker.
            return self.max_retries

    def for_status(
        self, request: Request, status: int, retry_after: float | None
    ) -> RetryDecision | None:
        """Whether to retry a response with this status; None to hand it to the spider."""
        if status not in self.retry_statuses or request.get_meta("dont_retry"):
            return None
        if status == TOO_MANY_REQUESTS:
            # No request is lost to a 429: pacing is the controller's job, not the budget's.
            return RetryDecision(self._delay(request, retry_after), counts=False)
        if request.retries >= self._budget(request):
            return None
        return RetryDecision(self._delay(request, retry_after), counts=True)

    def for_error(
        self, request: Request, retryable: bool, *, free: bool = False
    ) -> RetryDecision | None:
        """Whether to retry after a transport error; ``free`` retries skip the budget."""
        if not retryable or request.get_meta("dont_retry"):
            return None
        if free:
            return RetryDecision(0.0, counts=False)
        if request.retries >= self._budget(request):
            return None
        return RetryDecision(self._delay(request, None), counts=True)

    def _delay(self, request: Request, retry_after: float | None) -> float:
        if retry_after is not None:
            return min(retry_after, self.retry_after_cap)
        # ``attempts`` counts the failures before this one: this is retry attempts + 1.
        return self.backoff(request.attempts + 1)
