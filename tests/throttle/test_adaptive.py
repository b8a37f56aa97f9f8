"""The adaptive controller against a simulated token bucket, with a fake clock."""

from __future__ import annotations

import itertools
import random
from collections.abc import Mapping

import pytest
from sim import TokenBucket, simulate

from pooledcrawl.errors import UsageError
from pooledcrawl.settings import Settings
from pooledcrawl.throttle import AdaptiveConfig, AdaptivePolicy, FixedPolicy, policy_factory

EPOCH = 1_700_000_000.0


def make(start: int = 50, top: int = 200, **kwargs: float) -> AdaptivePolicy:
    return AdaptivePolicy(
        AdaptiveConfig(start=start, max=top, **kwargs),
        wall_clock=lambda: EPOCH,
        rng=random.Random(7),
    )


#: Virtual time at which `paced()` policies have settled; later events come after it.
SETTLED = 10.0


def paced() -> AdaptivePolicy:
    """A policy past slow start, pacing at about 300/s with a 100 ms round trip."""
    policy = make()
    simulate(policy, limit=300, latency=0.1, duration=SETTLED, links=10)
    assert policy.rate is not None and 250 < policy.rate < 350
    return policy


def average_rate(policy: AdaptivePolicy, since: int) -> float:
    rates = [row[2] for row in policy.snapshot()["timeline"] if row[0] >= since]
    assert rates and all(rate is not None for rate in rates)
    return float(sum(rates)) / len(rates)


# ---- convergence ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("limit", "latency", "start", "top"),
    [(300, 0.1, 50, 200), (50, 0.3, 30, 100), (1000, 0.02, 16, 64), (20, 0.15, 8, 64)],
)
def test_converges_within_10_percent_of_the_limit(
    limit: float, latency: float, start: int, top: int
) -> None:
    for seed in (1, 2):
        policy = make(start, top)
        result = simulate(policy, limit=limit, latency=latency, duration=30, seed=seed, links=10)
        assert abs(result.ok_rate(10, 30) - limit) <= 0.1 * limit
        assert abs(average_rate(policy, 10) - limit) <= 0.1 * limit
        # about one probing 429 every second or two: a bigger share at low rates
        assert result.share_429_between(10, 30) < (0.02 if limit >= 100 else 0.05)
        assert result.time_to_reach(0.9 * limit) is not None


def test_a_cold_start_burst_settles_too() -> None:
    # every slot filled at t=0 (many start URLs): most of the first burst is refused
    policy = make(50, 200)
    result = simulate(policy, limit=300, latency=0.1, duration=20)
    assert abs(result.ok_rate(5, 20) - 300) <= 30
    assert result.share_429_between(5, 20) < 0.03


def test_follows_a_limit_that_halves_then_doubles() -> None:
    def limit(t: float) -> float:
        return 300.0 if t < 15 or t >= 30 else 150.0

    policy = make(50, 200)
    result = simulate(policy, limit=limit, latency=0.1, duration=45, links=10)
    assert abs(result.ok_rate(20, 30) - 150) <= 15
    assert result.share_429_between(20, 30) < 0.03
    assert abs(result.ok_rate(38, 45) - 300) <= 30


def test_concurrency_is_rate_times_latency_with_headroom() -> None:
    policy = make(50, 200)
    simulate(policy, limit=300, latency=0.1, duration=20, links=10)
    assert policy.rate is not None
    expected = policy.rate * 0.1 * policy.config.headroom
    assert abs(policy.limit() - expected) <= 0.15 * expected + 1
    # the 429s came back in a millisecond: they must not drag the latency estimate down
    assert policy.snapshot()["latency_ms"] == pytest.approx(100, rel=0.1)


def test_concurrency_is_capped_by_max_and_at_least_one() -> None:
    policy = make(4, 8)
    simulate(policy, limit=10_000, latency=0.1, duration=5, links=10)
    assert policy.limit() == 8
    slow = make(4, 8)
    simulate(slow, limit=2, latency=0.05, duration=20, links=10)
    assert slow.limit() >= 1
    assert slow.rate is not None and slow.rate < 3


# ---- slow start and cuts --------------------------------------------------------------


