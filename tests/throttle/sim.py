"""A discrete-event simulation of one domain: a token-bucket server and a client
that asks a ConcurrencyPolicy, as the Dispatcher does, when it may send.

Pure Python with a virtual clock, so a 30 s crawl simulates in well under a
second and the controller's convergence can be asserted without wall time.
"""

from __future__ import annotations

import heapq
import itertools
import random
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

from pooledcrawl.throttle.base import ConcurrencyPolicy

__all__ = ["SimResult", "TokenBucket", "simulate"]


class TokenBucket:
    """nginx ``limit_req ... burst=B nodelay``: B + 1 tokens, refilled at ``rate``/s;
    a request without a token is rejected and costs nothing."""

    def __init__(self, rate: float, burst: int) -> None:
        self.rate = rate
        self.capacity = burst + 1.0
        self.tokens = self.capacity
        self.last = 0.0

    def allow(self, now: float) -> bool:
        self.tokens = min(self.capacity, self.tokens + (now - self.last) * self.rate)
        self.last = now
        if self.tokens >= 1.0:
            self.tokens -= 1.0
            return True
        return False


@dataclass
class SimResult:
    duration: float
    ok_per_second: list[int] = field(default_factory=list)
    n429_per_second: list[int] = field(default_factory=list)
    max_inflight: int = 0
    sends: int = 0

    @property
    def ok(self) -> int:
        return sum(self.ok_per_second)

    @property
    def n429(self) -> int:
        return sum(self.n429_per_second)

    @property
    def share_429(self) -> float:
        total = self.ok + self.n429
        return self.n429 / total if total else 0.0

    def ok_rate(self, start: float = 0.0, end: float | None = None) -> float:
        last = int(end if end is not None else self.duration)
        window = self.ok_per_second[int(start) : last]
        return sum(window) / max(len(window), 1)

    def share_429_between(self, start: float, end: float) -> float:
        ok = sum(self.ok_per_second[int(start) : int(end)])
        bad = sum(self.n429_per_second[int(start) : int(end)])
        return bad / (ok + bad) if ok + bad else 0.0

    def time_to_reach(self, level: float, window: int = 5) -> float | None:
        """End of the first ``window``-second span averaging at least ``level`` good/s."""
        per_s = self.ok_per_second
        for end in range(window, len(per_s) + 1):
            if sum(per_s[end - window : end]) / window >= level:
                return float(end)
        return None


def simulate(
    policy: ConcurrencyPolicy,
    *,
    limit: float | Callable[[float], float],
    latency: float,
    duration: float = 30.0,
    burst: int = 10,
    reject_latency: float = 0.001,
    jitter: float = 0.1,
    tick: float = 0.001,
    seed: int = 1,
    headers: Callable[[float, bool, TokenBucket], Mapping[str, str]] | None = None,
    server: Callable[[float], bool] | None = None,
    links: int | None = None,
) -> SimResult:
    """Run ``policy`` against a token bucket for ``duration`` virtual seconds.

    The client always has work (every 429 is retried), sends whenever the policy
    allows, and wakes up to ``tick`` late for a paced send, like an event loop.
    ``limit`` may change over time (a callable of the virtual time). ``headers``
    lets a scenario add response headers; ``server`` replaces the bucket. With
    ``links``, work arrives like a breadth-first crawl from one start page: each
    good page adds ``links`` requests, each 429 puts its request back.
    """
    rnd = random.Random(seed)
    rate_at = limit if callable(limit) else (lambda _t: float(limit))
    bucket = TokenBucket(rate_at(0.0), burst)
    result = SimResult(duration)
    seconds = int(duration)
    result.ok_per_second = [0] * seconds
    result.n429_per_second = [0] * seconds
    events: list[tuple[float, int, str, float, bool]] = []
    seq = itertools.count()
    inflight = 0
    backlog = 1 if links is not None else -1  # -1: always work to do
    wake_at: float | None = None
    now = 0.0

    def try_send() -> None:
        nonlocal inflight, wake_at, backlog
        while inflight < policy.limit() and backlog != 0:
            ready = policy.ready_at()
            if ready > now:
                if wake_at is None or ready < wake_at or wake_at <= now:
                    wake_at = ready + rnd.uniform(0.0, tick)
                    heapq.heappush(events, (wake_at, next(seq), "wake", now, False))
                return
            policy.on_send(now)
            if backlog > 0:
                backlog -= 1
            result.sends += 1
            inflight += 1
            result.max_inflight = max(result.max_inflight, inflight)
            bucket.rate = rate_at(now)
            accepted = server(now) if server is not None else bucket.allow(now)
            if accepted:
                done = now + latency * (1.0 + rnd.uniform(-jitter, jitter))
            else:
                done = now + reject_latency * (1.0 + rnd.random())
            heapq.heappush(events, (done, next(seq), "done", now, accepted))

    try_send()
    while events:
        when, _, kind, sent, accepted = heapq.heappop(events)
        if when >= duration:
            break
        now = when
        if kind == "done":
            inflight -= 1
            status = 200 if accepted else 429
            extra = headers(now, accepted, bucket) if headers is not None else {}
            policy.on_response(now, status, now - sent, extra)
            second = int(now)
            if backlog >= 0:
                backlog += links if accepted and links is not None else (0 if accepted else 1)
            if accepted:
                result.ok_per_second[second] += 1
            else:
                result.n429_per_second[second] += 1
        try_send()
    return result
