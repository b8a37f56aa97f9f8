"""Shared fixtures: real Redis and PostgreSQL, skipped only when unreachable and
``PCRAWL_REQUIRE_SERVICES`` is unset (CI sets it, so there they fail instead)."""

from __future__ import annotations

import os
import socket
import sys
import uuid
from pathlib import Path

import pytest
from hypothesis import settings as hypothesis_settings

sys.path.insert(0, str(Path(__file__).parent))  # lets test folders import `sites`

# A busy CI machine (2 cores, several jobs) can stall any example past Hypothesis's
# 200 ms default deadline: CI (PCRAWL_REQUIRE_SERVICES=1) runs with no deadline.
hypothesis_settings.register_profile("ci", deadline=None, print_blob=True)
if os.environ.get("PCRAWL_REQUIRE_SERVICES") or os.environ.get("CI"):
    hypothesis_settings.load_profile("ci")

REDIS_HOST, REDIS_PORT = "127.0.0.1", 6379
PG_HOST, PG_PORT = "127.0.0.1", 5432


def _reachable(host: str, port: int) -> bool:
    try:
        with socket.create_connection((host, port), timeout=1.0):
            return True
    except OSError:
        return False


def require_service(name: str, host: str, port: int) -> None:
    if _reachable(host, port):
        return
    message = f"{name} is not reachable on {host}:{port}"
    if os.environ.get("PCRAWL_REQUIRE_SERVICES"):
        pytest.fail(message + " and PCRAWL_REQUIRE_SERVICES is set")
    pytest.skip(message)


@pytest.fixture
def redis_url() -> str:
    require_service("Redis", REDIS_HOST, REDIS_PORT)
    return f"redis://{REDIS_HOST}:{REDIS_PORT}/0"


@pytest.fixture
def postgres_dsn() -> str:
    require_service("PostgreSQL", PG_HOST, PG_PORT)
    return f"postgresql://postgres@{PG_HOST}:{PG_PORT}/test"


@pytest.fixture
def unique_name() -> str:
    """A test-unique name for Redis key prefixes, tables, jobs."""
    return "t" + uuid.uuid4().hex[:12]
