"""Per-domain limits that hold for a whole distributed job, not for each worker.

Each worker keeps its local policy (fixed or adaptive) and wraps it in a
:class:`SharedPolicy`. A background :class:`SharedLimits` loop syncs with Redis
about ten times a second, batched in one pipeline:

- **Concurrency tokens.** A Lua script leases each worker part of the domain's
  limit. The grants of all live workers never add up to more than the limit,
  and while several workers want tokens each gets at most a fair share. What a
  worker holds never drops below what it already has in flight. A dead worker's
  holding expires after ``ttl``.
- **Rate.** A token bucket in Lua refills at the job's rate for the domain. A
  worker takes permits for the next tick and spaces them out evenly, so N
  workers together send at that rate, not at N times it.
- **Learning together.** Each worker's local controller votes its view of the
  domain's limit and rate. The job uses the lowest fresh vote, so a 429 seen by
  any worker slows every worker. A worker's own ``concurrency`` caps what it
  votes unless the user set ``domain_concurrency`` (``domain_concurrency_max``
  with autothrottle) above it: that is then the job-wide cap.

When Redis is unreachable, grants run out after ``ttl`` and the worker stops
sending to the domain until it can sync again: it pauses instead of overrunning
the limit.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable, Mapping
from typing import Any, Protocol

import redis.asyncio as aioredis
from redis.exceptions import RedisError

from pooledcrawl.redis.keys import JobKeys
from pooledcrawl.throttle.base import ConcurrencyPolicy, PolicyFactory

__all__ = ["SharedLimits", "SharedPolicy"]

log = logging.getLogger("pooledcrawl.distributed")

# KEYS[1]: domain holdings hash (worker -> "held:expiry_ms:wanted"). Server time keeps
# every machine on one clock. ARGV: worker, want, inflight, limit, ttl_ms.
# Returns the tokens this worker may use now. A worker asking for tokens gets at most
# a fair share (the limit split among the workers that want some) when others want
# some too, so one busy worker cannot hold the whole limit while the others wait.
# What is *recorded* never drops below the worker's in-flight requests: those still
# use the domain until they complete.
_LEASE_TOKENS = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local want = tonumber(ARGV[2])
local inflight = tonumber(ARGV[3])
local limit = tonumber(ARGV[4])
local others = 0
local wanting = 0
if want > 0 then wanting = 1 end
local all = redis.call('HGETALL', KEYS[1])
for i = 1, #all, 2 do
  if all[i] ~= ARGV[1] then
    local held, expiry, wanted = string.match(all[i + 1], '^(%d+):(%d+):?(%d*)$')
    if held == nil or tonumber(expiry) < now then
      redis.call('HDEL', KEYS[1], all[i])
    else
      others = others + tonumber(held)
      if wanted ~= '' and tonumber(wanted) > 0 then wanting = wanting + 1 end
    end
  end
end
local fair = math.ceil(limit / math.max(wanting, 1))
local grant = math.min(want, fair, math.max(limit - others, 0))
redis.call('HSET', KEYS[1], ARGV[1],
  math.max(grant, inflight) .. ':' .. (now + tonumber(ARGV[5])) .. ':' .. want)
redis.call('PEXPIRE', KEYS[1], tonumber(ARGV[5]) * 20)
return grant
"""

# KEYS[1]: domain state hash. ARGV: want, rate (per s), burst.
_TAKE_PERMITS = """
local t = redis.call('TIME')
local now = tonumber(t[1]) + tonumber(t[2]) / 1e6
local rate = tonumber(ARGV[2])
local burst = tonumber(ARGV[3])
local tokens = tonumber(redis.call('HGET', KEYS[1], 'tokens') or burst)
local last = tonumber(redis.call('HGET', KEYS[1], 'refilled') or now)
tokens = math.min(burst, tokens + math.max(now - last, 0) * rate)
local grant = math.min(tonumber(ARGV[1]), math.floor(tokens))
redis.call('HSET', KEYS[1], 'tokens', tostring(tokens - grant), 'refilled', tostring(now))
redis.call('EXPIRE', KEYS[1], 3600)
return grant
"""

TICK = 0.1


