"""Shared fixtures: real Redis and PostgreSQL, skipped only when unreachable and
``PCRAWL_REQUIRE_SERVICES`` is unset (CI sets it, so there they fail instead)."""

from __future__ import annotations

import asyncio
import fnmatch
import os
import socket
import sys
import uuid
from collections.abc import Callable
from pathlib import Path

import pytest
from hypothesis import HealthCheck
from hypothesis import settings as hypothesis_settings

from pooledcrawl.engine.eventloop import new_event_loop

sys.path.insert(0, str(Path(__file__).parent))  # lets test folders import `sites`

# A busy machine (2 cores, several jobs) can stall any example past Hypothesis's
# 200 ms default deadline, and make input generation look "too slow": neither says
# anything about the code under test. Everywhere, the too_slow health check is off;
# CI (PCRAWL_REQUIRE_SERVICES=1) also runs with no deadline.
hypothesis_settings.register_profile("local", suppress_health_check=[HealthCheck.too_slow])
hypothesis_settings.register_profile(
    "ci", deadline=None, print_blob=True, suppress_health_check=[HealthCheck.too_slow]
)
ci = os.environ.get("PCRAWL_REQUIRE_SERVICES") or os.environ.get("CI")
hypothesis_settings.load_profile("ci" if ci else "local")


def pytest_asyncio_loop_factories(
    config: pytest.Config, item: pytest.Item
) -> dict[str, Callable[[], asyncio.AbstractEventLoop]]:
    """Async tests run on the loop the CLI and ``run()`` crawl on (timers on time)."""
    return {"crawl-loop": new_event_loop}


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


#: Tests that take seconds (subprocesses, kill-and-resume, real servers, many Hypothesis
#: examples, headless Chromium): marked ``slow``, so ``pytest -m "not slow"`` runs the
#: rest in under a minute. Patterns are matched against the test's node id.
SLOW = (
    "tests/benchmarks/*",
    "tests/cli/*",
    "tests/distributed/*",
    "tests/frontier/test_kill_resume.py::*",
    "tests/frontier/test_frontier_memory.py::*",
    "tests/hostile/test_shutdown.py::*",
    "tests/http/test_url.py::test_canonicalize_*",
    "tests/http/test_url.py::test_equivalent_forms_*",
    "tests/http/test_url_fastpath.py::*",
    "tests/http/test_response_fastpaths.py::*",
    "tests/hygiene/test_identity_dedup.py::test_close_on_errors_from_the_command_line",
    "tests/items/test_items_cli.py::*",
    "tests/items/test_postgres_sink.py::*",
    "tests/items/test_pipelines.py::test_a_*_s*_the_crawl*",
    "tests/metrics/test_pool_metrics_crawl.py::*",
    "tests/metrics/test_metrics_pure.py::test_zeros_count_as_zero_*",
    "tests/proxy/test_proxy_live.py::*",
    "tests/report/test_html_report.py::*",
    "tests/test_run.py::test_*_from_the_cli",
    "tests/test_run.py::test_the_same_spider_from_a_script_*",
    "tests/test_smoke.py::*",
    "tests/test_require_services.py::*",
    "tests/throttle/test_adaptive.py::test_converges_*",
    "tests/throttle/test_adaptive.py::test_follows_*",
    "tests/throttle/test_hints.py::test_well_formed_*",
    "tests/throttle/test_throttle_crawl.py::*",
    "tests/transport/test_http2_transport.py::*",
    "tests/engine/test_engine_crawl.py::test_500_page_*",
    "tests/hostile/test_hostile_crawl.py::*",
    "tests/hostile/test_engine_failures.py::test_other_requests_flow_while_a_retry_waits",
    "tests/corpus/test_corpus.py::*",
    "tests/docs/test_docs_site.py::*",
    "tests/docs/test_examples.py::test_toolkit_script_*",
    "tests/docs/test_examples.py::test_docs_site_example_*",
    "tests/docs/test_tutorial.py::test_demo_serve_*",
    "tests/frontier/test_fingerprints_across_url_change.py::test_urls_canonical_before_*",
    "tests/http/test_browser_oracle.py::*",
    "tests/http/test_url.py::test_canonical_or_raise_raises_only_invalid_url",
    "tests/middleware/test_httpcache.py::test_a_cached_crawl_reruns_*",
    "tests/middleware/test_httpcache.py::test_refresh_refetches_*",
    "tests/proxy/test_proxy_retry_credentials.py::*",
    "tests/proxy/test_sessions_live.py::*",
    "tests/spiders/test_real_docs.py::*",
    "tests/spiders/test_sitemap.py::test_cli_*",
    "tests/throttle/test_limiter_families.py::*",
)


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    for item in items:
        if any(fnmatch.fnmatchcase(item.nodeid, pattern) for pattern in SLOW):
            item.add_marker(pytest.mark.slow)