def test_slow_start_grows_concurrency_until_the_first_429() -> None:
    policy = make(4, 64)
    assert policy.limit() == 4 and policy.ready_at() == 0.0 and policy.rate is None
    t = 0.0
    for _ in range(3):  # three saturated round trips
        for _ in range(policy.limit()):
            policy.on_send(t)
        t += 0.1
        for _ in range(policy.limit()):
            policy.on_response(t, 200, 0.1, {})
    policy.on_send(t)
    assert policy.limit() == 32
    assert policy.rate is None  # no rate learned yet


def test_slow_start_spreads_a_windows_sends_over_the_round_trip() -> None:
    policy = make(10, 64)
    policy.on_send(0.0)
    policy.on_response(0.1, 200, 0.1, {})  # the round trip is known: 100 ms
    sends = []
    t = 0.1
    for _ in range(12):
        t = max(t, policy.ready_at())
        policy.on_send(t)
        sends.append(t)
    gaps = [b - a for a, b in itertools.pairwise(sends)]
    # slow_start x 10 in flight per 100 ms: one send every 5 ms, after a catch-up
    # at twice that pace (never a bunch: a server may judge the gaps)
    assert gaps[:4] == pytest.approx([0.0025] * 4)
    assert gaps[4:] == pytest.approx([0.005] * len(gaps[4:]))
    full = make(10, 10)  # nothing left to grow into: not paced at all
    full.on_send(0.0)
    full.on_response(0.1, 200, 0.1, {})
    full.on_send(0.1)
    full.on_send(0.1)
    assert full.ready_at() == 0.0


def test_slow_start_does_not_grow_when_the_domain_is_not_busy() -> None:
    policy = make(4, 64)
    t = 0.0
    for _ in range(5):
        policy.on_send(t)
        t += 0.1
        policy.on_response(t, 200, 0.1, {})
    assert policy.limit() == 4


def test_a_burst_of_429s_from_one_window_is_one_cut() -> None:
    policy = paced()
    cuts, rate = policy.cuts, policy.rate
    t = SETTLED + 1.0
    for _ in range(40):
        policy.on_send(t)
    for i in range(40):  # all refused, fast, within one window
        policy.on_response(t + 0.001 + i * 0.0001, 429, 0.001, {})
    assert policy.cuts == cuts + 1
    assert policy.rate is not None and rate is not None and policy.rate < rate
    after = policy.rate
    # a 429 for a request sent before that cut arrives later: still the same signal
    policy.on_response(t + 0.5, 429, 0.5, {})
    assert policy.cuts == cuts + 1 and policy.rate == after


def test_a_429_after_the_window_is_a_new_signal() -> None:
    policy = paced()
    t = SETTLED + 1.0
    policy.on_send(t)
    policy.on_response(t + 0.001, 429, 0.001, {})
    cuts = policy.cuts
    later = t + policy.window + 0.01
    policy.on_send(later)
    policy.on_response(later + 0.001, 429, 0.001, {})
    assert policy.cuts == cuts + 1


def test_the_cut_is_deeper_when_more_is_refused() -> None:
    rates = []
    for refused in (1, 30):  # of every 40 paced requests
        policy = paced()
        t = SETTLED + 1.0
        policy.on_send(t)
        policy.on_response(t + 0.001, 429, 0.001, {})  # a cut: counting starts here
        first_cut = t + 0.001
        for i in range(40):
            t = max(t, policy.ready_at())
            policy.on_send(t)
            status = 429 if i * refused // 40 != (i + 1) * refused // 40 else 200
            policy.on_response(t + 0.001, status, 0.001 if status == 429 else 0.1, {})
        cut_at = max(t, first_cut + policy.window) + 0.01
        policy.on_send(cut_at)
        policy.on_response(cut_at + 0.001, 429, 0.001, {})
        assert policy.rate is not None
        rates.append(policy.rate)
    mild, harsh = rates
    assert harsh < 0.5 * mild


def test_paced_sends_are_spaced_by_the_rate() -> None:
    # paced by a server's hint, before any refusal says how it counts: a late
    # wake-up is caught up at twice the pace (never as a bunch), then one send
    # per interval
    policy = make()
    policy.on_send(SETTLED)
    hint = {"RateLimit-Policy": '"p";q=300;w=1', "RateLimit": '"p";r=300;t=1'}
    policy.on_response(SETTLED + 0.1, 200, 0.1, hint)
    t = SETTLED + 1.0
    sends: list[tuple[float, float]] = []
    for _ in range(100):
        t = max(t, policy.ready_at())
        policy.on_send(t)
        assert policy.rate is not None
        sends.append((t, policy.rate))
    catch_up = 2 * int(policy.config.burst)  # `burst` intervals, at half an interval
    for (before, rate), (when, _) in itertools.pairwise(sends[: catch_up + 1]):
        assert when - before == pytest.approx(0.5 / rate, rel=0.01)
    for (before, rate), (when, _) in itertools.pairwise(sends[catch_up:]):
        assert when - before == pytest.approx(1.0 / rate, rel=0.1)  # then one per interval


