"""The proxy pool: which proxy a request goes through, and which proxies rest.

Pure: the engine reports what happened and passes the time; nothing here sleeps
or does I/O, so tests drive it with a fake clock and a seeded random generator.

- **Choice:** the least-loaded healthy proxy with room under its cap.
- **Health:** a failure to reach the proxy, a 407 or a ban status benches the
  proxy for a full-jitter exponential rest after its n-th failure in a row
  (``uniform(0, min(cap, base * 2**(n-1)))``, :func:`pooledcrawl.backoff.full_jitter`).
  When the rest is over the proxy is on probation: one request at a time until
  one succeeds.
- **All down:** when every proxy is benched the pool records since when, so
  the engine can pause, say so once, and stop after a time limit.
"""

from __future__ import annotations

import random
from collections.abc import Collection, Sequence
from typing import Any

from pooledcrawl.backoff import full_jitter
from pooledcrawl.proxy.endpoint import Proxy, ProxyConfig, ProxyKind
from pooledcrawl.proxy.sessions import SessionConfig

__all__ = ["PoolProxy", "ProxyPool"]


class PoolProxy:
    """One proxy's live state in the pool."""

    __slots__ = (
        "bad_since",
        "bans",
        "cap",
        "failures",
        "inflight",
        "proxy",
        "requests",
        "rest_until",
        "streak",
    )

    def __init__(self, proxy: Proxy, cap: int | None) -> None:
        self.proxy = proxy
        self.cap = cap
        self.inflight = 0
        self.requests = 0
        self.failures = 0
        self.bans = 0
        #: consecutive benchings without a success in between
        self.streak = 0
        #: when it was last benched; None while healthy
        self.bad_since: float | None = None
        self.rest_until = 0.0

    @property
    def label(self) -> str:
        return self.proxy.label

    @property
    def healthy(self) -> bool:
        return self.bad_since is None

    def available(self, now: float) -> bool:
        """May take one more request now."""
        if self.bad_since is None:
            return self.cap is None or self.inflight < self.cap
        return now >= self.rest_until and self.inflight == 0  # probation: one at a time

    def wake_at(self, now: float) -> float | None:
        """When time alone makes it available: ``now`` if it is, the end of its rest if
        resting, None if only a request finishing can (full, or a probe in flight)."""
        if self.available(now):
            return now
        if self.bad_since is not None and self.inflight == 0:
            return self.rest_until
        return None

    def state(self, now: float) -> str:
        if self.bad_since is None:
            return "healthy"
        return "resting" if now < self.rest_until else "probation"

    def __repr__(self) -> str:
        return f"<PoolProxy {self.label} inflight={self.inflight} bad={not self.healthy}>"


