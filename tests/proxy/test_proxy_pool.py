"""ProxyPool: least-loaded choice, per-proxy caps, benching with full-jitter backoff,
probation, and the all-down spell. Pure: a fake clock (plain floats) and a fake rng."""

from __future__ import annotations

import random

import pytest

from pooledcrawl.proxy.endpoint import Proxy, ProxyConfig
from pooledcrawl.proxy.pool import ProxyPool


class MaxRandom(random.Random):
    """uniform(a, b) -> b: the longest rest full jitter may give."""

    def uniform(self, a: float, b: float) -> float:
        return b


def proxies(n: int) -> list[Proxy]:
    return [Proxy("http", "127.0.0.1", 8000 + i, "user", f"secret{i}") for i in range(n)]


def make_pool(n: int = 3, cap: int | None = 2, **kw: object) -> ProxyPool:
    options: dict[str, object] = {"kind": "static", "cap": cap, "backoff_base": 1.0}
    options.update(kw)
    return ProxyPool(proxies(n), **options)  # type: ignore[arg-type]


def test_choice_is_least_loaded_and_respects_the_cap() -> None:
    pool = make_pool(3, cap=2)
    taken = []
    for _ in range(6):
        entry = pool.choose(0.0)
        assert entry is not None
        pool.acquire(entry)
        taken.append(entry.label)
    # round robin falls out of least-loaded: each proxy got two
    assert sorted(taken.count(e.label) for e in pool.entries) == [2, 2, 2]
    assert all(e.inflight == 2 for e in pool.entries)
    assert pool.choose(0.0) is None
    assert not pool.available(0.0)
    assert pool.wake_at(0.0) is None  # only a request finishing frees room
    pool.succeeded(pool.entries[1], sent_at=0.0)
    assert pool.choose(0.0) is pool.entries[1]


def test_no_cap_means_unlimited() -> None:
    pool = make_pool(1, cap=None)
    entry = pool.entries[0]
    for _ in range(1000):
        pool.acquire(entry)
    assert pool.choose(0.0) is entry


def test_avoid_prefers_other_proxies_but_falls_back() -> None:
    pool = make_pool(2, cap=None)
    first, second = pool.entries
    assert pool.choose(0.0, avoid={first.label}) is second
    assert pool.choose(0.0, avoid={first.label, second.label}) is not None


def test_failure_benches_for_a_full_jitter_rest_then_probation() -> None:
    pool = make_pool(2, cap=2, rng=MaxRandom(), backoff_base=1.0, backoff_cap=10.0)
    bad, good = pool.entries
    pool.acquire(bad)
    assert pool.failed(bad, sent_at=0.0, now=5.0) is False  # the other one still works
    assert bad.state(5.0) == "resting"
    assert bad.rest_until == 6.0  # base * 2**0 at most
    assert not bad.available(5.5)
    assert bad.wake_at(5.5) == 6.0
    assert pool.choose(5.5) is good
    # rest over: probation, one request at a time
    assert bad.state(6.0) == "probation"
    assert bad.available(6.0)
    pool.acquire(bad)
    assert not bad.available(6.0)
    assert bad.wake_at(6.0) is None
    # the probe fails: a longer rest (base * 2**1)
    pool.failed(bad, sent_at=6.0, now=6.5)
    assert bad.rest_until == 8.5
    assert bad.streak == 2
    # the next probe succeeds: healthy again, the streak forgotten
    pool.acquire(bad)
    pool.succeeded(bad, sent_at=9.0)
    assert bad.healthy and bad.streak == 0
    assert bad.state(9.0) == "healthy"
    assert (bad.failures, bad.bans, bad.requests) == (2, 0, 3)


def test_rest_grows_exponentially_up_to_the_cap() -> None:
    pool = make_pool(1, rng=MaxRandom(), backoff_base=0.5, backoff_cap=30.0)
    assert [pool.rest_delay(n) for n in range(1, 9)] == [0.5, 1, 2, 4, 8, 16, 30, 30]
    assert pool.rest_delay(500) == 30.0  # no overflow


