"""Tuning of the adaptive controller (:class:`~pooledcrawl.throttle.adaptive.AdaptivePolicy`).

Kept apart from the controller so that settings and profiles can build it without
the controller's machinery; ``pooledcrawl.throttle.adaptive`` re-exports it.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["AdaptiveConfig"]


@dataclass(frozen=True, slots=True)
class AdaptiveConfig:
    """Tuning of :class:`AdaptivePolicy`. The defaults suit token-bucket limiters."""

    start: int = 8
    """In-flight cap at the start."""
    max: int = 64
    """In-flight cap never exceeded (profile max, ``limit_per_host``)."""
    slow_start: float = 2.0
    """Concurrency growth factor per window until the first 429."""
    probe: float = 0.01
    """Additive rate step per clean window after it, as a share of the rate at the last cut."""
    backoff: float = 0.9
    """On a 429 the rate becomes this share of what the server accepted since the last cut."""
    headroom: float = 1.3
    """In-flight cap = rate x latency x headroom, so a latency spike does not stall the pacer."""
    retry_after_cap: float = 120.0
    """Longest pause a server hint may impose, in seconds."""
    retry_after_jitter: float = 0.1
    """Extra pause after a hint, up to this share of it (at most 1 s), so clients drift apart."""
    min_window: float = 0.05
    """Shortest control window, in seconds (loopback round trips are far shorter)."""
    burst: float = 2.0
    """Requests the pacer lets through at once to catch up after a late wake-up."""

    def __post_init__(self) -> None:
        if self.start < 1 or self.max < 1:
            raise ValueError("start and max must be >= 1")
        if self.slow_start <= 1.0:
            raise ValueError("slow_start must be > 1")
        if not 0.0 < self.probe < 1.0:
            raise ValueError("probe must be in (0, 1)")
        if not 0.0 < self.backoff < 1.0:
            raise ValueError("backoff must be in (0, 1)")
        if self.headroom < 1.0:
            raise ValueError("headroom must be >= 1")