class ProxyPool:
    """Proxies of one job, their load and their health."""

    def __init__(
        self,
        proxies: Sequence[Proxy],
        *,
        kind: ProxyKind = "rotating",
        cap: int | None = None,
        backoff_base: float = 1.0,
        backoff_cap: float = 120.0,
        rng: random.Random | None = None,
        session: SessionConfig | None = None,
    ) -> None:
        if not proxies:
            raise ValueError("a proxy pool needs at least one proxy")
        if cap is not None and cap < 1:
            raise ValueError("cap must be >= 1")
        if backoff_base <= 0 or backoff_cap <= 0:
            raise ValueError("backoff base and cap must be > 0")
        self.kind: ProxyKind = kind
        #: sticky sessions through these proxies (the engine keeps their pool)
        self.session = session
        self.entries = tuple(PoolProxy(p, cap) for p in proxies)
        self._backoff_base = backoff_base
        self._backoff_cap = backoff_cap
        self._rng = rng or random.Random()
        #: since when every proxy has been benched; None while any one works
        self.down_since: float | None = None

    @classmethod
    def from_config(
        cls,
        config: ProxyConfig,
        *,
        cap: int | None,
        backoff_base: float,
        backoff_cap: float,
        rng: random.Random | None = None,
    ) -> ProxyPool:
        return cls(
            config.proxies,
            kind=config.kind,
            cap=cap,
            backoff_base=backoff_base,
            backoff_cap=backoff_cap,
            rng=rng,
            session=config.session,
        )

    @property
    def per_proxy_slots(self) -> bool:
        """Static IPs: each proxy has its own per-domain limits (slot = domain x proxy).
        A rotating gateway exits from many IPs, so limits belong to the target alone."""
        return self.kind == "static"

    def __len__(self) -> int:
        return len(self.entries)

    def __repr__(self) -> str:
        return f"<ProxyPool {self.kind} {len(self.entries)} proxies>"

    # ---- choosing --------------------------------------------------------------------
    def ranked(self, now: float, avoid: Collection[str] = ()) -> list[PoolProxy]:
        """Every proxy, best first: available ones by load (those ``avoid`` names last),
        then the others by when they may become available."""

        def key(entry: PoolProxy) -> tuple[int, int, float, int, int]:
            if entry.available(now):
                return (0, entry.label in avoid, 0.0, entry.inflight, entry.requests)
            wake = entry.wake_at(now)
            return (1, entry.label in avoid, float("inf") if wake is None else wake, 0, 0)

        return sorted(self.entries, key=key)

    def choose(self, now: float, avoid: Collection[str] = ()) -> PoolProxy | None:
        """The least-loaded available proxy, preferring those not in ``avoid`` (labels of
        proxies this request already failed on); None when none is available."""
        best: PoolProxy | None = None
        best_key: tuple[bool, int, int] | None = None
        for entry in self.entries:
            if not entry.available(now):
                continue
            key = (entry.label in avoid, entry.inflight, entry.requests)
            if best_key is None or key < best_key:
                best, best_key = entry, key
        return best

    def available(self, now: float) -> bool:
        return any(entry.available(now) for entry in self.entries)

    def wake_at(self, now: float) -> float | None:
        times = [t for entry in self.entries if (t := entry.wake_at(now)) is not None]
        return min(times) if times else None

    # ---- events ----------------------------------------------------------------------
    def acquire(self, entry: PoolProxy) -> None:
        entry.inflight += 1
        entry.requests += 1

    def release(self, entry: PoolProxy) -> None:
        """The request ended in a way that says nothing about the proxy (a target timeout)."""
        entry.inflight -= 1

    def succeeded(self, entry: PoolProxy, sent_at: float) -> bool:
        """The proxy carried a request; True when this ends an all-down spell."""
        entry.inflight -= 1
        if entry.bad_since is None or sent_at < entry.bad_since:
            return False  # healthy, or a request that left before the benching
        entry.bad_since = None
        entry.streak = 0
        if self.down_since is not None:
            self.down_since = None
            return True
        return False

    def failed(self, entry: PoolProxy, sent_at: float, now: float, *, ban: bool = False) -> bool:
        """The proxy failed a request (unreachable, 407, or a ban status): bench it.

        Returns True when this leaves every proxy benched (the start of an all-down
        spell). A request sent before the current benching only counts: the burst of
        failures when a proxy dies must not stretch its rest to the cap at once.
        """
        entry.inflight -= 1
        if ban:
            entry.bans += 1
        else:
            entry.failures += 1
        if entry.bad_since is not None and sent_at < entry.bad_since:
            return False
        entry.streak += 1
        entry.bad_since = now
        entry.rest_until = now + self.rest_delay(entry.streak)
        if self.down_since is None and all(not e.healthy for e in self.entries):
            self.down_since = now
            return True
        return False

    def rest_delay(self, streak: int) -> float:
        """Full jitter: uniform(0, min(cap, base * 2 ** (streak - 1)))."""
        return full_jitter(streak, self._backoff_base, self._backoff_cap, self._rng)

    # ---- reporting -------------------------------------------------------------------
    def snapshot(self, now: float) -> dict[str, dict[str, Any]]:
        """Per proxy (labelled without credentials): counters and current state."""
        return {
            entry.label: {
                "requests": entry.requests,
                "failures": entry.failures,
                "bans": entry.bans,
                "state": entry.state(now),
                "inflight": entry.inflight,
            }
            for entry in self.entries
        }
