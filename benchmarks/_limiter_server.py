"""The link-graph site behind one rate limiter, in its own process (aiohttp).

    python -m benchmarks._limiter_server SITE SPEC_JSON      # prints the port once listening

Window families use the ``limits`` library (the one Flask-Limiter and slowapi
use) on its memory storage: ``fixed``, ``moving`` and ``sliding`` (its
sliding-window counter). Where no library does the job, the rules are written
here, and say so: ``token`` (a token bucket with a large burst capacity, as API
gateways run it), ``reject`` (a sliding log where refused requests count too),
``penalty`` (over the rate, shut out until quiet for ``quiet`` seconds; the rate
itself is a ``limits`` moving window) and ``changing`` (a leaky bucket whose
rate follows a schedule from the first request).

Every accepted page is delayed by ``delay`` seconds (the backend); refusals are
answered at once. ``headers`` adds ``X-RateLimit-*`` (``"x"``, as GitHub and
express-rate-limit's legacy mode send them) or the IETF draft's ``RateLimit``
and ``RateLimit-Policy`` (``"ietf"``); ``retry_after`` adds ``Retry-After`` to
429s. The server counts what it answered and, on SIGTERM, writes the counts to
``SPEC["counts"]`` if given, so the harness can check that no page was lost.
"""

from __future__ import annotations

import asyncio
import json
import math
import signal
import socket
import sys
import time
from collections import deque
from pathlib import Path
from typing import Any

from aiohttp import web
from limits import RateLimitItemPerSecond
from limits.storage import MemoryStorage
from limits.strategies import (
    FixedWindowRateLimiter,
    MovingWindowRateLimiter,
    RateLimiter,
    SlidingWindowCounterRateLimiter,
)

_KEY = "client"


class _Limits:
    """A ``limits`` strategy for one key; ``(accepted, remaining, reset seconds)``."""

    def __init__(self, strategy: str, limit: int, window: float) -> None:
        cls: type[RateLimiter] = {
            "fixed": FixedWindowRateLimiter,
            "moving": MovingWindowRateLimiter,
            "sliding": SlidingWindowCounterRateLimiter,
        }[strategy]
        self.limiter = cls(MemoryStorage())
        self.item = RateLimitItemPerSecond(limit, int(window))

    def check(self) -> tuple[bool, int, float]:
        ok = self.limiter.hit(self.item, _KEY)
        stats = self.limiter.get_window_stats(self.item, _KEY)
        return ok, stats.remaining, max(stats.reset_time - time.time(), 0.0)


class _TokenBucket:
    """Written here: ``capacity`` tokens, refilled at ``rate``/s; no token, a 429."""

    def __init__(self, rate: float, capacity: float) -> None:
        self.rate, self.capacity = rate, capacity
        self.tokens, self.last = capacity, time.monotonic()

    def check(self) -> tuple[bool, int, float]:
        now = time.monotonic()
        self.tokens = min(self.capacity, self.tokens + (now - self.last) * self.rate)
        self.last = now
        if self.tokens >= 1.0:
            self.tokens -= 1.0
            return True, int(self.tokens), 0.0
        return False, 0, (1.0 - self.tokens) / self.rate


class _RejectCounting:
    """Written here: at most ``limit`` requests in any ``window`` seconds, refused
    ones included, so a client that keeps knocking stays shut out."""

    def __init__(self, limit: int, window: float) -> None:
        self.limit, self.window = limit, window
        self.log: deque[float] = deque()

    def check(self) -> tuple[bool, int, float]:
        now = time.monotonic()
        while self.log and self.log[0] <= now - self.window:
            self.log.popleft()
        ok = len(self.log) < self.limit
        self.log.append(now)
        return ok, max(self.limit - len(self.log), 0), self.log[0] + self.window - now


class _PenaltyBox:
    """Written here (the rate itself is a ``limits`` moving window of one second): a
    client over the rate is shut out until it has sent nothing for ``quiet`` s."""

    def __init__(self, rate: int, quiet: float) -> None:
        self.inner = _Limits("moving", rate, 1.0)
        self.quiet = quiet
        self.boxed = False
        self.last = -math.inf

    def check(self) -> tuple[bool, int, float]:
        now = time.monotonic()
        if self.boxed and now - self.last >= self.quiet:
            self.boxed = False
        self.last = now
        if not self.boxed:
            ok, remaining, reset = self.inner.check()
            if ok:
                return ok, remaining, reset
            self.boxed = True
        return False, 0, self.quiet


