"""Fixtures for distributed-job tests.

Every test uses a job named by ``unique_name`` and purges it at the end, so tests
can share the real Redis at 127.0.0.1:6379 and run in parallel. Child processes
and private redis-servers are killed at the end, even when the test fails.
"""

from __future__ import annotations

import os
import shutil
import sys
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))

from dist_helpers import Procs, RedisServer, purge


@pytest.fixture
def job(redis_url: str, unique_name: str) -> Iterator[str]:
    """A test-unique job on the shared Redis, purged afterwards."""
    yield unique_name
    purge(redis_url, unique_name)


@pytest.fixture
async def procs(tmp_path: Path) -> AsyncIterator[Procs]:
    group = Procs(tmp_path)
    try:
        yield group
    finally:
        await group.kill_all()


@pytest.fixture
def redis_server(tmp_path: Path, redis_url: str) -> Iterator[RedisServer]:
    """A redis-server of this test's own, for tests that stop it (the shared one being
    reachable says Redis is installed); killed at the end."""
    if shutil.which("redis-server") is None or shutil.which("redis-cli") is None:
        message = "redis-server and redis-cli are not installed"
        if os.environ.get("PCRAWL_REQUIRE_SERVICES"):
            pytest.fail(message + " and PCRAWL_REQUIRE_SERVICES is set")
        pytest.skip(message)
    directory = tmp_path / "redis"
    directory.mkdir()
    server = RedisServer(directory)
    server.start()
    try:
        yield server
    finally:
        server.kill()
