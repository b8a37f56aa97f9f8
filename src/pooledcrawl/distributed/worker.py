"""Running crawl workers against a Redis frontier, and reading or purging a job.

``crawl --frontier redis://... --workers N`` starts N ``worker`` processes on this
machine and merges their stats and feeds. ``worker`` joins a job from any machine.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import socket
import subprocess
import sys
import tempfile
import uuid
from collections import Counter
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

import orjson
import redis.asyncio as aioredis
from redis.exceptions import RedisError

from pooledcrawl.distributed.limits import SharedLimits
from pooledcrawl.engine.engine import Engine
from pooledcrawl.errors import UsageError
from pooledcrawl.frontier.codec import RequestCodec
from pooledcrawl.frontier.redis import RedisFrontier
from pooledcrawl.redis.keys import GROUP, JobKeys
from pooledcrawl.runner import CrawlJob, run_job
from pooledcrawl.settings import Settings
from pooledcrawl.spider import Spider

__all__ = [
    "job_status",
    "merge_stats",
    "purge_job",
    "run_local_workers",
    "run_worker",
    "worker_command",
]

_PUBLISH_EVERY = 2.0
#: a worker with a heartbeat this recent (seconds) counts as alive
_ALIVE_WITHIN = 10


def connect(url: str) -> aioredis.Redis:
    if not url.startswith(("redis://", "rediss://", "unix://")):
        raise UsageError(f"--frontier must be a redis:// URL, got {url!r}")
    return aioredis.from_url(url, socket_timeout=10, socket_connect_timeout=5)


def new_worker_id() -> str:
    return f"{socket.gethostname()}-{os.getpid()}-{uuid.uuid4().hex[:6]}"


def run_worker(job: CrawlJob, frontier_url: str, job_name: str) -> tuple[dict[str, Any], int]:
    """Run one worker of ``job_name`` in this process until the job is finished."""
    worker_id = new_worker_id()
    client = connect(frontier_url)
    settings = job.settings
    shared = SharedLimits(
        client, job_name, worker_id, job_cap=_job_cap(settings), ceiling=settings.domain_max
    )
    keys = JobKeys(job_name)

    def setup(spider: Spider) -> dict[str, Any]:
        frontier = RedisFrontier(
            client,
            job_name,
            RequestCodec(spider),
            spider_name=spider.name,
            worker_id=worker_id,
            lease_timeout=job.settings.lease_timeout,
            dedup_bits=job.settings.redis_dedup_bits,
            # enough claimed to keep every slot of this worker busy, and no more, so
            # that on a small job a second worker finds work too
            window=max(32, 4 * settings.concurrency),
            max_leased=max(256, 16 * settings.concurrency),
        )
        return {
            "frontier": frontier,
            "policy_wrapper": shared.factory,
            "attached": [shared],
            "background": [
                lambda: _sync_limits(shared, engines[0]),
                lambda: _publish_stats(client, keys, worker_id, engines[0]),
            ],
        }

    engines: list[Engine] = []

    # the frontier and the shared limits bind themselves to the engine (ext.Bound)
    stats, code = run_job(replace(job, engine_setup=setup), on_engine=engines.append)
    data = stats.to_dict()
    frontier = engines[0].frontier
    if isinstance(frontier, RedisFrontier):
        data.update(frontier.stats())
    data["worker"] = worker_id
    asyncio.run(_publish_final(frontier_url, keys, worker_id, data))
    return data, code


def _job_cap(settings: Settings) -> int | None:
    """A per-domain cap set above one worker's ``concurrency``: it holds for the job."""
    cap = settings.domain_concurrency_max if settings.autothrottle else settings.domain_concurrency
    return cap if cap is not None and cap > settings.domain_max else None


async def _sync_limits(shared: SharedLimits, engine: Engine) -> None:
    try:
        # ends by itself once the crawl is over, even if its cancellation is lost
        await shared.run(stop=lambda: engine.dispatcher.closed)
    finally:
        await shared.release()


async def _publish_stats(
    client: aioredis.Redis, keys: JobKeys, worker_id: str, engine: Engine
) -> None:
    """Keep this worker's stats readable by ``jobs status`` while it runs."""
    while not engine.dispatcher.closed:
        await asyncio.sleep(_PUBLISH_EVERY)
        with contextlib.suppress(RedisError):
            await client.set(
                keys.worker_stats(worker_id), orjson.dumps(engine.stats.to_dict()), ex=86400
            )


