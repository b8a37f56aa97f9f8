"""The live broad-crawl benchmark in small: addresses for contenders that crawl by
address, and a run of a few hosts where every contender crawls every page or is
reported skipped with a reason. Correctness only, never timing."""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import shutil
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))  # the repo's `benchmarks`

from benchmarks.broad_live import host_address, run_live


def test_each_host_has_a_loopback_address_of_its_own() -> None:
    addresses = [host_address(n) for n in range(70_000)]
    assert len(set(addresses)) == len(addresses)
    for address in addresses:
        first, *rest = (int(part) for part in address.split("."))
        assert first == 127 and all(0 <= part <= 255 for part in rest)
        assert rest[-1] not in (0, 255)
    assert "127.0.0.1" not in addresses


@pytest.mark.slow
@pytest.mark.timeout(180)
def test_a_small_live_run_crawls_every_page_or_says_why_not(tmp_path: Path) -> None:
    from benchmarks.dnsmasq import dnsmasq_available

    if shutil.which("nginx") is None or not dnsmasq_available():
        if os.environ.get("PCRAWL_REQUIRE_SERVICES"):
            pytest.fail("nginx or dnsmasq is missing and PCRAWL_REQUIRE_SERVICES is set")
        pytest.skip("nginx or dnsmasq is missing")
    out = tmp_path / "broad.json"
    args = argparse.Namespace(hosts=[3, 6], only="pooledcrawl,crawlee", runs=1, out=out)
    assert run_live(args) == 0
    result = json.loads(out.read_text())
    # a run that crawled fewer pages than 11 per host is not a row: it raises, or
    # (an optional contender) is reported skipped
    assert set(result["rows"]["pooledcrawl"]) == {"3", "6"}
    if importlib.util.find_spec("crawlee") is None:
        assert "not installed" in result["summary"]["skipped"]["crawlee"]
    else:
        assert result["summary"]["skipped"] == {}
        assert set(result["rows"]["crawlee"]) == {"3", "6"}
