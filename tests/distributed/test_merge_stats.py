"""How the stats of a job's workers add up (pure: no Redis)."""

from __future__ import annotations

from pooledcrawl.distributed.worker import merge_stats


def test_counters_add_maxima_take_the_max_and_maps_merge() -> None:
    merged = merge_stats(
        [
            {"pages": 3, "elapsed_s": 2.0, "max_inflight": 4, "status_counts": {"200": 3}},
            {"pages": 5, "elapsed_s": 4.0, "max_inflight": 2, "status_counts": {"200": 4}},
        ]
    )
    assert merged["pages"] == 8
    assert merged["elapsed_s"] == 4.0
    assert merged["max_inflight"] == 4
    assert merged["status_counts"] == {"200": 7}
    assert merged["pages_per_s"] == 2.0


def test_one_worker_stopping_short_is_the_jobs_finish_reason() -> None:
    finished = {"finish_reason": "finished"}
    assert merge_stats([finished, finished])["finish_reason"] == "finished"
    interrupted = {"finish_reason": "interrupted (SIGINT)"}
    assert merge_stats([finished, interrupted])["finish_reason"] == "interrupted (SIGINT)"
