"""Proxy tiers: each domain settles on the cheapest profile that is not blocked.

``--profile datacenter,residential,mobile`` lists tiers cheapest first. Every
domain starts on the first. When its block rate over a sliding window passes a
threshold, or after a run of blocks in a row, it moves up one tier; from time to
time it sends a few probe requests through the tier below and moves back down
when they all get through, as Crawlee's tiered proxies do. Pure: the engine passes the time.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from pooledcrawl.proxy.sessions import SessionPool
    from pooledcrawl.settings import Settings

__all__ = ["DomainTier", "TierInfo", "TierPolicy", "TierSet"]


class TierInfo(Protocol):
    """What the block and cost bookkeeping reads of a tier (``engine.tiering.Tier``):
    a protocol, so proxy policy needs nothing from the engine."""

    @property
    def name(self) -> str: ...
    @property
    def settings(self) -> Settings: ...
    @property
    def sessions(self) -> SessionPool | None: ...


class TierSet(Protocol):
    """The crawl's tiers as the bookkeeping reads them (``engine.tiering.Tiers``)."""

    @property
    def tiers(self) -> Sequence[TierInfo]: ...
    def __len__(self) -> int: ...


@dataclass(slots=True)
class DomainTier:
    tier: int = 0
    #: (time, tier, blocked) of recent outcomes on the current tier
    window: deque[tuple[float, bool]] = field(default_factory=deque)
    #: when the next probe of the tier below may start; None: on the cheapest tier
    probe_at: float | None = None
    probe_ok: int = 0
    probe_inflight: int = 0
    probe_interval: float = 0.0
    #: blocks in a row on the current tier: a domain with few requests in flight
    #: never fills the window, but a run of blocks says the same
    streak: int = 0
    #: (time, tier) each time the tier changed, the first entry the start
    history: list[tuple[float, int]] = field(default_factory=list)


class TierPolicy:
    """Per-domain tier choice from block rates over a window."""

    def __init__(
        self,
        names: Sequence[str],
        *,
        window: float = 20.0,
        threshold: float = 0.3,
        min_samples: int = 10,
        probe_interval: float = 60.0,
        probe_interval_cap: float = 600.0,
        probe_successes: int = 3,
        streak: int = 5,
    ) -> None:
        if not names:
            raise ValueError("at least one tier")
        if not 0 < threshold <= 1:
            raise ValueError("threshold must be in (0, 1]")
        self.names = tuple(names)
        self.window = window
        self.threshold = threshold
        self.min_samples = min_samples
        self.probe_interval = probe_interval
        self.probe_interval_cap = probe_interval_cap
        self.probe_successes = probe_successes
        self.streak = streak
        self._domains: dict[str, DomainTier] = {}

    def _state(self, domain: str, now: float) -> DomainTier:
        state = self._domains.get(domain)
        if state is None:
            state = self._domains[domain] = DomainTier(probe_interval=self.probe_interval)
            state.history.append((now, 0))
        return state

    def current(self, domain: str, now: float) -> int:
        return self._state(domain, now).tier

    def choose(self, domain: str, now: float) -> int:
        """The tier the next request to ``domain`` goes through: its current tier, or
        the one below while a probe is due (one probe request at a time)."""
        state = self._state(domain, now)
        if (
            state.probe_at is not None
            and now >= state.probe_at
            and state.probe_inflight == 0
            and state.tier > 0
        ):
            state.probe_inflight += 1
            return state.tier - 1
        return state.tier

    def observe(self, domain: str, tier: int, now: float, *, blocked: bool) -> int | None:
        """A response from ``domain`` through ``tier``; returns the new tier on a change."""
        state = self._state(domain, now)
        if tier == state.tier - 1 and state.probe_inflight:
            return self._probed(state, now, blocked=blocked)
        if tier != state.tier:
            return None  # a request sent before the last change: says nothing now
        window = state.window
        window.append((now, blocked))
        while window and window[0][0] < now - self.window:
            window.popleft()
        state.streak = state.streak + 1 if blocked else 0
        if state.tier + 1 >= len(self.names):
            return None
        if state.streak < self.streak:
            if len(window) < self.min_samples:
                return None
            blocks = sum(1 for _, b in window if b)
            if blocks / len(window) < self.threshold:
                return None
        return self._move(state, state.tier + 1, now, fresh_probe=True)

    def dropped(self, domain: str, tier: int, now: float) -> None:
        """A request through ``tier`` ended without a response (a transport error): a
        probe that failed so says nothing about blocks, and another may go."""
        state = self._state(domain, now)
        if tier == state.tier - 1 and state.probe_inflight:
            state.probe_inflight -= 1

    def _probed(self, state: DomainTier, now: float, *, blocked: bool) -> int | None:
        state.probe_inflight -= 1
        if blocked:
            # the cheaper tier is still blocked: wait twice as long before the next probe
            state.probe_ok = 0
            state.probe_interval = min(state.probe_interval * 2, self.probe_interval_cap)
            state.probe_at = now + state.probe_interval
            return None
        state.probe_ok += 1
        if state.probe_ok < self.probe_successes:
            return None
        return self._move(state, state.tier - 1, now, fresh_probe=False)

    def _move(self, state: DomainTier, tier: int, now: float, *, fresh_probe: bool) -> int:
        state.tier = tier
        state.window.clear()
        state.streak = 0
        state.probe_ok = 0
        if fresh_probe:
            state.probe_interval = self.probe_interval
        state.probe_at = None if tier == 0 else now + state.probe_interval
        state.history.append((now, tier))
        return tier

    def snapshot(self, started: float) -> dict[str, Any]:
        """Per domain: the current tier's name and its changes, times from ``started``."""
        return {
            domain: {
                "tier": self.names[state.tier],
                "history": [[round(t - started, 3), self.names[i]] for t, i in state.history],
            }
            for domain, state in self._domains.items()
        }
