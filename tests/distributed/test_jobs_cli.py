"""``pooledcrawl jobs status|purge`` against the real Redis, and joining a job with the
wrong spider."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import orjson
import pytest
import redis.asyncio as aioredis
from dist_helpers import HERE, Procs, line_count, slow_graph, wait_for, worker_argv
from sites import serve

from pooledcrawl.cli import main
from pooledcrawl.distributed.worker import job_status
from pooledcrawl.errors import UsageError


async def cli(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    """Run the command line in a thread (it starts its own event loop)."""
    code = await asyncio.to_thread(main, list(argv))
    out, err = capsys.readouterr()
    return code, out, err


async def test_status_and_purge(
    redis_url: str, job: str, procs: Procs, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    pages = 120
    code, out, err = await cli(capsys, "jobs", "status", job, "--frontier", redis_url)
    assert (code, out) == (2, "")
    assert err == f"pooledcrawl: error: no job {job!r} on {redis_url}\n"

    async with serve(slow_graph(pages, 0.05)) as base:
        argv = worker_argv(base, redis_url, job, tmp_path / "items.jsonl", "--concurrency", "4")
        await procs.start(argv)

        async def live_status() -> dict[str, Any]:
            try:
                return await job_status(redis_url, job)
            except UsageError:  # the worker has not created the job yet
                return {}

        async with asyncio.timeout(30):
            while True:
                live = await live_status()
                if live and live["leased"] and live["workers_alive"] == 1 and live["domains"]:
                    break
                await asyncio.sleep(0.05)
        assert live["spider"] == "graph"
        # while it runs, the table shows the live worker and the domain
        code, out, _ = await cli(capsys, "jobs", "status", job, "--frontier", redis_url)
        assert code == 0
        assert out.startswith(f"job {job} (spider graph)\n")
        assert "  workers_alive 1\n" in out
        host = base.removeprefix("http://")
        assert any(line.split()[0] == host for line in out.splitlines()[7:]), out

        # another spider cannot join this job
        other = [
            *worker_argv(base, redis_url, job, tmp_path / "other.jsonl")[:4],
            str(HERE / "other_spider.py"),
            *worker_argv(base, redis_url, job, tmp_path / "other.jsonl")[5:],
        ]
        await procs.start(other)
        assert await procs.wait(30, [1]) == [2]
        assert "belongs to spider 'graph', not 'other'" in procs.log(1)
        assert "Traceback" not in procs.log(1)
        assert await procs.wait(60, [0]) == [0], procs.log(0)

    code, out, _ = await cli(capsys, "jobs", "status", job, "--frontier", redis_url, "--json")
    assert code == 0
    status = orjson.loads(out)
    assert {k: status[k] for k in ("pending", "leased", "delayed", "done", "failed")} == {
        "pending": 0,
        "leased": 0,
        "delayed": 0,
        "done": pages,
        "failed": 0,
    }
    assert status["workers_alive"] == 0 and status["seeded"] is True
    assert status["domains"][host]["limit"] == "4"

    code, out, _ = await cli(capsys, "jobs", "purge", job, "--frontier", redis_url)
    assert code == 0
    assert out.startswith(f"purged job {job}: ")
    assert int(out.split(": ")[1].split()[0]) >= 5
    client = aioredis.from_url(redis_url)
    try:
        assert [key async for key in client.scan_iter(match=f"pcrawl:{job}:*")] == []
    finally:
        await client.aclose()
    code, _, err = await cli(capsys, "jobs", "status", job, "--frontier", redis_url, "--json")
    assert code == 2 and "no job" in err
    code, out, _ = await cli(capsys, "jobs", "purge", job, "--frontier", redis_url)
    assert (code, out) == (0, f"purged job {job}: 0 keys deleted\n")


@pytest.mark.parametrize(
    ("frontier", "message"),
    [
        ("redis://127.0.0.1:1/0", "cannot reach Redis at redis://127.0.0.1:1/0"),
        ("http://127.0.0.1:6379", "--frontier must be a redis:// URL"),
    ],
)
async def test_status_errors_are_one_line(
    capsys: pytest.CaptureFixture[str], frontier: str, message: str
) -> None:
    code, out, err = await cli(capsys, "jobs", "status", "x", "--frontier", frontier)
    assert (code, out) == (2, "")
    assert message in err
    assert err.count("\n") == 1


async def test_purging_a_running_job_stops_its_workers(
    redis_url: str, job: str, procs: Procs, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    feed = tmp_path / "items.jsonl"
    async with serve(slow_graph(60, 0.05)) as base:
        await procs.start(worker_argv(base, redis_url, job, feed, "--concurrency", "2"))
        await wait_for(lambda: line_count([feed]) >= 5, 30, "5 items")
        code, _, err = await cli(capsys, "jobs", "purge", job, "--frontier", redis_url)
        assert code == 2
        assert "has 1 live worker(s)" in err and "--force" in err
        code, _, _ = await cli(capsys, "jobs", "purge", job, "--frontier", redis_url, "--force")
        assert code == 0
        assert await procs.wait(30) == [2], procs.log(0)
    assert f"job {job!r} was purged while this worker was running" in procs.log(0)
    assert "Traceback" not in procs.log(0)


@pytest.mark.parametrize("name", ["shop:eu", "shop*", ".x", "a b"])
async def test_a_job_name_that_is_not_a_plain_prefix_is_refused(
    capsys: pytest.CaptureFixture[str], redis_url: str, name: str
) -> None:
    # "shop:eu" would be purged with job "shop"; "*" would match other jobs' keys
    for argv in (
        ("jobs", "purge", name, "--frontier", redis_url),
        ("crawl", str(HERE / "graph_spider.py"), "--frontier", redis_url, "--job", name),
    ):
        code, out, err = await cli(capsys, *argv)
        assert (code, out) == (2, ""), err
        assert f"job name {name!r}" in err
        assert err.count("\n") == 1
