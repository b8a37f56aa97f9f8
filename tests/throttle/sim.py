"""A discrete-event simulation of one domain: a token-bucket server and a client
that asks a ConcurrencyPolicy, as the Dispatcher does, when it may send.

Pure Python with a virtual clock, so a 30 s crawl simulates in well under a
second and the controller's convergence can be asserted without wall time.
"""

from __future__ import annotations

import heapq
import itertools
import math
import random
from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from pooledcrawl.throttle.base import ConcurrencyPolicy

__all__ = [
    "AlignedFixedWindow",
    "ArrivalJitter",
    "ConcurrencyLimit",
    "FixedWindow",
    "LeakyBucket",
    "Limiter",
    "MovingWindow",
    "NginxLimitReq",
    "PenaltyBox",
    "RejectCounting",
    "SimResult",
    "SlidingWindowCounter",
    "TokenBucket",
    "Verdict",
    "simulate",
]

#: A limiter's answer: status, response headers, and extra server-side delay (nginx
#: ``limit_req`` without ``nodelay`` holds excess requests instead of refusing them).
Verdict = tuple[int, Mapping[str, str], float]
_OK: Verdict = (200, {}, 0.0)


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


class Limiter:
    """A simulated server-side limiter of one family. ``request`` is asked when a
    request arrives, ``done`` when an accepted one completes."""

    def request(self, now: float) -> Verdict:
        raise NotImplementedError

    def done(self, now: float) -> None:
        """An accepted request completed (only concurrency limits care)."""

    def limit_at(self, now: float) -> float:
        """The sustainable rate in requests/s, for the tests' targets."""
        raise NotImplementedError


class LeakyBucket(Limiter):
    """nginx ``limit_req rate=R burst=B [nodelay]`` (its leaky bucket, in "excess"
    terms): without ``nodelay`` the excess is queued at the rate instead of served at
    once; over the burst, 429 at once."""

    def __init__(
        self, rate: float | Callable[[float], float], burst: int = 0, *, nodelay: bool = True
    ) -> None:
        self.rate_at = rate if callable(rate) else (lambda _t, r=float(rate): r)
        self.burst = burst
        self.nodelay = nodelay
        self.excess = 0.0
        self.last = 0.0

    def request(self, now: float) -> Verdict:
        rate = self.rate_at(now)
        excess = max(0.0, self.excess - (now - self.last) * rate) + 1.0
        if excess > self.burst + 1.0:
            return (429, {}, 0.0)
        self.excess, self.last = excess, now
        delay = 0.0 if self.nodelay else (excess - 1.0) / rate
        return (200, {}, delay)

    def limit_at(self, now: float) -> float:
        return self.rate_at(now)


class ConcurrencyLimit(Limiter):
    """nginx ``limit_conn``: at most ``n`` requests in flight, 503 over it."""

    def __init__(self, n: int, latency: float) -> None:
        self.n = n
        self.latency = latency
        self.inflight = 0

    def request(self, now: float) -> Verdict:
        if self.inflight >= self.n:
            return (503, {}, 0.0)
        self.inflight += 1
        return _OK

    def done(self, now: float) -> None:
        self.inflight -= 1

    def limit_at(self, now: float) -> float:
        return self.n / self.latency