# ---- server hints ---------------------------------------------------------------------


def test_retry_after_pauses_the_whole_domain() -> None:
    policy = make()
    policy.on_send(0.0)
    policy.on_response(0.05, 429, 0.05, {"Retry-After": "7"})
    pause = policy.ready_at()
    assert 0.05 + 7 <= pause <= 0.05 + 7 + 0.7  # small jitter, never shorter
    assert policy.pauses == 1


def test_retry_after_is_capped() -> None:
    policy = make(retry_after_cap=30.0)
    policy.on_send(0.0)
    policy.on_response(0.05, 429, 0.05, {"Retry-After": "86400"})
    assert policy.ready_at() <= 0.05 + 30.0


def test_retry_after_as_an_http_date_uses_the_servers_date() -> None:
    policy = make()
    headers = {
        "Retry-After": "Wed, 21 Oct 2015 07:28:10 GMT",
        "Date": "Wed, 21 Oct 2015 07:28:00 GMT",  # our clock is years off: no matter
    }
    policy.on_send(0.0)
    policy.on_response(1.0, 429, 1.0, headers)
    assert 11.0 <= policy.ready_at() <= 12.0


def test_503_with_retry_after_or_fast_counts_like_a_429_and_a_slow_one_does_not() -> None:
    with_hint, fast, as_429, slow = paced(), paced(), paced(), paced()
    before = {id(p): (p.cuts, p.blocks, p.rate) for p in (with_hint, fast, as_429, slow)}
    t = SETTLED + 1.0
    for policy, status, latency, headers in (
        (with_hint, 503, 0.1, {"Retry-After": "1"}),  # the server says how long: a block
        (fast, 503, 0.001, {}),  # refused at once: a limiter (nginx limit_conn)
        (as_429, 429, 0.001, {}),
        (slow, 503, 0.1, {}),  # as slow as a page: a struggling backend, not a limit
    ):
        for i in range(5 if policy is not with_hint else 1):
            policy.on_send(t + 0.01 * i)
            policy.on_response(t + 0.01 * i + latency, status, latency, headers)
    assert with_hint.blocks == before[id(with_hint)][1] + 1 and with_hint.ready_at() >= t + 1.1
    assert (fast.cuts, fast.blocks, fast.rate) == (as_429.cuts, as_429.blocks, as_429.rate)
    assert fast.rate is not None and fast.rate < before[id(fast)][2]  # type: ignore[operator]
    assert (slow.cuts, slow.blocks, slow.rate) == before[id(slow)]
    assert slow.ready_at() < t + 1.0


def test_ratelimit_policy_sets_the_pace_directly() -> None:
    policy = make()
    policy.on_send(0.0)
    policy.on_response(0.1, 200, 0.1, {"RateLimit-Policy": '"default";q=100;w=10'})
    assert policy.rate == pytest.approx(10.0)
    assert policy.limit() == 2  # 10/s x 0.1 s x headroom


def test_ratelimit_remaining_and_reset_set_the_pace() -> None:
    policy = make()
    policy.on_send(0.0)
    policy.on_response(0.1, 200, 0.1, {"RateLimit": '"default";r=50;t=25'})
    assert policy.rate == pytest.approx(2.0)


def test_exhausted_x_ratelimit_pauses_until_the_reset() -> None:
    policy = make()
    policy.on_send(0.0)
    headers = {
        "X-RateLimit-Limit": "60",
        "X-RateLimit-Remaining": "0",
        "X-RateLimit-Reset": str(int(EPOCH + 20)),  # a Unix time, as GitHub sends it
    }
    policy.on_response(0.1, 200, 0.1, headers)
    assert 20.1 <= policy.ready_at() <= 22.1


def test_hints_keep_a_simulated_crawl_free_of_429s() -> None:
    def headers(now: float, accepted: bool, bucket: TokenBucket) -> Mapping[str, str]:
        return {"RateLimit-Policy": '"p";q=600;w=60'}  # 10/s, what the bucket allows

    policy = make(50, 200)
    result = simulate(policy, limit=10, latency=0.1, duration=30, headers=headers, links=10)
    assert result.share_429_between(5, 30) == 0.0
    assert abs(result.ok_rate(5, 30) - 10) <= 1


