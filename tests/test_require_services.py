"""``PCRAWL_REQUIRE_SERVICES=1`` (CI) turns a missing tool from a skip into a failure,
so a test that needs nginx cannot pass CI by not running. Checked by running pytest on
the nginx-dependent smoke test with nginx out of ``PATH``."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def run_smoke_without_nginx(require: bool) -> subprocess.CompletedProcess[str]:
    # CI's coverage options (PYTEST_ADDOPTS) would add a floor this one file can't meet
    dropped = {"PCRAWL_REQUIRE_SERVICES", "PYTEST_ADDOPTS"}
    env = {k: v for k, v in os.environ.items() if k not in dropped}
    # the interpreter's own directory only: no /usr/sbin, so no nginx
    env["PATH"] = str(Path(sys.executable).parent)
    if require:
        env["PCRAWL_REQUIRE_SERVICES"] = "1"
    return subprocess.run(
        [
            sys.executable, "-m", "pytest", "-q", "-rfs", "-p", "no:cacheprovider",
            "-p", "no:randomly", "tests/benchmarks/test_throughput_smoke.py",
            "-k", "test_contender_crawls_every_page_once and nginx",  # a, b and c
        ],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=120,
    )  # fmt: skip


def test_the_nginx_smoke_test_fails_without_nginx_when_services_are_required() -> None:
    proc = run_smoke_without_nginx(require=True)
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert "nginx is not installed and PCRAWL_REQUIRE_SERVICES is set" in proc.stdout
    assert "3 failed" in proc.stdout and "skipped" not in proc.stdout


def test_without_the_variable_it_skips_and_says_why() -> None:
    proc = run_smoke_without_nginx(require=False)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "3 skipped" in proc.stdout and "nginx is not installed" in proc.stdout
