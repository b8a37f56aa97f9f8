"""What one worker of the Redis frontier has claimed from its job's streams.

Entries are read through one consumer group per stream, so a claimed entry sits in
the group's pending list under the worker's name until it is acknowledged. The
worker keeps its own claims fresh with XCLAIM (its heartbeat), and takes over
those of a worker that stopped acknowledging with XAUTOCLAIM once they have been
idle for the lease timeout.
"""

from __future__ import annotations

from collections import deque
from typing import Any

import redis.asyncio as aioredis

from pooledcrawl.frontier.codec import RequestCodec
from pooledcrawl.http.request import Request
from pooledcrawl.redis import frontier_scripts as scripts
from pooledcrawl.redis.keys import GROUP, JobKeys

__all__ = ["Claims"]

#: XAUTOCLAIM calls per stream and reclaim round
_RECLAIM_CALLS = 4


class Claims:
    """The claimed entries waiting to be handed out (``window``, up to ``window_size``)
    and the ids of every entry claimed and not acknowledged yet (``lease_ids``)."""

    def __init__(
        self,
        client: aioredis.Redis,
        keys: JobKeys,
        codec: RequestCodec,
        *,
        worker_id: str,
        lease_ms: int,
        window_size: int,
    ) -> None:
        self._redis = client
        self._keys = keys
        self._codec = codec
        self._worker = worker_id
        self._lease_ms = lease_ms
        self._window_size = window_size
        self._beat = client.register_script(scripts.BEAT)
        #: (request, stream, entry id) claimed and not handed to the engine yet
        self.window: deque[tuple[Request, str, str]] = deque()
        #: stream -> ids of the entries this worker holds (handed out or not)
        self.lease_ids: dict[str, set[str]] = {}
        self._cursors: dict[str, str] = {}
        self.reclaimed = 0

    def acknowledged(self, stream: str, ids: list[str]) -> None:
        own = self.lease_ids.get(stream)
        if own is not None:
            own.difference_update(ids)

    async def release(self) -> None:
        """Hand requests this worker claimed but never completed back to the job, now,
        instead of leaving them to be reclaimed after the lease timeout."""
        if not self.window:
            return
        async with self._redis.pipeline(transaction=True) as pipe:
            for request, stream, entry_id in self.window:
                pipe.xadd(stream, {"r": self._codec.encode(request)})
                pipe.xack(stream, GROUP, entry_id)
                pipe.xdel(stream, entry_id)
            await pipe.execute()
        self.window.clear()

    async def streams(self) -> list[tuple[int, str]]:
        raw: list[Any] = await self._redis.zrevrange(self._keys.priorities, 0, -1)
        priorities = [int(p) for p in raw]
        return [(p, self._keys.stream(p)) for p in priorities]

    async def refill(self) -> int:
        streams = await self.streams()
        if not streams:
            return 0
        want = self._window_size - len(self.window)
        reply = await self._redis.xreadgroup(
            GROUP, self._worker, {name: ">" for _, name in streams}, count=want
        )
        return self.accept(streams, reply or [])

    def accept(self, streams: list[tuple[int, str]], reply: Any) -> int:
        order = {name: rank for rank, (_, name) in enumerate(streams)}
        entries: list[tuple[int, str, str, bytes]] = []
        for stream_name, messages in reply:
            name = stream_name.decode() if isinstance(stream_name, bytes) else stream_name
            for entry_id, fields in messages:
                if not fields:
                    continue
                eid = entry_id.decode() if isinstance(entry_id, bytes) else entry_id
                entries.append((order.get(name, 0), name, eid, fields[b"r"]))
        entries.sort(key=lambda e: e[0])
        for _, name, eid, payload in entries:
            self.window.append((self._codec.decode(payload), name, eid))
            self.lease_ids.setdefault(name, set()).add(eid)
        return len(entries)

    async def reclaim(self) -> int:
        """Take over leases of workers that stopped acknowledging (they died)."""
        got = 0
        streams = await self.streams()
        for _, name in streams:
            # XAUTOCLAIM scans at most 10 x count pending entries per call: resume where
            # the last scan stopped, or a dead worker's leases behind many live ones
            # would never be reached
            cursor = self._cursors.get(name, "0-0")
            for _ in range(_RECLAIM_CALLS):
                want = self._window_size - len(self.window)
                if want <= 0:
                    return got
                result = await self._redis.xautoclaim(
                    name, GROUP, self._worker, self._lease_ms, cursor, count=want
                )
                cursor = _text(result[0])
                claimed = [(eid, fields) for eid, fields in result[1] if fields]
                if claimed:
                    self.reclaimed += len(claimed)
                    got += self.accept(streams, [(name, claimed)])
                if cursor == "0-0":
                    break
            self._cursors[name] = cursor
        return got

    async def heartbeat(self) -> None:
        """Say this worker is alive, and keep its own leases from looking idle."""
        async with self._redis.pipeline(transaction=False) as pipe:
            await self._beat(keys=[self._keys.workers], args=[self._worker], client=pipe)
            for stream, ids in self.lease_ids.items():
                if ids:
                    pipe.xclaim(stream, GROUP, self._worker, 0, list(ids), justid=True)
            await pipe.execute()


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value