async def _publish_final(url: str, keys: JobKeys, worker_id: str, data: dict[str, Any]) -> None:
    client = connect(url)
    try:
        await client.set(keys.worker_stats(worker_id), orjson.dumps(data), ex=86400)
    except RedisError:
        pass
    finally:
        await client.aclose()


# ---- several local workers ---------------------------------------------------------
def run_local_workers(
    argv: Sequence[str], workers: int, outputs: list[tuple[str, bool]], stats_path: str | None
) -> tuple[dict[str, Any], int]:
    """Start ``workers`` worker processes with ``argv`` and merge what they produce.

    File outputs are written per worker (``items.w0.jsonl``...) and concatenated
    into the requested file at the end; other outputs (databases) are shared.
    """
    with tempfile.TemporaryDirectory(prefix="pcrawl-workers-") as tmp:
        procs: list[subprocess.Popen[bytes]] = []
        parts: list[list[tuple[str, str, bool]]] = []
        stats_files: list[Path] = []
        for index in range(workers):
            worker_argv, worker_parts = worker_command(argv, index, workers, outputs)
            stats_file = Path(tmp) / f"worker-{index}.json"
            stats_files.append(stats_file)
            worker_argv += ["--stats", str(stats_file)]
            parts.append(worker_parts)
            # Own sessions: a Ctrl-C on the terminal reaches this process only, and it
            # passes each signal on once, so the first one stops the workers gently
            # and a second one at once, as for a single crawl.
            procs.append(subprocess.Popen(worker_argv, start_new_session=True))
        codes = _wait_forwarding_signals(procs)
        merged = merge_stats([_read_json(path) for path in stats_files])
    _concatenate(outputs, parts)
    merged["workers"] = workers
    bad = [code for code in codes if code != 0]
    return merged, (bad[0] if bad else 0)


def worker_command(
    argv: Sequence[str], index: int, workers: int, outputs: list[tuple[str, bool]]
) -> tuple[list[str], list[tuple[str, str, bool]]]:
    """The command line of local worker ``index``, and its part of each file output."""
    # pg_workers first: a value the user gave in argv still wins (later -s wins)
    command = [sys.executable, "-m", "pooledcrawl", "worker", "-s", f"pg_workers={workers}"]
    command += argv
    worker_parts: list[tuple[str, str, bool]] = []
    for target, overwrite in outputs:
        if _is_file_output(target):
            part = _part_name(target, index)
            worker_parts.append((target, part, overwrite))
            command += ["-O", part]
        else:
            command += ["-o", target]
    return command, worker_parts


