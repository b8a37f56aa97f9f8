"""Pool sizing: Little's Law and the PostgreSQL formula, the
`pooledcrawl size` command, and `pooledcrawl probe` against a loopback server."""

from __future__ import annotations

import argparse
import math

import pytest
from hypothesis import given
from hypothesis import strategies as st
from sites import link_graph_app, serve

from pooledcrawl.cli import main
from pooledcrawl.cli.size import parse_duration, sizing
from pooledcrawl.sizing import PoolSizeError, little_law, pg_pool_size, with_headroom


# ---- the math ---------------------------------------------------------------------------
def test_seed_000_worked_example_500_rps_at_40_ms() -> None:
    need = little_law(500, 0.040)
    assert need == 20
    assert with_headroom(need, 1.3) == 26


def test_seed_003_worked_example_gives_42() -> None:
    assert pg_pool_size(200, 10, 4, 5) == 42


def test_pg_pool_refuses_what_cannot_fit() -> None:
    with pytest.raises(PoolSizeError):
        pg_pool_size(20, 10, 4, 5)  # floor(10/4) - 5 < 1
    with pytest.raises(PoolSizeError):
        pg_pool_size(200, 10, 0, 5)


def test_sizing_spreads_the_per_host_figure_over_hosts() -> None:
    plan = sizing(500, 0.040, headroom=1.3, hosts=3)
    assert (plan.need, plan.per_host, plan.limit) == (20, 26, 78)
    assert plan.h2_connections == 1  # 26 streams fit in one HTTP/2 connection
    assert sizing(5000, 0.040).h2_connections == 3  # 260 streams: three of 100


@given(
    rps=st.floats(min_value=0.1, max_value=1e5),
    latency=st.floats(min_value=1e-4, max_value=30),
    headroom=st.floats(min_value=1, max_value=3),
)
def test_headroom_never_goes_below_the_need(rps: float, latency: float, headroom: float) -> None:
    need = little_law(rps, latency)
    assert need >= 1
    assert abs(need - rps * latency) <= 0.5 or need == 1
    assert need <= with_headroom(need, headroom) <= math.ceil(need * headroom)


@pytest.mark.parametrize(
    ("text", "seconds"), [("40ms", 0.040), ("0.04s", 0.040), ("250us", 250e-6), ("1.5 s", 1.5)]
)
def test_latency_takes_a_unit(text: str, seconds: float) -> None:
    assert parse_duration(text) == pytest.approx(seconds)


@pytest.mark.parametrize("text", ["40", "-1ms", "0ms", "fast", "40 min"])
def test_latency_without_a_sane_unit_is_refused(text: str) -> None:
    with pytest.raises(argparse.ArgumentTypeError):
        parse_duration(text)


# ---- pooledcrawl size -------------------------------------------------------------------
def test_size_prints_the_formula_with_numbers(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["size", "--rps", "500", "--latency", "40ms", "--hosts", "3"]) == 0
    out = capsys.readouterr().out
    assert "500 req/s x 0.040 s = 20" in out
    assert "20 x 1.3 = 26" in out
    assert "TCPConnector(limit_per_host=26)" in out
    assert "TCPConnector(limit=78)" in out
    assert "asyncio.Semaphore(26)" in out
    assert "httpx.Limits(max_connections=78, max_keepalive_connections=26" in out


def test_size_postgres_pool(capsys: pytest.CaptureFixture[str]) -> None:
    args = ["size", "--pg-max-connections", "200", "--reserved", "10", "--workers", "4"]
    assert main([*args, "--max-overflow", "5"]) == 0
    out = capsys.readouterr().out
    assert "floor((200 - 10) / 4) - 5 = floor(47.5) - 5 = 42" in out
    assert "(42 + 5) x 4 workers = 188 of 190" in out


@pytest.mark.parametrize(
    "argv",
    [
        ["size", "--pg-max-connections", "20", "--reserved", "10", "--workers", "4",
         "--max-overflow", "5"],
        ["size", "--rps", "500"],
        ["size"],
        ["size", "--rps", "500", "--latency", "40"],
        ["size", "--rps", "500", "--latency", "40ms", "--headroom", "0.5"],
    ],
)  # fmt: skip
def test_size_user_errors_are_one_line_and_exit_2(
    argv: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("pooledcrawl: error: ")
    assert "\n" not in err and "Traceback" not in err


# ---- pooledcrawl probe (loopback only) --------------------------------------------------
async def _probe(argv: list[str]) -> int:
    import asyncio

    return await asyncio.to_thread(main, argv)


async def test_probe_measures_over_one_kept_alive_connection(
    capsys: pytest.CaptureFixture[str],
) -> None:
    async with serve(link_graph_app(20)) as base:
        code = await _probe(["probe", f"{base}/p/1.html", "-n", "30", "--rps", "200"])
    out = capsys.readouterr().out
    assert code == 0, out
    assert "30 requests, one at a time over one keep-alive connection (HTTP/1.1" in out
    assert "service time  p50" in out
    # the warm-up opened the connection; every timed request reused it
    assert "0 opened; 30 of 30 requests reused one" in out
    assert "statuses      200:30" in out
    assert "Little's Law" in out and "200 req/s x" in out


async def test_probe_of_an_unreachable_server_is_a_usage_error(
    capsys: pytest.CaptureFixture[str], unused_tcp_port: int
) -> None:
    code = await _probe(["probe", f"http://127.0.0.1:{unused_tcp_port}/", "-n", "3"])
    err = capsys.readouterr().err
    assert code == 2
    assert err.startswith("pooledcrawl: error: probe: http://127.0.0.1:")
