"""The metrics' pure parts: histograms, timelines, per-domain counters (no I/O, no clock)."""

from __future__ import annotations

import math
import random

import pytest
from hypothesis import given
from hypothesis import strategies as st

from pooledcrawl.metrics import CrawlMetrics, DomainMetrics, Histogram, Timeline, Timing
from pooledcrawl.metrics.summary import domain_table


def _exact(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[max(1, math.ceil(q * len(ordered))) - 1]


# ---- Histogram --------------------------------------------------------------------------
@given(
    st.lists(st.floats(min_value=1e-5, max_value=100.0), min_size=1, max_size=400),
    st.sampled_from([0.5, 0.9, 0.95, 0.99, 1.0]),
)
def test_quantiles_are_within_two_percent(values: list[float], q: float) -> None:
    hist = Histogram()
    for value in values:
        hist.add(value)
    assert hist.quantile(q) == pytest.approx(_exact(values, q), rel=0.021)
    assert hist.count == len(values)
    assert hist.mean == pytest.approx(sum(values) / len(values))


def test_zeros_count_as_zero_and_memory_stays_small() -> None:
    hist = Histogram()
    for _ in range(90):
        hist.add(0.0)
    rnd = random.Random(1)
    for _ in range(100_000):
        hist.add(rnd.lognormvariate(math.log(0.05), 0.5))
    assert hist.quantile(0.0001) == 0.0
    assert len(hist._buckets) < 200  # a million samples would not need more
    assert Histogram().quantile(0.95) == 0.0


def test_histograms_merge_by_adding() -> None:
    a, b, both = Histogram(), Histogram(), Histogram()
    for i, value in enumerate(x / 1000 for x in range(1, 2000)):
        (a if i % 2 else b).add(value)
        both.add(value)
    a.merge(b)
    assert (a.count, a.quantile(0.5), a.quantile(0.95)) == (
        both.count,
        both.quantile(0.5),
        both.quantile(0.95),
    )


# ---- Timeline ---------------------------------------------------------------------------
def test_timeline_coarsens_but_keeps_totals_and_peaks() -> None:
    line = Timeline(("n", "peak"), peaks=("peak",), interval=1.0, max_rows=8)
    for second in range(100):
        line.add(second + 0.5, 0, 2)
        line.peak(second + 0.5, 1, second % 7)
    data = line.to_dict()
    assert len(data["rows"]) <= 8
    assert data["interval_s"] == 16.0  # 1 s doubled until 100 s fit in 8 rows
    assert sum(row[1] for row in data["rows"]) == 200
    assert max(row[2] for row in data["rows"]) == 6
    assert [row[0] for row in data["rows"]] == [16.0 * i for i in range(len(data["rows"]))]


def test_timeline_latency_columns() -> None:
    line = Timeline(("n",), latency=True)
    for ms in range(1, 101):
        line.add(0.2, 0)
        line.latency(0.2, ms / 1000)
    (row,) = line.to_dict()["rows"]
    columns = line.to_dict()["columns"]
    assert columns == ["t", "n", "p50_ms", "p95_ms"]
    assert row[2] == pytest.approx(50, rel=0.03) and row[3] == pytest.approx(95, rel=0.03)


# ---- DomainMetrics ----------------------------------------------------------------------
def test_domain_metrics_from_timings() -> None:
    m = DomainMetrics()
    # 9 responses on reused connections and one that opened a connection
    for i in range(10):
        timing = Timing(
            headers=0.010, body=0.020, conn_wait=0.001, reused=int(i > 0), opened=int(i == 0)
        )
        m.on_response(1.0 + i * 0.1, 200, 0.004, 0.021, timing, inflight=3)
    m.on_response(2.0, 429, 0.0, 0.005, Timing(headers=0.005, body=0.005, reused=1), inflight=1)
    m.on_error(2.1, 0.0, 0.03, disconnect=True, inflight=2)
    snap = m.snapshot()
    assert snap["pages"] == 10
    assert snap["reuse_ratio"] == pytest.approx(10 / 11, abs=0.001)
    assert snap["connections_opened"] == 1
    assert snap["server_disconnects"] == 1
    assert snap["transport_errors"] == 1
    assert snap["latency_headers_p50_ms"] == pytest.approx(10, rel=0.03)
    assert snap["latency_body_p50_ms"] == pytest.approx(20, rel=0.03)
    # pool wait: parked on the slot (4 ms) plus queued for a connection (1 ms)
    assert snap["pool_wait_p95_ms"] == pytest.approx(5, rel=0.03)
    # 10 pages between the first request's start (0.979 s) and the last response (2.1 s)
    assert snap["pages_per_s"] == pytest.approx(10 / (2.1 - 0.979), rel=0.02)
    assert snap["started_s"] == pytest.approx(0.979)
    activity = snap["activity"]
    assert activity["columns"] == ["t", "responses", "ok", "n429", "inflight"]
    # rows from the domain's first second, not from the crawl's start
    assert [row[0] for row in activity["rows"]] == [1.0, 2.0]
    assert [row[4] for row in activity["rows"]] == [3, 2]


def test_hidden_disconnects_and_missing_timings() -> None:
    m = DomainMetrics()
    m.on_response(0.5, 200, 0.0, 0.01, Timing(reused=1, opened=1, disconnects=1), inflight=1)
    m.on_response(0.6, 200, 0.002, 0.01, None, inflight=1)  # a transport that measured nothing
    snap = m.snapshot()
    assert snap["server_disconnects"] == 1
    assert snap["reuse_ratio"] == 0.5
    assert snap["latency_body_p95_ms"] == pytest.approx(10, rel=0.03)
    assert DomainMetrics().snapshot()["reuse_ratio"] is None


def test_crawl_metrics_timeline_counts_status_classes() -> None:
    m = CrawlMetrics(started=100.0)
    for status in (200, 200, 301, 404, 429, 503):
        m.on_response("a:1", 100.5, status, 0.0, 0.01, None, 1, 4)
    m.on_error("b:2", 101.5, 0.0, 0.01, disconnect=False, inflight=1, total_inflight=2)
    m.sample(101.9, items=7)
    data = m.timeline.to_dict()
    columns = data["columns"]
    first, second = (dict(zip(columns, row, strict=True)) for row in data["rows"])
    assert (first["responses"], first["pages"], first["s3xx"], first["s4xx"]) == (6, 2, 1, 1)
    assert (first["s429"], first["s5xx"], first["inflight"]) == (1, 1, 4)
    assert (second["errors"], second["items"]) == (1, 7)
    assert set(m.snapshot()) == {"a:1", "b:2"}


def test_summary_table_lists_busiest_domains_first() -> None:
    m = CrawlMetrics(started=0.0)
    for _ in range(3):
        m.on_response("busy.example", 1.0, 200, 0.0, 0.01, Timing(reused=1), 1, 1)
    m.on_response("quiet.example", 1.0, 200, 0.0, 0.01, Timing(opened=1), 1, 1)
    lines = domain_table(m.snapshot())
    assert lines[0].split()[:3] == ["domain", "pages", "pages/s"]
    assert lines[1].split()[0] == "busy.example"
    assert "100%" in lines[1] and "0%" in lines[2]
    assert domain_table({"x": {"concurrency": 4}}) == []  # nothing measured, no table


def test_timeline_of_a_late_domain_holds_only_its_own_rows() -> None:
    # a domain first met an hour into the crawl: its rows start there, not at t = 0
    line = Timeline(("n", "peak"), peaks=("peak",), interval=1.0, max_rows=8)
    for t in (3600.2, 3600.7, 3602.5):
        line.add(t, 0)
        line.peak(t, 1, t - 3600)
    assert len(line) == 3
    rows = line.to_dict()["rows"]
    assert [row[0] for row in rows] == [3600.0, 3601.0, 3602.0]
    assert [row[1] for row in rows] == [2, 0, 1]
    # coarsening stays aligned on the crawl's grid, and totals and peaks survive it
    for t in range(3603, 3620):
        line.add(float(t), 0)
    d = line.to_dict()
    assert len(line) <= 8
    assert all(row[0] % d["interval_s"] == 0 for row in d["rows"])
    assert sum(row[1] for row in d["rows"]) == 3 + 17
    assert d["rows"][0][0] <= 3600.0 < d["rows"][0][0] + d["interval_s"]
