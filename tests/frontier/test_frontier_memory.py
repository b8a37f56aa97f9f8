"""Bounded memory: a million pending requests on disk, a window of them in memory."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import orjson

PENDING = 1_000_000
LIMIT_MB = 100

# Runs in its own interpreter so that the peak RSS is the frontier's alone.
SCRIPT = """
import asyncio, sys
import orjson
from pooledcrawl import Request, Spider
from pooledcrawl.frontier.sqlite import SQLiteFrontier

class Big(Spider):
    name = "big"
    def parse(self, response):
        return None

def peak_rss_mb():
    # VmHWM belongs to this process image; ru_maxrss would carry over the peak of
    # the (possibly large) pytest process this one was forked from.
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    raise RuntimeError("no VmHWM in /proc/self/status")

async def main(jobdir, n):
    spider = Big()
    frontier = SQLiteFrontier(jobdir, spider)
    await frontier.open()
    parse = spider.parse
    for i in range(n):
        url = f"http://site{i % 50}.example/category/{i % 97}/item-{i}.html"
        frontier.push(Request(url, parse), url)
        if i % 100_000 == 0:
            await frontier.checkpoint()
    duplicates = sum(not frontier.push(Request(u, parse), u) for u in
                     (f"http://site{i % 50}.example/category/{i % 97}/item-{i}.html"
                      for i in range(0, n, 1000)))
    served = []
    for _ in range(5000):
        request = frontier.pop(0.0)
        served.append(request.url)
        frontier.ack(request)
    await frontier.checkpoint()
    pending = len(frontier)
    await frontier.close()
    print(orjson.dumps({
        "peak_rss_mb": peak_rss_mb(),
        "pending": pending, "duplicates": duplicates, "served": served[:3],
    }).decode())

asyncio.run(main(sys.argv[1], int(sys.argv[2])))
"""


def test_a_million_pending_requests_stay_under_100_mb(tmp_path: Path) -> None:
    proc = subprocess.run(
        [sys.executable, "-c", SCRIPT, str(tmp_path / "job"), str(PENDING)],
        capture_output=True,
        timeout=600,
    )
    assert proc.returncode == 0, proc.stderr.decode()
    result = orjson.loads(proc.stdout)
    assert result["pending"] == PENDING - 5000
    assert result["duplicates"] == PENDING // 1000  # dedup still exact at this size
    assert result["served"] == [
        f"http://site{i % 50}.example/category/{i % 97}/item-{i}.html" for i in range(3)
    ]
    assert result["peak_rss_mb"] < LIMIT_MB, result