def test_429s_despite_hints_scale_the_hinted_rate_down() -> None:
    def headers(now: float, accepted: bool, bucket: TokenBucket) -> Mapping[str, str]:
        return {"RateLimit-Policy": '"p";q=20;w=1'}  # claims 20/s, enforces 10/s

    policy = make(50, 200)
    result = simulate(policy, limit=10, latency=0.1, duration=30, headers=headers, links=10)
    assert result.share_429_between(10, 30) < 0.1
    assert policy.rate is not None and policy.rate < 15


def test_malformed_hints_are_ignored_and_counted() -> None:
    policy = make()
    policy.on_send(0.0)
    policy.on_response(
        0.1, 429, 0.1, {"Retry-After": "soon", "RateLimit-Policy": "q=;w", "X-RateLimit-Limit": "x"}
    )
    assert policy.bad_hints == 3
    assert policy.ready_at() < 1.0  # no pause from a bad Retry-After
    assert policy.snapshot()["bad_hints"] == 3


# ---- stats ----------------------------------------------------------------------------


def test_snapshot_has_the_keys_users_plot() -> None:
    policy = make(50, 200)
    result = simulate(policy, limit=300, latency=0.1, duration=10, links=10)
    snap = policy.snapshot()
    assert snap["concurrency"] == policy.limit()
    assert snap["rate"] == pytest.approx(policy.rate, abs=0.01)
    assert snap["status_counts"]["429"] == result.n429
    assert snap["status_counts"]["200"] == result.ok
    timeline = snap["timeline"]
    assert [row[0] for row in timeline] == list(range(len(timeline)))
    assert len(timeline) in (10, 11)
    assert sum(row[3] for row in timeline) == result.ok
    assert sum(row[4] for row in timeline) == result.n429
    assert all(len(row) == 5 and row[1] >= 1 for row in timeline)


def test_an_idle_gap_is_filled_with_empty_rows() -> None:
    policy = make()
    policy.on_send(0.0)
    policy.on_response(0.1, 200, 0.1, {})
    policy.on_send(4.5)
    policy.on_response(4.6, 200, 0.1, {})
    rows = policy.snapshot()["timeline"]
    assert [row[0] for row in rows] == [0, 1, 2, 3, 4]
    assert [row[3] for row in rows] == [1, 0, 0, 0, 1]


# ---- choosing the policy from settings --------------------------------------------------


def test_policy_factory_follows_autothrottle() -> None:
    off = policy_factory(Settings(autothrottle=False, domain_concurrency=7))("a.example")
    assert isinstance(off, FixedPolicy) and off.limit() == 7
    on = policy_factory(
        Settings(concurrency=256, domain_concurrency=50, domain_concurrency_max=200)
    )("a.example")
    assert isinstance(on, AdaptivePolicy)
    assert on.limit() == 50 and on.config.max == 200


def test_policy_factory_caps_the_ceiling_at_limit_per_host() -> None:
    make_policy = policy_factory(
        Settings(concurrency=256, domain_concurrency=50, connector_limit_per_host=40)
    )
    policy = make_policy("a.example")
    assert isinstance(policy, AdaptivePolicy)
    assert policy.config.max == 40 and policy.limit() == 40


def test_bad_autothrottle_settings_are_usage_errors() -> None:
    with pytest.raises(UsageError, match="autothrottle_probe"):
        Settings.layered(("command line", {"autothrottle_probe": "1.5"}))
    with pytest.raises(UsageError, match="autothrottle_slow_start"):
        Settings.layered(("command line", {"autothrottle_slow_start": "1"}))


def test_hints_that_start_late_are_still_picked_up() -> None:
    policy = make(8, 64)
    t = 0.0
    for _ in range(200):  # a domain that sends no rate-limit fields at first
        policy.on_send(t)
        policy.on_response(t + 0.05, 200, 0.05, {"Server": "x"})
        t += 0.01
    assert policy.rate is None
    for _ in range(100):
        policy.on_send(t)
        policy.on_response(t + 0.05, 200, 0.05, {"RateLimit-Policy": '"p";q=50;w=10'})
        t += 0.01
    assert policy.rate == pytest.approx(5.0)