class NginxLimitReq(Limiter):
    """nginx ``limit_req`` as ``ngx_http_limit_req_lookup`` computes it: rates in
    requests per 1000 s, time in whole milliseconds of nginx's clock (whose phase
    against ours is ``offset``), ``excess = excess - rate * ms / 1000 + 1000``
    floored at 0, refused over ``burst * 1000``. Without a burst, a request must
    come ``ceil(1000 / rate)`` ms after the last one accepted: 300 r/s lets at most
    250 through."""

    def __init__(self, rate: int, burst: int = 0, *, offset: float = 0.00037) -> None:
        self.rate = rate * 1000
        self.burst = burst * 1000
        self.offset = offset
        self.excess = 0
        self.last: int | None = None

    def request(self, now: float) -> Verdict:
        now_ms = math.floor((now + self.offset) * 1000)
        if self.last is None:
            self.excess, self.last = 0, now_ms
            return _OK
        excess = max(self.excess - self.rate * abs(now_ms - self.last) // 1000 + 1000, 0)
        if excess > self.burst:
            return (429, {}, 0.0)
        self.excess, self.last = excess, now_ms
        return _OK

    def limit_at(self, now: float) -> float:
        return self.rate / 1000

    def ceiling(self) -> float:
        """The most any client gets through (see the class docstring)."""
        if self.burst:
            return self.rate / 1000
        return 1000 / math.ceil(1e6 / self.rate)


class _Window(Limiter):
    def __init__(
        self, limit: int, window: float, *, headers: str = "", retry_after: bool = False
    ) -> None:
        self.limit = limit
        self.window = window
        self.headers = headers
        self.retry_after = retry_after

    def limit_at(self, now: float) -> float:
        return self.limit / self.window

    def _answer(self, ok: bool, remaining: int, reset: float) -> Verdict:
        headers: dict[str, str] = {}
        if self.headers == "x":
            headers = {
                "X-RateLimit-Limit": str(self.limit),
                "X-RateLimit-Remaining": str(max(remaining, 0)),
                "X-RateLimit-Reset": str(max(1, math.ceil(reset))),
            }
        elif self.headers == "ietf":
            headers = {
                "RateLimit-Policy": f'"w";q={self.limit};w={self.window:g}',
                "RateLimit": f'"w";r={max(remaining, 0)};t={max(1, math.ceil(reset))}',
            }
        if not ok and self.retry_after:
            headers["Retry-After"] = str(max(1, math.ceil(reset)))
        return (200 if ok else 429, headers, 0.0)


class FixedWindow(_Window):
    """``limits``' fixed window on its memory storage: a counter that starts with the
    first hit after the previous window expired; refused hits do not count."""

    def __init__(self, limit: int, window: float, **kwargs: Any) -> None:
        super().__init__(limit, window, **kwargs)
        self.start = -math.inf
        self.count = 0

    def request(self, now: float) -> Verdict:
        if now >= self.start + self.window:
            self.start, self.count = now, 0
        reset = self.start + self.window - now
        if self.count >= self.limit:
            return self._answer(False, 0, reset)
        self.count += 1
        return self._answer(True, self.limit - self.count, reset)


class AlignedFixedWindow(FixedWindow):
    """A fixed window on one clock for every client, as express-rate-limit's memory
    store resets all counts on a single timer: the first window a client sees is
    cut short by whenever it started."""

    def __init__(self, limit: int, window: float, *, offset: float = 0.37, **kwargs: Any) -> None:
        super().__init__(limit, window, **kwargs)
        self.offset = offset  # where the clock's window edges fall relative to t=0

    def request(self, now: float) -> Verdict:
        start = math.floor((now + self.offset) / self.window) * self.window - self.offset
        if start != self.start:
            self.start, self.count = start, 0
        return super().request(now)


class MovingWindow(_Window):
    """``limits``' moving window: a log of accepted hits; at most ``limit`` of them in
    any ``window`` seconds."""

    def __init__(self, limit: int, window: float, **kwargs: Any) -> None:
        super().__init__(limit, window, **kwargs)
        self.log: deque[float] = deque()

    def request(self, now: float) -> Verdict:
        while self.log and self.log[0] <= now - self.window:
            self.log.popleft()
        reset = self.log[0] + self.window - now if self.log else self.window
        if len(self.log) >= self.limit:
            return self._answer(False, 0, reset)
        self.log.append(now)
        return self._answer(True, self.limit - len(self.log), reset)


class SlidingWindowCounter(_Window):
    """``limits``' sliding-window counter: windows aligned to the clock, and the
    previous window's count weighted by how much of it still overlaps."""

    def __init__(self, limit: int, window: float, *, offset: float = 0.37, **kwargs: Any) -> None:
        super().__init__(limit, window, **kwargs)
        self.offset = offset  # where the clock's window edges fall relative to t=0
        self.counts: dict[int, int] = {}

    def request(self, now: float) -> Verdict:
        t = now + self.offset
        index = int(t // self.window)
        previous = self.counts.get(index - 1, 0)
        current = self.counts.get(index, 0)
        left = (index + 1) * self.window - t
        weighted = previous * left / self.window + current
        if math.floor(weighted) + 1 > self.limit:
            return self._answer(False, 0, left)
        self.counts[index] = current + 1
        for old in [k for k in self.counts if k < index - 1]:
            del self.counts[old]
        return self._answer(True, int(self.limit - weighted - 1), left)


class RejectCounting(_Window):
    """A sliding log where refused requests count too: a client that keeps knocking
    stays shut out."""

    def __init__(self, limit: int, window: float, **kwargs: Any) -> None:
        super().__init__(limit, window, **kwargs)
        self.log: deque[float] = deque()

    def request(self, now: float) -> Verdict:
        while self.log and self.log[0] <= now - self.window:
            self.log.popleft()
        ok = len(self.log) < self.limit
        self.log.append(now)
        reset = self.log[0] + self.window - now
        return self._answer(ok, self.limit - len(self.log), reset)


class PenaltyBox(Limiter):
    """Over ``rate``/s (a moving window of one second), a client is shut out until it
    has sent nothing for ``quiet`` seconds; optionally says so in ``Retry-After``."""

    def __init__(self, rate: int, quiet: float, *, retry_after: bool = False) -> None:
        self.inner = MovingWindow(rate, 1.0)
        self.rate = rate
        self.quiet = quiet
        self.retry_after = retry_after
        self.boxed = False
        self.last = -math.inf

    def request(self, now: float) -> Verdict:
        if self.boxed and now - self.last >= self.quiet:
            self.boxed = False
        self.last = now
        if not self.boxed and self.inner.request(now)[0] == 200:
            return _OK
        self.boxed = True
        headers = {"Retry-After": f"{self.quiet:g}"} if self.retry_after else {}
        return (429, headers, 0.0)

    def limit_at(self, now: float) -> float:
        return float(self.rate)


class ArrivalJitter:
    """The path from the client's write to the limiter on a shared machine: each
    request takes ``base`` plus an exponential delay of mean ``mean`` (the loopback,
    the kernel, the server's event loop picking it up), so two requests sent an
    interval apart may arrive closer (the difference of two such delays is
    Laplace-distributed: ``P(gap shorter by d) = exp(-d / mean) / 2``). Against nginx
    ``limit_req`` without a burst on the benchmark's 2-core machine, at a load
    average of 1-4, runs held 140/s at 250 r/s with 0.7% refused and 200/s with 2%,
    which a mean of 0.3-0.7 ms reproduces (at a load of 7-10, 10% of the gaps nginx
    saw were 6-7 ms at a pace of one request every 8-10 ms: more). Now and then
    (``stalls`` per second, ``stall`` s long on average) the server is not scheduled
    at all: what arrives meanwhile is read in one turn of its loop, on one
    millisecond."""

    def __init__(
        self, mean: float = 0.0007, *, base: float = 0.0001, stalls: float = 0.0,
        stall: float = 0.005, seed: int = 7,
    ) -> None:  # fmt: skip
        self.mean = mean
        self.base = base
        self.stalls = stalls
        self.stall = stall
        self.rng = random.Random(seed)
        self.pauses: deque[tuple[float, float]] = deque(maxlen=8)  # recent stalls
        self.next_stall = self.rng.expovariate(stalls) if stalls else math.inf

    def arrival(self, sent: float) -> float:
        """When a request written at ``sent`` is read by the server."""
        rng = self.rng
        at = sent + self.base + rng.expovariate(1.0 / self.mean)
        while self.next_stall <= at:  # stalls as a Poisson process, drawn as time goes
            end = self.next_stall + rng.expovariate(1.0 / self.stall)
            self.pauses.append((self.next_stall, end))
            self.next_stall = end + rng.expovariate(self.stalls)
        for start, end in self.pauses:
            if start <= at < end:
                return end
        return at


@dataclass
class SimResult:
    duration: float
    ok_per_second: list[int] = field(default_factory=list)
    n429_per_second: list[int] = field(default_factory=list)
    max_inflight: int = 0
    sends: int = 0
    limit_per_second: list[float] = field(default_factory=list)
    send_times: list[float] = field(default_factory=list)

    @property
    def share_of_limit(self) -> float:
        """Good responses over what the limiter allowed in the run."""
        return self.ok / max(sum(self.limit_per_second), 1e-9)

    def max_sends_in(self, window: float, since: float) -> int:
        """Most requests sent in any ``window`` seconds from ``since`` on."""
        times = [t for t in self.send_times if t >= since]
        best, lo = 0, 0
        for hi, t in enumerate(times):
            while times[lo] <= t - window:
                lo += 1
            best = max(best, hi - lo + 1)
        return best

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
    limiter: Limiter | None = None,
    cpu: float = 0.0,
    path: ArrivalJitter | None = None,
) -> SimResult:
    """Run ``policy`` against a token bucket for ``duration`` virtual seconds.

    The client always has work (every 429 is retried), sends whenever the policy
    allows, and wakes up to ``tick`` late for a paced send, like an event loop.
    ``limit`` may change over time (a callable of the virtual time). ``headers``
    lets a scenario add response headers; ``server`` replaces the bucket. With
    ``links``, work arrives like a breadth-first crawl from one start page: each
    good page adds ``links`` requests, each 429 puts its request back. ``limiter``
    replaces the bucket with a limiter of another family (its headers, status and
    delay are used; ``limit`` is then ignored). ``cpu`` is the client's time per
    good response (parsing the page, one event loop): a send that falls due
    meanwhile goes out once it is done, as in the engine. ``path`` delays each
    request's arrival at the ``limiter`` (see :class:`ArrivalJitter`); the limiter
    then judges requests in the order they arrive.
    """
    rnd = random.Random(seed)
    rate_at = limit if callable(limit) else (lambda _t: float(limit))
    bucket = TokenBucket(rate_at(0.0), burst)
    result = SimResult(duration)
    seconds = int(duration)
    result.ok_per_second = [0] * seconds
    result.n429_per_second = [0] * seconds
    events: list[tuple[float, int, str, float, int, Mapping[str, str]]] = []
    result.limit_per_second = [
        (limiter.limit_at(float(t)) if limiter is not None else rate_at(float(t)))
        for t in range(seconds)
    ]
    seq = itertools.count()
    inflight = 0
    backlog = 1 if links is not None else -1  # -1: always work to do
    wake_at: float | None = None
    busy_until = 0.0
    now = 0.0

    def try_send() -> None:
        nonlocal inflight, wake_at, backlog
        if busy_until > now:
            if wake_at is None or wake_at <= now or wake_at > busy_until:
                wake_at = busy_until
                heapq.heappush(events, (busy_until, next(seq), "wake", now, 0, {}))
            return
        while inflight < policy.limit() and backlog != 0:
            ready = policy.ready_at()
            if ready > now:
                if wake_at is None or ready < wake_at or wake_at <= now:
                    wake_at = ready + rnd.uniform(0.0, tick)
                    heapq.heappush(events, (wake_at, next(seq), "wake", now, 0, {}))
                return
            policy.on_send(now)
            if backlog > 0:
                backlog -= 1
            result.sends += 1
            inflight += 1
            result.max_inflight = max(result.max_inflight, inflight)
            result.send_times.append(now)
            extra: Mapping[str, str] = {}
            if limiter is not None and path is not None:
                heapq.heappush(events, (path.arrival(now), next(seq), "arrive", now, 0, {}))
                continue
            if limiter is not None:
                status, extra, delay = limiter.request(now)
            else:
                bucket.rate = rate_at(now)
                accepted = server(now) if server is not None else bucket.allow(now)
                status, delay = (200 if accepted else 429), 0.0
            respond(now, now, status, extra, delay)

    def respond(
        at: float, sent: float, status: int, extra: Mapping[str, str], delay: float
    ) -> None:
        if status == 200:
            done = at + delay + latency * (1.0 + rnd.uniform(-jitter, jitter))
        else:
            done = at + reject_latency * (1.0 + rnd.random())
        heapq.heappush(events, (done, next(seq), "done", sent, status, extra))

    try_send()
    while events:
        when, _, kind, sent, status, extra = heapq.heappop(events)
        if when >= duration:
            break
        now = when
        if kind == "arrive":
            assert limiter is not None
            status, extra, delay = limiter.request(now)
            respond(now, sent, status, extra, delay)
            continue
        if kind == "done":
            inflight -= 1
            accepted = status == 200
            if accepted and limiter is not None:
                limiter.done(now)
            if headers is not None:
                extra = headers(now, accepted, bucket)
            policy.on_response(now, status, now - sent, extra)
            second = int(now)
            if backlog >= 0:
                backlog += links if accepted and links is not None else (0 if accepted else 1)
            if accepted:
                busy_until = max(busy_until, now) + cpu
                result.ok_per_second[second] += 1
            else:
                result.n429_per_second[second] += 1
        try_send()
    return result
