"""RetryPolicy is pure: what it retries, how long it waits, and when it gives up."""

from __future__ import annotations

import pytest

from pooledcrawl.http.request import Request
from pooledcrawl.retry.policy import RetryPolicy
from pooledcrawl.settings import Settings

RETRY_STATUSES = frozenset({408, 429, 500, 502, 503, 504, 522, 524})


def policy(**overrides: object) -> RetryPolicy:
    kwargs: dict[str, object] = {
        "max_retries": 3,
        "backoff_base": 0.5,
        "backoff_cap": 30.0,
        "retry_after_cap": 120.0,
        "retry_statuses": RETRY_STATUSES,
    }
    kwargs.update(overrides)
    return RetryPolicy(**kwargs)  # type: ignore[arg-type]


def failed(times: int, **meta: object) -> Request:
    """A request that has failed ``times`` times, each retry charged to its budget."""
    request = Request("http://127.0.0.1/x", meta=dict(meta) or None)
    request.attempts = request.retries = times
    return request


# ---- what is retried ---------------------------------------------------------------


@pytest.mark.parametrize("status", sorted(RETRY_STATUSES))
def test_retryable_statuses_are_retried(status: int) -> None:
    assert policy().for_status(failed(0), status, None) is not None


@pytest.mark.parametrize("status", [400, 401, 403, 404, 410, 451, 501, 505])
def test_other_statuses_are_not(status: int) -> None:
    assert policy().for_status(failed(0), status, None) is None


def test_retryable_errors_are_retried_and_final_ones_are_not() -> None:
    assert policy().for_error(failed(0), True) is not None
    assert policy().for_error(failed(0), False) is None


def test_the_default_settings_retry_what_the_issue_lists() -> None:
    p = RetryPolicy.from_settings(Settings())
    assert p.retry_statuses == RETRY_STATUSES
    assert p.max_retries == 3


# ---- budget ------------------------------------------------------------------------


def test_the_budget_allows_max_retries_then_gives_up() -> None:
    p = policy(max_retries=3)
    decisions = [p.for_status(failed(n), 503, None) for n in range(5)]
    assert [d is not None for d in decisions] == [True, True, True, False, False]
    assert all(d.counts for d in decisions if d is not None)
    assert [p.for_error(failed(n), True) is not None for n in range(5)] == [
        True,
        True,
        True,
        False,
        False,
    ]


def test_zero_retries_means_one_attempt() -> None:
    assert policy(max_retries=0).for_status(failed(0), 503, None) is None
    assert policy(max_retries=0).for_error(failed(0), True) is None


def test_429_never_gives_up_and_never_uses_the_budget() -> None:
    p = policy(max_retries=1)
    for n in (0, 1, 5, 50, 500):
        decision = p.for_status(failed(n), 429, None)
        assert decision is not None
        assert not decision.counts
        assert 0.0 <= decision.delay <= 30.0


def test_a_free_retry_is_immediate_and_skips_the_budget() -> None:
    p = policy(max_retries=0)
    decision = p.for_error(failed(0), True, free=True)
    assert decision is not None
    assert decision.delay == 0.0
    assert not decision.counts
    assert p.for_error(failed(0), False, free=True) is None  # a final error stays final


# ---- meta overrides ----------------------------------------------------------------


def test_meta_max_retries_overrides_the_setting() -> None:
    p = policy(max_retries=3)
    assert p.for_status(failed(1, max_retries=1), 503, None) is None
    assert p.for_error(failed(1, max_retries=1), True) is None
    assert p.for_status(failed(5, max_retries=10), 503, None) is not None
    assert p.for_error(failed(0, max_retries=0), True) is None


def test_a_bad_meta_max_retries_falls_back_to_the_setting() -> None:
    p = policy(max_retries=2)
    assert p.for_error(failed(1, max_retries="lots"), True) is not None
    assert p.for_error(failed(2, max_retries="lots"), True) is None


def test_dont_retry_stops_everything_even_429_and_free_retries() -> None:
    p = policy()
    request = failed(0, dont_retry=True)
    assert p.for_status(request, 503, None) is None
    assert p.for_status(request, 429, 1.0) is None
    assert p.for_error(request, True) is None
    assert p.for_error(request, True, free=True) is None


# ---- backoff -----------------------------------------------------------------------


@pytest.mark.parametrize("attempt", [1, 2, 3, 4, 8, 20])
def test_full_jitter_stays_within_its_bounds(attempt: int) -> None:
    base, cap = 0.5, 3.0
    p = policy(backoff_base=base, backoff_cap=cap)
    high = min(cap, base * 2 ** (attempt - 1))
    samples = [p.backoff(attempt) for _ in range(300)]
    assert all(0.0 <= s <= high for s in samples)
    # full jitter spreads over the whole range (a fixed or half-jitter delay would not)
    assert min(samples) < high * 0.25
    assert max(samples) > high * 0.75


def test_the_delay_grows_with_each_failed_attempt() -> None:
    p = policy(backoff_base=1.0, backoff_cap=1000.0)
    # the upper bound doubles: the largest of many samples shows it
    tops = [
        max(p.for_error(failed(n, max_retries=99), True).delay for _ in range(300))
        for n in range(4)
    ]
    assert tops[0] <= 1.0 < tops[1] <= 2.0 < tops[2] <= 4.0 < tops[3] <= 8.0


def test_retry_after_wins_over_the_backoff() -> None:
    p = policy(backoff_base=100.0, backoff_cap=1000.0)
    for status in (429, 503):
        decision = p.for_status(failed(0), status, 2.0)
        assert decision is not None
        assert decision.delay == 2.0


def test_retry_after_is_capped() -> None:
    p = policy(retry_after_cap=60.0)
    decision = p.for_status(failed(0), 429, 86_400.0)
    assert decision is not None
    assert decision.delay == 60.0


def test_retry_after_zero_means_now() -> None:
    decision = policy().for_status(failed(0), 503, 0.0)
    assert decision is not None
    assert decision.delay == 0.0


def test_from_settings_reads_every_key() -> None:
    s = Settings(
        max_retries=1,
        retry_backoff_base=0.01,
        retry_backoff_cap=0.02,
        retry_after_cap=5.0,
        retry_http_codes=[503],
    )
    p = RetryPolicy.from_settings(s)
    assert p.max_retries == 1
    assert p.retry_statuses == frozenset({503})
    assert p.retry_after_cap == 5.0
    assert all(0.0 <= p.backoff(10) <= 0.02 for _ in range(100))
    assert p.for_status(failed(0), 500, None) is None