def _wait_forwarding_signals(procs: list[subprocess.Popen[bytes]]) -> list[int]:
    def forward(signum: int, _frame: Any) -> None:
        for proc in procs:
            if proc.poll() is None:
                proc.send_signal(signum)

    previous = {sig: signal.signal(sig, forward) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        return [proc.wait() for proc in procs]
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def _is_file_output(target: str) -> bool:
    return target != "-" and "://" not in target


def _part_name(target: str, index: int) -> str:
    path = Path(target)
    return str(path.with_name(f"{path.stem}.w{index}{path.suffix}"))


def _concatenate(outputs: list[tuple[str, bool]], parts: list[list[tuple[str, str, bool]]]) -> None:
    for target, overwrite in outputs:
        if not _is_file_output(target):
            continue
        with open(target, "wb" if overwrite else "ab") as out:
            header: bytes | None = None
            for worker_parts in parts:
                for owner, part, _ in worker_parts:
                    if owner != target or not os.path.exists(part):
                        continue
                    data = Path(part).read_bytes()
                    if target.endswith(".csv") and data:
                        first, _, rest = data.partition(b"\n")
                        if header is None:
                            header = first
                            out.write(first + b"\n")
                        data = rest
                    out.write(data)
                    os.unlink(part)


def _read_json(path: Path) -> dict[str, Any]:
    try:
        data: dict[str, Any] = orjson.loads(path.read_bytes())
        return data
    except (OSError, orjson.JSONDecodeError):
        return {}


def merge_stats(parts: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """Add up the workers' stats: counters sum, maxima take the max, maps merge."""
    merged: dict[str, Any] = {}
    for part in parts:
        for key, value in part.items():
            if key in ("max_inflight", "elapsed_s"):
                merged[key] = max(merged.get(key, 0), value)
            elif isinstance(value, bool) or key == "pages_per_s":
                continue
            elif isinstance(value, int | float):
                merged[key] = merged.get(key, 0) + value
            elif isinstance(value, dict) and key in ("status_counts", "errors", "http_versions"):
                counter: Counter[str] = Counter(merged.get(key, {}))
                counter.update(value)
                merged[key] = dict(counter)
            elif key == "domains" and isinstance(value, dict):
                merged.setdefault("domains_by_worker", []).append(value)
            elif key not in merged:
                merged[key] = value
    if merged.get("elapsed_s"):
        merged["pages_per_s"] = round(merged.get("pages", 0) / merged["elapsed_s"], 1)
    # one worker's reason to stop short (Ctrl-C, max_pages...) is the job's
    reasons = [part.get("finish_reason") or "finished" for part in parts]
    merged["finish_reason"] = next((r for r in reasons if r != "finished"), "finished")
    return merged


# ---- jobs status / purge -----------------------------------------------------------
async def job_status(url: str, job: str) -> dict[str, Any]:
    client = connect(url)
    keys = JobKeys(job)
    try:
        raw_meta: dict[Any, Any] = await client.hgetall(keys.meta)
        meta = {_text(k): _text(v) for k, v in raw_meta.items()}
        if not meta:
            raise UsageError(f"no job {job!r} on {_masked(url)}")
        raw_priorities: list[Any] = await client.zrange(keys.priorities, 0, -1)
        priorities = [int(p) for p in raw_priorities]
        entries = leased = 0
        for priority in priorities:
            stream = keys.stream(priority)
            entries += await client.xlen(stream)
            with contextlib.suppress(RedisError):
                leased += int((await client.xpending(stream, GROUP))["pending"])
        delayed = await client.zcard(keys.delayed)
        now, _ = await client.time()  # heartbeats are in the server's time
        alive = await client.zcount(keys.workers, now - _ALIVE_WITHIN, "+inf")
        failed = 0
        async for key in client.scan_iter(match=keys.worker_stats("*"), count=500):
            raw = await client.get(key)
            if raw:
                failed += int(orjson.loads(raw).get("failed", 0))
        domains: dict[str, dict[str, Any]] = {}
        async for key in client.scan_iter(match=keys.domains + "*", count=500):
            name = _text(key)[len(keys.domains) :]
            if name.endswith((":votes", ":holdings", ":bucket")):
                continue
            raw_state: dict[Any, Any] = await client.hgetall(key)
            state = {_text(k): _text(v) for k, v in raw_state.items()}
            holdings: dict[Any, Any] = await client.hgetall(keys.domain(name) + ":holdings")
            in_use = sum(int(_text(v).split(":")[0]) for v in holdings.values())
            domains[name] = {
                "limit": state.get("limit"),
                "rate": state.get("rate") or None,
                "granted": in_use,
            }
        return {
            "job": job,
            "spider": meta.get("spider"),
            "pending": entries - leased + delayed,
            "leased": leased,
            "delayed": delayed,
            "done": int(meta.get("done", 0)),
            "failed": failed,
            "workers_alive": alive,
            "seeded": bool(meta.get("seeded")),
            "domains": domains,
        }
    except RedisError as exc:
        raise UsageError(f"cannot reach Redis at {_masked(url)}: {exc}") from None
    finally:
        await client.aclose()


async def purge_job(url: str, job: str, *, force: bool = False) -> int:
    """Delete every key of ``job``; returns how many were deleted. A job with live
    workers is refused unless ``force``: they would stop with an error."""
    client = connect(url)
    keys = JobKeys(job)
    deleted = 0
    try:
        if not force:
            now, _ = await client.time()
            alive = int(await client.zcount(keys.workers, now - _ALIVE_WITHIN, "+inf"))
            if alive:
                raise UsageError(
                    f"job {job!r} has {alive} live worker(s) (a heartbeat in the last "
                    f"{_ALIVE_WITHIN} s): stop them first, or purge with --force"
                )
        batch: list[bytes] = []
        async for key in client.scan_iter(match=keys.pattern, count=1000):
            batch.append(key)
            if len(batch) >= 500:
                deleted += await client.unlink(*batch)
                batch.clear()
        if batch:
            deleted += await client.unlink(*batch)
        return deleted
    except RedisError as exc:
        raise UsageError(f"cannot reach Redis at {_masked(url)}: {exc}") from None
    finally:
        await client.aclose()


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value


def _masked(url: str) -> str:
    if "@" not in url:
        return url
    scheme, _, rest = url.partition("://")
    return f"{scheme}://***@{rest.rsplit('@', 1)[1]}"