class SharedPolicy:
    """A local policy whose limit and pace are capped by the job-wide grants."""

    def __init__(
        self, key: str, local: ConcurrencyPolicy, *, job_cap: int | None = None, ceiling: int = 0
    ) -> None:
        self.key = key
        self.local = local
        #: the job-wide cap the user set above one worker's own ``ceiling`` (its
        #: ``concurrency``), voted while the local policy sits at that ceiling
        self._job_cap = job_cap
        self._ceiling = ceiling
        self.inflight = 0
        self.granted = 0
        self.grant_valid_until = 0.0
        self.shared_rate: float | None = None
        self.shared_limit: int | None = None
        self._permits: list[float] = []  # send times granted for the current tick

    # -- ConcurrencyPolicy ---------------------------------------------------------
    def limit(self) -> int:
        if time.monotonic() > self.grant_valid_until:
            return 0
        return min(self.local.limit(), self.granted)

    def ready_at(self) -> float:
        if self.shared_rate is None:
            return self.local.ready_at()
        return self._permits[0] if self._permits else time.monotonic() + TICK

    def on_send(self, now: float) -> None:
        self.inflight += 1
        if self.shared_rate is not None and self._permits:
            self._permits.pop(0)
        self.local.on_send(now)

    def on_response(
        self, now: float, status: int, latency: float, headers: Mapping[str, str]
    ) -> None:
        self.inflight -= 1
        self.local.on_response(now, status, latency, headers)

    def on_error(self, now: float, latency: float) -> None:
        self.inflight -= 1
        self.local.on_error(now, latency)

    def snapshot(self) -> dict[str, Any]:
        snap = dict(self.local.snapshot())
        snap["shared_limit"] = self.shared_limit
        snap["shared_rate"] = self.shared_rate
        snap["granted"] = self.granted
        return snap

    # -- sync with Redis -----------------------------------------------------------
    def vote(self) -> tuple[int, float | None]:
        """This worker's view of the domain: (concurrency, rate or None)."""
        snap = self.local.snapshot()
        rate = snap.get("rate")
        limit = self.local.limit()
        if self._job_cap is not None and limit >= self._ceiling:
            # not limited by what it learned, only by its own size: N workers may
            # together use the cap the user set for the job
            limit = max(limit, self._job_cap)
        return limit, (float(rate) if rate else None)

    def want(self, demand: int) -> int:
        """Tokens to ask for: what this worker has work for, within the local limit.
        Asking for more would starve workers that hold the requests."""
        return min(self.local.limit(), demand)

    def set_permits(self, count: int, now: float) -> None:
        """Spread ``count`` permits evenly over the next tick."""
        step = TICK / count if count else TICK
        self._permits = [now + i * step for i in range(count)]


class _Crawler(Protocol):
    """What bind() needs of the crawler (``ext.Crawler``)."""

    def wake(self) -> None: ...

    def demand(self, key: str) -> int: ...


