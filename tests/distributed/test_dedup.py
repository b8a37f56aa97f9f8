"""Dedup in Redis: the exact set holds one 8-byte fingerprint per URL, and the bounded
(Bloom filter) mode, alone and in a two-worker crawl. The bytes per URL this costs in
Redis are a benchmark target (``python -m benchmarks.redis_dedup``), not a test."""

from __future__ import annotations

from pathlib import Path

import pytest
import redis.asyncio as aioredis
from dist_helpers import Procs, all_pages, feed_urls, worker_argv
from sites import link_graph_app, serve
from test_redis_frontier import PageSpider, request

from pooledcrawl.distributed.keys import JobKeys
from pooledcrawl.errors import UsageError
from pooledcrawl.frontier.codec import RequestCodec
from pooledcrawl.frontier.redis import RedisFrontier

URLS = 50_000


async def push_all(redis_url: str, job: str, count: int, bits: int) -> RedisFrontier:
    """Push ``count`` distinct URLs through one worker's frontier; returns it closed."""
    client = aioredis.from_url(redis_url)
    frontier = RedisFrontier(
        client,
        job,
        RequestCodec(PageSpider()),
        spider_name="pages",
        worker_id="w",
        dedup_bits=bits,
        window=1,  # claim (almost) nothing: only the enqueue matters here
    )
    await frontier.open()
    try:
        for i in range(count):
            frontier.push(request(i), request(i).url)
    finally:
        await frontier.close()  # sends what is buffered
    assert not frontier._outbox
    return frontier


async def seen_key(redis_url: str, job: str) -> tuple[str, int]:
    """(type, STRLEN or SCARD) of the job's dedup key."""
    client = aioredis.from_url(redis_url)
    try:
        key = JobKeys(job).seen
        kind = (await client.type(key)).decode()
        size = int(await (client.scard(key) if kind == "set" else client.strlen(key)))
        return kind, size
    finally:
        await client.aclose()


async def test_the_exact_set_holds_one_8_byte_fingerprint_per_url(redis_url: str, job: str) -> None:
    frontier = await push_all(redis_url, job, URLS, 0)
    assert frontier.duplicates == 0
    kind, size = await seen_key(redis_url, job)
    assert (kind, size) == ("set", URLS)
    client = aioredis.from_url(redis_url)
    try:
        members = await client.srandmember(JobKeys(job).seen, 200)
    finally:
        await client.aclose()
    # raw 8-byte members, the compact encoding the benchmark measures (not hex, not URLs)
    assert len(members) == 200 and {len(m) for m in members} == {8}
    # pushing the same URLs again adds nothing
    again = await push_all(redis_url, job, 1000, 0)
    assert again.duplicates == 1000
    assert await seen_key(redis_url, job) == ("set", URLS)


async def test_bloom_mode_is_bounded_and_rarely_wrong(redis_url: str, job: str) -> None:
    bits = 1 << 20
    frontier = await push_all(redis_url, job, URLS, bits)
    kind, size = await seen_key(redis_url, job)
    assert kind == "string"
    assert size <= bits // 8  # 128 KiB however many URLs come
    # 50,000 URLs in 2**20 bits with 7 hashes: ~0.02% false positives expected
    assert frontier.duplicates < URLS * 0.001


async def test_two_workers_crawl_with_a_bloom_filter(
    redis_url: str, job: str, procs: Procs, tmp_path: Path
) -> None:
    pages = 1000
    feeds = [tmp_path / "a.jsonl", tmp_path / "b.jsonl"]
    async with serve(link_graph_app(pages)) as base:
        for feed in feeds:
            argv = worker_argv(base, redis_url, job, feed)
            await procs.start([*argv, "-s", "redis_dedup_bits=1048576"])
        assert await procs.wait(60) == [0, 0], procs.log(0) + procs.log(1)
    urls = feed_urls(feeds[0]) + feed_urls(feeds[1])
    assert set(urls) == all_pages(base, pages)
    assert len(urls) == pages  # each page enqueued once by the two workers together
    kind, size = await seen_key(redis_url, job)
    assert kind == "string" and size <= 1048576 // 8


@pytest.mark.parametrize("bits", [-1, 2**32 + 1])
def test_bloom_size_out_of_range_is_a_usage_error(bits: int) -> None:
    client = aioredis.from_url("redis://127.0.0.1:1/0")
    with pytest.raises(UsageError, match="redis_dedup_bits"):
        RedisFrontier(
            client, "j", RequestCodec(PageSpider()), spider_name="p", worker_id="w", dedup_bits=bits
        )


async def test_a_worker_with_another_dedup_mode_is_refused(redis_url: str, job: str) -> None:
    await push_all(redis_url, job, 10, bits=0)  # the job dedups with an exact set
    client = aioredis.from_url(redis_url)
    frontier = RedisFrontier(
        client, job, RequestCodec(PageSpider()), spider_name="pages", worker_id="w2", dedup_bits=64
    )
    with pytest.raises(UsageError, match="redis_dedup_bits=0, this worker has 64"):
        await frontier.open()
    await client.aclose()
