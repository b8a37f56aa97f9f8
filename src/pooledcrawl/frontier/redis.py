"""A frontier shared by many workers through Redis Streams, with leases.

- Each priority level is a stream read through one consumer group, so a worker
  *claims* a request (it sits in the group's pending list under the worker's
  name) instead of popping it. The worker acknowledges it (XACK and XDEL in one
  transaction) only after the callback's items are flushed and its new requests
  are enqueued. If the worker dies, another one takes its leases over with
  XAUTOCLAIM once they have been idle for ``lease_timeout``. Live workers keep
  their leases fresh with XCLAIM, so slow pages are not stolen.
- Dedup and enqueue happen in one Lua script, so two workers that find the same
  link enqueue it once. The fingerprint is 8 bytes (about 48 bytes of Redis memory
  per URL in the exact set). A bounded mode swaps the exact set for a fixed-size
  Bloom filter (``dedup_bits``) that never grows, at the price of false positives:
  a URL whose bits are all set already is taken as seen and not crawled.
- Retries wait in a sorted set scored by wall-clock due time, and a script moves
  them back onto their stream when they fall due.
- Every round trip is batched in the background, so ``push``, ``pop`` and ``ack``
  stay synchronous and cheap on the engine's hot path. If Redis goes away, the
  loop logs once, backs off and reconnects. Buffered pushes and acks wait, and
  nothing is dropped.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from typing import Any, Protocol

import redis.asyncio as aioredis
from redis.exceptions import RedisError

from pooledcrawl.backoff import Doubling
from pooledcrawl.errors import UsageError
from pooledcrawl.frontier.codec import RequestCodec
from pooledcrawl.frontier.redis_claims import Claims
from pooledcrawl.http.request import Request
from pooledcrawl.http.url import fingerprint
from pooledcrawl.redis import frontier_scripts as scripts
from pooledcrawl.redis.keys import GROUP, JobKeys

__all__ = ["RedisFrontier"]

log = logging.getLogger("pooledcrawl.frontier.redis")

_LOCAL_SEEN_MAX = 200_000
#: acknowledgements that wake the background loop at once; fewer wait for its next
#: round (every 50 ms), so a round trip carries many
_ACK_BATCH = 256
#: how soon after finding the job's streams empty a worker asks again
_EMPTY_POLL = 0.05
#: requests per enqueue script call: one call blocks Redis while it runs
_ENQUEUE_BATCH = 1000
_MAX_BLOOM_BITS = 2**32
_CLOSE_GRACE = 2.0
_MAX_BACKOFF = 5.0


class _Crawler(Protocol):
    """What bind() needs of the crawler (``ext.Crawler``)."""

    async def flush_items(self) -> None: ...


class RedisFrontier:
    """The Redis-backed frontier of one worker; it owns (and closes) ``client``."""

    def __init__(
        self,
        client: aioredis.Redis,
        job: str,
        codec: RequestCodec,
        *,
        spider_name: str,
        worker_id: str,
        lease_timeout: float = 60.0,
        window: int = 256,
        dedup_bits: int = 0,
        max_leased: int | None = None,
    ) -> None:
        if not 0 <= dedup_bits <= _MAX_BLOOM_BITS:
            raise UsageError(
                f"setting redis_dedup_bits: 0 (an exact set) or a Bloom filter size up to "
                f"{_MAX_BLOOM_BITS} bits (a Redis string's limit), got {dedup_bits}"
            )
        self.on_ready: Callable[[], None] = _noop
        #: awaited before acknowledgements are sent: the crawl's sinks flush here
        #: (see bind)
        self.before_ack: Callable[[], Awaitable[None]] | None = None
        self.keys = JobKeys(job)
        self._redis = client
        self._codec = codec
        self._spider_name = spider_name
        self.worker_id = worker_id
        self._lease_ms = int(lease_timeout * 1000)
        self._window_size = window
        #: requests handed to the engine and not acknowledged yet, at most: the
        #: engine parks what a domain cannot send yet, and a worker whose domains
        #: are slow would otherwise claim thousands the other workers could crawl
        self._max_leased = max_leased if max_leased is not None else 4 * window
        self._dedup_bits = dedup_bits
        self._enqueue = client.register_script(scripts.ENQUEUE)
        self._add_seen_script = client.register_script(scripts.ADD_SEEN)
        self._move_due_script = client.register_script(scripts.MOVE_DUE)
        self._remaining_script = client.register_script(scripts.REMAINING)
        self._claim_seeding_script = client.register_script(scripts.CLAIM_SEEDING)
        self._claims = Claims(
            client,
            self.keys,
            codec,
            worker_id=worker_id,
            lease_ms=self._lease_ms,
            window_size=window,
        )
        self._window = self._claims.window  # the same deque
        #: requests handed to the engine and not acknowledged: id -> (request, stream, id)
        self._leases: dict[int, tuple[Request, str, str]] = {}
        self._local_seen: OrderedDict[int, None] = OrderedDict()
        self._outbox: list[tuple[bytes, int, bytes]] = []
        self._delayed_out: list[tuple[float, int, bytes]] = []
        self._acks: list[tuple[str, str]] = []
        self._kick = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._done = False
        self._stopping = False
        self._remote_pending = 0
        #: pushes so far, and how many of them reached Redis: the start requests
        #: are all enqueued once ``_sent`` reaches the count at ``seeding_done``
        self._pushed = 0
        self._sent = 0
        self._seed_mark: int | None = None
        self._seeded_sent = False
        self._last_reclaim = 0.0
        self._found_empty_at = 0.0
        self._purged = False
        self._last_heartbeat = 0.0
        self._last_move = 0.0
        self._disconnected_since: float | None = None
        self.duplicates = 0

    # ---- lifecycle -----------------------------------------------------------------
    def bind(self, crawler: _Crawler) -> None:
        """``ext.Bound``: flush the crawl's sinks before acknowledging, so an item is
        written before its request counts as done."""
        self.before_ack = crawler.flush_items

    async def open(self) -> None:
        meta = self.keys.meta
        try:
            async with self._redis.pipeline(transaction=True) as pipe:
                pipe.hsetnx(meta, "spider", self._spider_name)
                # the dedup key is a set or a Bloom bitmap: every worker must agree
                pipe.hsetnx(meta, "dedup_bits", str(self._dedup_bits))
                pipe.hmget(meta, ["spider", "dedup_bits"])
                *_, (owner, bits) = await pipe.execute()
        except RedisError as exc:
            raise UsageError(f"cannot reach the Redis frontier: {exc}") from None
        owner_name = owner.decode() if isinstance(owner, bytes) else str(owner)
        if owner_name != self._spider_name:
            raise UsageError(
                f"job {self.keys.job!r} belongs to spider {owner_name!r}, "
                f"not {self._spider_name!r}: use another --job or purge it"
            )
        if int(bits) != self._dedup_bits:
            raise UsageError(
                f"job {self.keys.job!r} was started with redis_dedup_bits={int(bits)}, "
                f"this worker has {self._dedup_bits}: every worker of a job needs the same"
            )
        self._task = asyncio.create_task(self._run(), name="redis-frontier")
        # if the loop dies of a bug, wake the engine so pop() raises it: a worker
        # that stops refilling and acknowledging must fail, not sit idle forever
        self._task.add_done_callback(lambda _task: self.on_ready())

    async def close(self) -> None:
        """Flush what is buffered (retrying while Redis is away, up to a bound), then stop."""
        self._stopping = True
        self._kick.set()
        if self._task is not None:
            # Let the round trip in progress finish: cancelled after Redis ran a script
            # but before the reply, a batch would be sent twice (harmless, but it
            # counts its requests as duplicates). Cancel only a loop stuck in backoff.
            done, _ = await asyncio.wait((self._task,), timeout=_CLOSE_GRACE)
            if not done:
                self._task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await self._task
            self._task = None
        deadline = time.monotonic() + 30.0
        # Requests the engine took and never completed (parked behind a busy domain,
        # or cut short by a stop) go back too: at-least-once, and nobody waits for
        # their leases to time out.
        self._window.extend(self._leases.values())
        self._leases.clear()
        while not self._purged and (
            self._outbox or self._delayed_out or self._acks or self._window
        ):
            try:
                await self._flush()
                await self._claims.release()
            except RedisError as exc:
                if time.monotonic() > deadline:
                    log.error(
                        "Redis unreachable at shutdown; %d acks not sent: %s", len(self._acks), exc
                    )
                    break
                await asyncio.sleep(0.5)
        with contextlib.suppress(RedisError):
            await self._redis.zrem(self.keys.workers, self.worker_id)
        await self._redis.aclose()

    async def claim_seeding(self) -> bool:
        """True for the one worker of the job that enqueues the start requests.

        The others wait here (crawling meanwhile) until the seeding is complete, and
        take it over if the seeding worker dies first: without the ``seeded`` mark
        the job could never end."""
        backoff = Doubling(0.2, _MAX_BACKOFF)
        while True:
            try:
                verdict = int(
                    await self._claim_seeding_script(
                        keys=[self.keys.meta, self.keys.workers],
                        args=[self.worker_id, max(self._lease_ms / 1000, 1.0)],
                    )
                )
                backoff.reset()
            except RedisError:
                verdict = 3  # Redis away: ask again once it is back
            if verdict == 0:
                return False
            if verdict == 1:
                return True
            await asyncio.sleep(1.0 if verdict == 2 else backoff.failed())

    def seeding_done(self) -> None:
        self._seed_mark = self._pushed
        self._kick.set()

    # ---- the synchronous engine-facing API -----------------------------------------
    def push(self, request: Request, canonical_url: str) -> bool:
        value = fingerprint(canonical_url, request.method, request.body)
        if value in self._local_seen and not request.dont_filter:
            return False
        self._remember_locally(value)
        fp = value.to_bytes(8, "big")
        if request.dont_filter:
            fp = b"!" + fp
        self._outbox.append((fp, request.priority, self._codec.encode(request)))
        self._pushed += 1
        self._done = False
        if not self._window or len(self._outbox) >= _ENQUEUE_BATCH:
            self._kick.set()  # starving, or a full batch: send now; else with the next round
        return True

    async def add_seen(self, canonical_url: str) -> bool:
        value = fingerprint(canonical_url)
        if value in self._local_seen:
            return False
        self._remember_locally(value)
        try:
            added = await self._add_seen_script(
                keys=[self.keys.seen], args=[self._dedup_bits, value.to_bytes(8, "big")]
            )
        except RedisError:
            return True  # parse it: at worst a duplicate, which at-least-once allows
        return bool(added)

    def _remember_locally(self, value: int) -> None:
        seen = self._local_seen
        seen[value] = None
        if len(seen) > _LOCAL_SEEN_MAX:
            seen.popitem(last=False)

    def push_later(self, request: Request, not_before: float) -> None:
        due = time.time() + max(0.0, not_before - time.monotonic())
        self._delayed_out.append((due, request.priority, self._codec.encode(request)))
        self._done = False

    def pop(self, now: float) -> Request | None:
        task = self._task
        if task is not None and task.done() and not task.cancelled():
            error = task.exception()
            if error is not None:
                raise error
        if (
            len(self._window) <= self._window_size // 2
            and time.monotonic() - self._found_empty_at >= _EMPTY_POLL
        ):
            self._kick.set()
        if not self._window or len(self._leases) >= self._max_leased:
            return None
        request, stream, entry_id = self._window.popleft()
        self._leases[id(request)] = (request, stream, entry_id)
        return request

    def ack(self, request: Request) -> None:
        lease = self._leases.pop(id(request), None)
        if lease is not None:
            self._acks.append((lease[1], lease[2]))
            if len(self._acks) >= _ACK_BATCH or not self._leases:
                self._kick.set()  # a full batch, or maybe the job's last request

    def next_due(self) -> float | None:
        return None  # due retries come back through the background loop and on_ready

    def exhausted(self) -> bool:
        return self._done and not self._window

    def __len__(self) -> int:
        return self._remote_pending + len(self._window) + len(self._outbox)

    @property
    def reclaimed(self) -> int:
        """Leases this worker took over from workers that stopped acknowledging."""
        return self._claims.reclaimed

    def stats(self) -> dict[str, Any]:
        return {"redis_duplicates": self.duplicates, "leases_reclaimed": self._claims.reclaimed}

    # ---- the background loop -------------------------------------------------------
    async def _run(self) -> None:
        backoff = Doubling(0.1, _MAX_BACKOFF)
        while not self._stopping:
            try:
                await self._tick()
            except RedisError as exc:
                if self._disconnected_since is None:
                    self._disconnected_since = time.monotonic()
                    log.warning("Redis unreachable (%s); pausing and reconnecting", exc)
                await asyncio.sleep(backoff.failed())
                continue
            if self._disconnected_since is not None:
                log.warning(
                    "Redis is back after %.1fs", time.monotonic() - self._disconnected_since
                )
                self._disconnected_since = None
            backoff.reset()
            self._kick.clear()
            # asyncio.wait, not asyncio.timeout: on Python 3.11 a timeout that expires
            # as close() cancels this task can swallow the cancellation
            kicked = asyncio.ensure_future(self._kick.wait())
            try:
                await asyncio.wait((kicked,), timeout=0.05)
            finally:
                kicked.cancel()

    async def _tick(self) -> None:
        now = time.monotonic()
        await self._flush()
        if now - self._last_move >= 0.2:
            self._last_move = now
            moved = await self._move_due_script(
                keys=[self.keys.delayed, self.keys.priorities],
                args=[self.keys.stream_prefix, GROUP, time.time(), 500],
            )
            if moved:
                self._done = False
        # three heartbeats per lease timeout: one late beat does not lose a lease
        if now - self._last_heartbeat >= min(1.0, self._lease_ms / 3000):
            self._last_heartbeat = now
            await self._claims.heartbeat()
        if len(self._window) <= self._window_size // 2:
            got = await self._claims.refill()
            if not got and now - self._last_reclaim >= min(self._lease_ms / 4000, 5.0):
                self._last_reclaim = now
                got = await self._claims.reclaim()
            if got:
                self.on_ready()
            self._found_empty_at = 0.0 if got else time.monotonic()
        if not self._window and not self._leases and not self._outbox and not self._delayed_out:
            await self._check_done()

    async def _flush(self) -> None:
        outbox, self._outbox = self._outbox, []
        delayed, self._delayed_out = self._delayed_out, []
        # Swap the list out before awaiting: acks that arrive during this flush belong
        # to callbacks whose items the sink flush below has not covered.
        acks, self._acks = self._acks, []
        try:
            await self._send_outbox(outbox, delayed)
            outbox = []
            delayed = []
            mark = self._seed_mark
            if mark is not None and not self._seeded_sent and self._sent >= mark:
                await self._redis.hset(self.keys.meta, "seeded", "1")
                self._seeded_sent = True
            if acks:
                await self._send_acks(acks)
        except BaseException:
            # Whatever did not reach Redis goes back, in order: a lost ack would leave
            # its lease held (and refreshed) forever, and the job would never end.
            self._outbox[:0] = outbox
            self._delayed_out[:0] = delayed
            self._acks[:0] = acks
            raise

    async def _send_outbox(
        self, outbox: list[tuple[bytes, int, bytes]], delayed: list[tuple[float, int, bytes]]
    ) -> None:
        if outbox:
            while outbox:
                chunk = outbox[:_ENQUEUE_BATCH]
                args: list[Any] = [self.keys.stream_prefix, GROUP, self._dedup_bits]
                for fp, priority, payload in chunk:
                    args += (fp, priority, payload)
                added = await self._enqueue(keys=[self.keys.seen, self.keys.priorities], args=args)
                # a chunk that reached Redis must not be sent again if a later one fails
                del outbox[: len(chunk)]
                self._sent += len(chunk)
                self.duplicates += len(chunk) - int(added)  # forced ones count as added
            self.on_ready()
        if delayed:
            await self._redis.zadd(
                self.keys.delayed,
                {f"{priority}|".encode() + payload: due for due, priority, payload in delayed},
            )

    async def _send_acks(self, batch: list[tuple[str, str]]) -> None:
        if self.before_ack is not None:
            await self.before_ack()
        by_stream: dict[str, list[str]] = {}
        for stream, entry_id in batch:
            by_stream.setdefault(stream, []).append(entry_id)
        async with self._redis.pipeline(transaction=True) as pipe:
            for stream, ids in by_stream.items():
                pipe.xack(stream, GROUP, *ids)
                pipe.xdel(stream, *ids)
            pipe.hincrby(self.keys.meta, "done", len(batch))
            await pipe.execute()
        for stream, ids in by_stream.items():
            self._claims.acknowledged(stream, ids)

    async def _check_done(self) -> None:
        reply: list[Any] = await self._remaining_script(
            keys=[self.keys.priorities, self.keys.delayed, self.keys.meta],
            args=[self.keys.stream_prefix],
        )
        pending, delayed, seeded, exists = reply
        if not int(exists):
            self._purged = True  # close() must not re-create keys of the job
            raise UsageError(
                f"job {self.keys.job!r} was purged while this worker was running; stopped"
            )
        self._remote_pending = int(pending) + int(delayed)
        done = bool(seeded) and not self._remote_pending
        if done != self._done:
            self._done = done
            self.on_ready()


def _noop() -> None:
    return None