def test_full_jitter_stays_within_the_ceiling() -> None:
    pool = make_pool(1, rng=random.Random(7), backoff_base=1.0, backoff_cap=8.0)
    delays = [pool.rest_delay(4) for _ in range(200)]
    assert all(0.0 <= d <= 8.0 for d in delays)
    assert max(delays) - min(delays) > 4.0  # jittered, not a constant


def test_failures_of_requests_sent_before_the_benching_do_not_stretch_the_rest() -> None:
    pool = make_pool(2, cap=5, rng=MaxRandom())
    entry = pool.entries[0]
    for _ in range(5):
        pool.acquire(entry)
    pool.failed(entry, sent_at=0.0, now=1.0)
    rest = entry.rest_until
    for _ in range(4):  # the rest of the burst that was in flight when it died
        pool.failed(entry, sent_at=0.5, now=1.2)
    assert entry.rest_until == rest
    assert entry.streak == 1
    assert entry.failures == 5
    assert entry.inflight == 0


def test_a_success_sent_before_the_benching_does_not_restore() -> None:
    pool = make_pool(1, cap=5)
    entry = pool.entries[0]
    pool.acquire(entry)
    pool.acquire(entry)
    pool.failed(entry, sent_at=0.0, now=1.0, ban=True)
    assert entry.bans == 1
    pool.succeeded(entry, sent_at=0.5)  # was already on its way
    assert not entry.healthy


def test_all_down_spell_starts_once_and_ends_with_a_success() -> None:
    pool = make_pool(2, cap=None, rng=MaxRandom())
    a, b = pool.entries
    pool.acquire(a)
    pool.acquire(b)
    assert pool.failed(a, sent_at=0.0, now=1.0) is False
    assert pool.down_since is None
    assert pool.failed(b, sent_at=0.0, now=1.5) is True  # the last one: all down
    assert pool.down_since == 1.5
    assert not pool.available(1.6)
    assert pool.wake_at(1.6) == a.rest_until == 2.0
    # a failed probe keeps the spell going and does not announce it again
    pool.acquire(a)
    assert pool.failed(a, sent_at=3.0, now=3.0) is False
    assert pool.down_since == 1.5
    pool.acquire(b)
    assert pool.succeeded(b, sent_at=4.0) is True
    assert pool.down_since is None


def test_release_says_nothing_about_health() -> None:
    pool = make_pool(1, cap=1)
    entry = pool.entries[0]
    pool.acquire(entry)
    pool.release(entry)
    assert entry.healthy and entry.inflight == 0 and entry.failures == 0


def test_snapshot_is_labelled_without_credentials() -> None:
    pool = make_pool(2, cap=None, rng=MaxRandom())
    pool.acquire(pool.entries[0])
    pool.failed(pool.entries[0], sent_at=0.0, now=0.0, ban=True)
    snap = pool.snapshot(0.1)
    assert set(snap) == {"http://127.0.0.1:8000", "http://127.0.0.1:8001"}
    assert snap["http://127.0.0.1:8000"] == {
        "requests": 1,
        "failures": 0,
        "bans": 1,
        "state": "resting",
        "inflight": 0,
    }
    assert "secret" not in repr(snap) + repr(pool) + repr(pool.entries)


def test_from_config_and_kinds() -> None:
    config = ProxyConfig("rotating", tuple(proxies(1)), source="test")
    pool = ProxyPool.from_config(config, cap=None, backoff_base=1, backoff_cap=2)
    assert not pool.per_proxy_slots
    assert len(pool) == 1
    assert make_pool().per_proxy_slots


def test_bad_arguments() -> None:
    with pytest.raises(ValueError):
        ProxyPool([])
    with pytest.raises(ValueError):
        ProxyPool(proxies(1), cap=0)
    with pytest.raises(ValueError):
        ProxyPool(proxies(1), backoff_base=0)
