"""Helpers for distributed-job tests: worker processes, feeds, a private redis-server.

(Not named conftest: test folders share ``sys.path``, so a helper module needs a
name of its own to be importable.)
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import orjson
import pytest
import redis
from aiohttp import web
from sites import link_graph_page

HERE = Path(__file__).resolve().parent
SPIDER = str(HERE / "graph_spider.py")


def purge(url: str, job: str) -> None:
    client = redis.Redis.from_url(url)
    try:
        keys = list(client.scan_iter(match=f"pcrawl:{job}:*", count=1000))
        if keys:
            client.unlink(*keys)
    finally:
        client.close()


def worker_argv(
    base: str, frontier: str, job: str, out: Path, *extra: str, spider: str = SPIDER
) -> list[str]:
    """``pooledcrawl worker`` over the link graph at ``base``, its feed in ``out``."""
    return [
        *(sys.executable, "-m", "pooledcrawl", "worker", spider),
        *("-a", f"start={base}/p/0.html", "--frontier", frontier, "--job", job),
        *("-O", str(out), "--stats", str(out.with_suffix(".stats.json"))),
        *("--log-level", "WARNING"),
        *extra,
    ]


class Procs:
    """Child processes started by a test; every one is killed when the test ends."""

    def __init__(self, tmp: Path) -> None:
        self._tmp = tmp
        self.procs: list[asyncio.subprocess.Process] = []
        self.logs: list[Path] = []

    async def start(self, argv: Sequence[str]) -> asyncio.subprocess.Process:
        log = self._tmp / f"proc{len(self.procs)}.log"
        with log.open("wb") as handle:
            proc = await asyncio.create_subprocess_exec(
                *argv, stdout=handle, stderr=subprocess.STDOUT
            )
        self.procs.append(proc)
        self.logs.append(log)
        return proc

    def log(self, index: int) -> str:
        return self.logs[index].read_text(errors="replace")

    async def wait(self, within: float, procs: Sequence[int] | None = None) -> list[int]:
        """Exit codes of ``procs`` (default: all); fails with their logs on a timeout."""
        chosen = list(range(len(self.procs))) if procs is None else list(procs)
        try:
            async with asyncio.timeout(within):
                return [await self.procs[i].wait() for i in chosen]
        except TimeoutError:
            logs = "\n".join(f"--- proc {i}:\n{self.log(i)[-2000:]}" for i in chosen)
            stacks = "\n".join(_stack(self.procs[i].pid) for i in chosen)
            pytest.fail(f"processes still running after {within}s\n{logs}\n{stacks}")

    async def kill_all(self) -> None:
        """SIGKILL every process still running, and what it started: the workers of
        ``crawl --workers N`` run in sessions of their own and would outlive it."""
        for proc in self.procs:
            if proc.returncode is None:
                for pid in [*_descendants(proc.pid), proc.pid]:
                    with contextlib.suppress(ProcessLookupError):
                        os.kill(pid, signal.SIGKILL)
                await proc.wait()


def _descendants(pid: int) -> list[int]:
    """Child processes of ``pid``, recursively (Linux /proc)."""
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        parent = int(stat.rsplit(")", 1)[1].split()[1])
        children.setdefault(parent, []).append(int(entry.name))
    found: list[int] = []
    stack = [pid]
    while stack:
        for child in children.get(stack.pop(), []):
            found.append(child)
            stack.append(child)
    return found


def _stack(pid: int) -> str:
    """What a hung process is doing, when py-spy is installed."""
    if shutil.which("py-spy") is None:
        return ""
    dump = subprocess.run(
        ["py-spy", "dump", "--locals", "--pid", str(pid)],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    return f"--- py-spy dump of {pid}:\n{dump.stdout[-8000:]}{dump.stderr[-500:]}"


def feed_urls(path: Path) -> list[str]:
    """The ``url`` of every complete line of a JSON-lines feed (a worker killed with
    -9 may leave a torn last line)."""
    urls: list[str] = []
    if not path.exists():
        return urls
    for line in path.read_bytes().splitlines():
        with contextlib.suppress(orjson.JSONDecodeError):
            urls.append(orjson.loads(line)["url"])
    return urls


def line_count(paths: Sequence[Path]) -> int:
    total = 0
    for path in paths:
        with contextlib.suppress(FileNotFoundError):
            total += path.read_bytes().count(b"\n")
    return total


def read_stats(out: Path) -> dict[str, Any]:
    data: dict[str, Any] = orjson.loads(out.with_suffix(".stats.json").read_bytes())
    return data


def all_pages(base: str, pages: int) -> set[str]:
    return {f"{base}/p/{i}.html" for i in range(pages)}


async def wait_for(predicate: Any, within: float, what: str) -> None:
    """Poll ``predicate`` until it is true; fail naming ``what`` after ``within`` s."""
    deadline = time.monotonic() + within
    while not predicate():
        if time.monotonic() > deadline:
            pytest.fail(f"timed out waiting for {what}")
        await asyncio.sleep(0.02)


# ---- a private redis-server, for tests that stop it ---------------------------------
def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


class RedisServer:
    """``redis-server`` on a spare loopback port with an append-only file in ``dir``:
    stopping it with SHUTDOWN and starting it again keeps the data."""

    def __init__(self, directory: Path) -> None:
        self.dir = directory
        self.port = free_port()
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        self.proc = subprocess.Popen(
            [
                *("redis-server", "--port", str(self.port), "--bind", "127.0.0.1"),
                *("--save", "", "--appendonly", "yes", "--dir", str(self.dir)),
                *("--logfile", str(self.dir / "redis.log")),
            ],
            stdout=subprocess.DEVNULL,
        )
        client = redis.Redis(host="127.0.0.1", port=self.port)
        deadline = time.monotonic() + 10
        try:
            while True:
                try:
                    if client.ping():
                        return
                except redis.exceptions.RedisError:
                    # the port is taken by another program, or it is still loading
                    if self.proc.poll() is not None or time.monotonic() > deadline:
                        raise
                time.sleep(0.05)
        finally:
            client.close()

    def shutdown(self) -> None:
        """SHUTDOWN (which writes the append-only file), then wait for the exit."""
        subprocess.run(
            ["redis-cli", "-p", str(self.port), "shutdown"],
            check=False,
            capture_output=True,
            timeout=10,
        )
        assert self.proc is not None
        self.proc.wait(timeout=10)

    def kill(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()


def slow_graph(pages: int, delay: float) -> web.Application:
    """The tests' link graph with every response held ``delay`` seconds."""

    async def page(request: web.Request) -> web.Response:
        await asyncio.sleep(delay)
        i = int(request.match_info["i"])
        return web.Response(text=link_graph_page(i, pages), content_type="text/html")

    app = web.Application()
    app.router.add_get(r"/p/{i:\d+}.html", page)
    return app
