"""Server rate hints, as the throttle uses them: the rate a server allows, and
whether it asks for a pause. Pure.

The headers are read by :mod:`pooledcrawl.http.ratelimit_headers` (``Retry-After``,
``RateLimit``/``RateLimit-Policy`` and ``X-RateLimit-*``); the controller only needs
a rate, so everything is reduced to a :class:`RateHint`.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass

from pooledcrawl.http.ratelimit_headers import (
    parse_ratelimit,
    parse_retry_after,
    retry_after_from_headers,
)

__all__ = [
    "RateHint",
    "parse_rate_hints",
    "parse_retry_after",
    "retry_after_from_headers",
]


@dataclass(frozen=True, slots=True)
class RateHint:
    """What the server said about its limit; any part may be unknown (None)."""

    quota: float | None = None
    """Requests allowed per ``window``."""
    window: float | None = None
    """Length of the quota window, in seconds."""
    remaining: float | None = None
    """Requests left before the window resets."""
    reset: float | None = None
    """Seconds until the window resets (and ``remaining`` is back to ``quota``)."""

    @property
    def rate(self) -> float | None:
        """Requests per second the server allows from now on; None if it did not say.

        What is left spread over the time left, when both are known: that uses a
        fixed window exactly. Otherwise the policy's quota over its window.
        """
        if self.remaining is not None and self.reset is not None and self.reset > 0:
            return self.remaining / self.reset
        if self.quota is not None and self.window:
            return self.quota / self.window
        return None

    @property
    def exhausted(self) -> bool:
        """Nothing left until the reset: the domain must pause for ``reset`` seconds."""
        return self.remaining is not None and self.remaining < 1 and bool(self.reset)


def parse_rate_hints(
    headers: Mapping[str, str], now_epoch: float | Callable[[], float]
) -> tuple[RateHint | None, int]:
    """``(hint, malformed)``: the server's rate-limit hint, and how many of its
    rate-limit fields could not be understood (those are ignored).

    ``now_epoch`` (wall-clock time, or a function giving it) is only read for a
    Unix-time ``X-RateLimit-Reset``.
    """
    fields, bad = parse_ratelimit(headers, now_epoch)
    return (None if fields is None else RateHint(*fields)), bad