class _Changing:
    """Written here: nginx ``limit_req``'s leaky bucket (``burst`` excess), its rate
    following ``schedule`` (``[[seconds from the first request, rate], ...]``)."""

    def __init__(self, schedule: list[list[float]], burst: int) -> None:
        self.schedule = sorted(schedule)
        self.burst = burst
        self.excess = 0.0
        self.last = 0.0
        self.t0: float | None = None

    def rate(self, now: float) -> float:
        t0 = self.t0 if self.t0 is not None else now
        current = self.schedule[0][1]
        for start, rate in self.schedule:
            if now - t0 >= start:
                current = rate
        return current

    def check(self) -> tuple[bool, int, float]:
        now = time.monotonic()
        if self.t0 is None:
            self.t0 = self.last = now
        rate = self.rate(now)
        excess = max(0.0, self.excess - (now - self.last) * rate) + 1.0
        if excess > self.burst + 1.0:
            return False, 0, 1.0 / rate
        self.excess, self.last = excess, now
        return True, int(self.burst + 1 - excess), 0.0


def make_limiter(spec: dict[str, Any]) -> Any:
    kind = spec["strategy"]
    if kind in ("fixed", "moving", "sliding"):
        return _Limits(kind, int(spec["limit"]), float(spec["window"]))
    if kind == "token":
        return _TokenBucket(float(spec["limit"]) / float(spec["window"]), float(spec["burst"]))
    if kind == "reject":
        return _RejectCounting(int(spec["limit"]), float(spec["window"]))
    if kind == "penalty":
        return _PenaltyBox(int(spec["limit"]), float(spec["quiet"]))
    if kind == "changing":
        return _Changing(spec["schedule"], int(spec.get("burst", 10)))
    raise ValueError(f"unknown strategy {kind!r}")


def _headers(spec: dict[str, Any], ok: bool, remaining: int, reset: float) -> dict[str, str]:
    style = spec.get("headers") or ""
    limit, window = int(spec.get("limit", 0)), float(spec.get("window", 1))
    reset_s = max(1, math.ceil(reset))
    headers: dict[str, str] = {}
    if style == "x":
        headers = {
            "X-RateLimit-Limit": str(limit),
            "X-RateLimit-Remaining": str(remaining),
            "X-RateLimit-Reset": str(int(time.time()) + reset_s),  # a Unix time, as GitHub
        }
    elif style == "ietf":
        headers = {
            "RateLimit-Policy": f'"default";q={limit};w={window:g}',
            "RateLimit": f'"default";r={remaining};t={reset_s}',
        }
    if not ok and spec.get("retry_after"):
        headers["Retry-After"] = str(reset_s)
    return headers


def build_app(site: Path, spec: dict[str, Any], counts: dict[str, int]) -> web.Application:
    limiter = make_limiter(spec)
    delay = float(spec.get("delay", 0.0))
    pages = (site / "p").resolve()
    cache: dict[str, bytes] = {}

    async def page(request: web.Request) -> web.StreamResponse:
        ok, remaining, reset = limiter.check()
        headers = _headers(spec, ok, remaining, reset)
        if not ok:
            counts["429"] = counts.get("429", 0) + 1
            return web.Response(status=429, text="Too Many Requests", headers=headers)
        name = request.match_info["name"]
        body = cache.get(name)
        if body is None:
            path = (pages / name).resolve()
            if path.parent != pages or not path.is_file():
                raise web.HTTPNotFound()
            body = cache[name] = path.read_bytes()
        if delay:
            await asyncio.sleep(delay)
        counts["200"] = counts.get("200", 0) + 1
        return web.Response(body=body, content_type="text/html", headers=headers)

    app = web.Application()
    app.router.add_get(r"/p/{name}", page)
    return app


async def _serve(site: Path, spec: dict[str, Any]) -> None:
    counts: dict[str, int] = {}
    app = build_app(site, spec, counts)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    site_ = web.SockSite(runner, sock)
    await site_.start()
    print(sock.getsockname()[1], flush=True)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()
    await runner.cleanup()
    if spec.get("counts"):
        _write_counts(Path(spec["counts"]), counts)


def _write_counts(path: Path, counts: dict[str, int]) -> None:
    path.write_text(json.dumps(counts))


def main() -> None:
    site, spec = Path(sys.argv[1]), json.loads(sys.argv[2])
    asyncio.run(_serve(site, spec))


if __name__ == "__main__":
    main()