class SharedLimits:
    """The per-worker loop that syncs every :class:`SharedPolicy` with Redis."""

    def __init__(
        self,
        client: aioredis.Redis,
        job: str,
        worker_id: str,
        *,
        ttl: float = 2.0,
        vote_ttl: float = 5.0,
        job_cap: int | None = None,
        ceiling: int = 0,
    ) -> None:
        self._redis = client
        self._job_cap = job_cap
        self._ceiling = ceiling
        self._keys = JobKeys(job)
        self._worker = worker_id
        self._ttl_ms = int(ttl * 1000)
        self._ttl = ttl
        self._vote_ttl = vote_ttl
        self._lease = client.register_script(_LEASE_TOKENS)
        self._take = client.register_script(_TAKE_PERMITS)
        self.policies: dict[str, SharedPolicy] = {}
        #: called when permits arrived, so the dispatcher looks again (see bind)
        self.notify: Callable[[], None] = lambda: None
        #: requests this worker has for a slot (in flight + parked) (see bind)
        self.demand: Callable[[str], int] = lambda key: self.policies[key].inflight
        self._warned = False

    def bind(self, crawler: _Crawler) -> None:
        """``ext.Bound``: the worker's crawl wakes its dispatcher on new permits, and
        says how many requests it has for each slot."""
        self.notify = crawler.wake
        self.demand = crawler.demand

    def factory(self, local_factory: PolicyFactory) -> PolicyFactory:
        def make(key: str) -> ConcurrencyPolicy:
            policy = SharedPolicy(
                key, local_factory(key), job_cap=self._job_cap, ceiling=self._ceiling
            )
            self.policies[key] = policy
            return policy

        return make

    async def run(self, stop: Callable[[], bool] = lambda: False) -> None:
        """Sync every tick until cancelled or ``stop()`` says so. The check matters: a
        cancellation that lands inside redis-py can be lost on Python 3.11, and a
        loop that never ends would keep the engine from finishing."""
        while not stop():
            try:
                await self.sync()
                self._warned = False
            except RedisError as exc:
                if not self._warned:
                    log.warning("shared limits: Redis unreachable (%s); pausing those domains", exc)
                    self._warned = True
            await asyncio.sleep(TICK)

    async def sync(self) -> None:
        """One round trip for every domain: vote, read the job's view, lease tokens."""
        policies = list(self.policies.values())
        if not policies:
            return
        now_epoch = time.time()
        async with self._redis.pipeline(transaction=False) as pipe:
            for policy in policies:
                limit, rate = policy.vote()
                pipe.hset(
                    self._keys.domain(policy.key) + ":votes",
                    self._worker,
                    f"{limit}:{'' if rate is None else rate}:{now_epoch}",
                )
                pipe.hgetall(self._keys.domain(policy.key) + ":votes")
            replies = await pipe.execute()
        for index, policy in enumerate(policies):
            votes: dict[bytes, bytes] = replies[2 * index + 1]
            shared = _lowest_fresh(votes, now_epoch, self._vote_ttl)
            policy.shared_limit, policy.shared_rate = shared
        async with self._redis.pipeline(transaction=False) as pipe:
            for policy in policies:
                limit = policy.shared_limit or policy.local.limit()
                want = policy.want(self.demand(policy.key))
                pipe.hset(
                    self._keys.domain(policy.key),
                    mapping={
                        "limit": limit,
                        "rate": policy.shared_rate or "",
                    },
                )
                await self._lease(
                    keys=[self._keys.domain(policy.key) + ":holdings"],
                    args=[
                        self._worker,
                        min(want, limit),
                        policy.inflight,
                        limit,
                        self._ttl_ms,
                    ],
                    client=pipe,
                )
                if policy.shared_rate is not None:
                    burst = max(1.0, policy.shared_rate * TICK)
                    want = max(1, round(policy.shared_rate * TICK))
                    await self._take(
                        keys=[self._keys.domain(policy.key) + ":bucket"],
                        args=[want, policy.shared_rate, burst],
                        client=pipe,
                    )
            replies = await pipe.execute()
        now = time.monotonic()
        position = 0
        grew = False
        for policy in policies:
            position += 1  # the hset
            grant = int(replies[position])
            position += 1
            # compared with the limit in effect, not the last grant: a grant that ran
            # out (a slow sync) made the limit 0, and parked requests need a wake-up
            # even when the new grant equals the old one
            before = policy.limit()
            policy.granted = grant
            policy.grant_valid_until = now + self._ttl * 0.8
            grew = grew or policy.limit() > before
            if policy.shared_rate is not None:
                permits = int(replies[position])
                position += 1
                policy.set_permits(permits, now)
                grew = grew or permits > 0
        if grew:
            self.notify()

    async def release(self) -> None:
        """Give this worker's tokens back (at exit), so others need not wait for expiry."""
        with contextlib.suppress(RedisError):
            async with self._redis.pipeline(transaction=False) as pipe:
                for policy in self.policies.values():
                    pipe.hdel(self._keys.domain(policy.key) + ":holdings", self._worker)
                    pipe.hdel(self._keys.domain(policy.key) + ":votes", self._worker)
                await pipe.execute()


def _lowest_fresh(
    votes: Mapping[bytes, bytes], now_epoch: float, max_age: float
) -> tuple[int | None, float | None]:
    limits: list[int] = []
    rates: list[float] = []
    for raw in votes.values():
        try:
            limit_text, rate_text, when_text = raw.decode().split(":")
            if now_epoch - float(when_text) > max_age:
                continue
            limits.append(int(limit_text))
            if rate_text:
                rates.append(float(rate_text))
        except ValueError:
            continue
    return (min(limits) if limits else None), (min(rates) if rates else None)
