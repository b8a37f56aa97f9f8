"""Redis memory of a distributed job's dedup: bytes per URL in the exact set, and what
the bounded (Bloom filter) mode costs and misses instead.

    python -m benchmarks.redis_dedup --urls 1000000 --redis redis://127.0.0.1:6379/0

Adds ``--urls`` fingerprints to a scratch key in the frontier's own encoding (8 raw
bytes per URL, as the enqueue script stores them) through a pipeline, reads
``MEMORY USAGE`` (exact, ``SAMPLES 0``), then deletes the key. For the Bloom mode,
the false-positive rate is measured by inserting the same URLs through the
frontier's enqueue script into a ``--bloom-bits`` filter and counting the URLs it
wrongly took as seen. Nothing is left behind in Redis.

Target: the exact set costs under 56 bytes per URL (about 48 at a million: an
8-byte member plus Redis's per-entry overhead; a little more at 50,000, where the
hash table's bucket array is relatively larger). The exit status is 1 when missed.
"""

from __future__ import annotations

import argparse
import math
import sys
import time
import uuid
from collections.abc import Sequence

import redis

from pooledcrawl.frontier.redis import _ENQUEUE
from pooledcrawl.http.url import fingerprint

__all__ = ["TARGET_BYTES_PER_URL", "main"]

TARGET_BYTES_PER_URL = 56


def _fingerprints(count: int) -> list[bytes]:
    return [
        fingerprint(f"https://shop.example.com/item/{i}.html").to_bytes(8, "big")
        for i in range(count)
    ]


def exact_set_bytes(client: redis.Redis, fps: list[bytes], batch: int = 10_000) -> int:
    key = f"pcrawl:bench-{uuid.uuid4().hex[:8]}:seen"
    try:
        pipe = client.pipeline(transaction=False)
        for start in range(0, len(fps), batch):
            pipe.sadd(key, *fps[start : start + batch])
        pipe.execute()
        used = client.memory_usage(key, samples=0)
        return int(used or 0)
    finally:
        client.delete(key)


def bloom_false_positives(client: redis.Redis, fps: list[bytes], bits: int) -> tuple[int, int]:
    """(URLs taken as seen though new, bytes of the filter) through the real script.
    Its streams get a placeholder payload and are deleted with the filter."""
    prefix = f"pcrawl:bench-{uuid.uuid4().hex[:8]}:"
    script = client.register_script(_ENQUEUE)
    added = 0
    try:
        for start in range(0, len(fps), 1000):
            args: list[object] = [prefix + "q:", "workers", bits]
            for fp in fps[start : start + 1000]:
                args += (fp, 0, b"-")
            added += int(script(keys=[prefix + "seen", prefix + "priorities"], args=args))
            client.delete(prefix + "q:0")  # only the filter is measured
        return len(fps) - added, int(client.strlen(prefix + "seen"))
    finally:
        client.delete(prefix + "seen", prefix + "priorities", prefix + "q:0")


def bloom_rate(bits: int, urls: int, hashes: int = 7) -> float:
    """The textbook false-positive rate of the last URL added."""
    return float((1 - math.exp(-hashes * urls / bits)) ** hashes)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.redis_dedup")
    parser.add_argument("--urls", type=int, default=1_000_000)
    parser.add_argument("--redis", default="redis://127.0.0.1:6379/0")
    parser.add_argument(
        "--bloom-bits", type=int, default=16_000_000, help="redis_dedup_bits to measure"
    )
    args = parser.parse_args(argv)
    client = redis.Redis.from_url(args.redis)
    started = time.perf_counter()
    fps = _fingerprints(args.urls)
    used = exact_set_bytes(client, fps)
    per_url = used / args.urls
    met = per_url < TARGET_BYTES_PER_URL
    print(
        f"exact set: {args.urls:,} URLs -> {used / 2**20:.1f} MiB "
        f"({per_url:.1f} bytes per URL, {per_url * 1e6 / 2**20:.0f} MiB "
        f"per million)  target < {TARGET_BYTES_PER_URL}: {'met' if met else 'MISSED'}"
    )
    wrong, size = bloom_false_positives(client, fps, args.bloom_bits)
    risk = bloom_rate(args.bloom_bits, args.urls)
    print(
        f"bloom, redis_dedup_bits={args.bloom_bits:,}: {size / 2**20:.1f} MiB whatever the "
        f"job's size; {wrong} of {args.urls:,} new URLs taken as seen "
        f"({wrong / args.urls:.4%}; the last URL's risk {risk:.3%})"
    )
    print(f"({time.perf_counter() - started:.1f} s)", file=sys.stderr)
    client.close()
    return 0 if met else 1


if __name__ == "__main__":
    sys.exit(main())
