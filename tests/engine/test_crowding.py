"""A host's in-flight cap while many hosts have work: the pure rule (the dispatcher's
use of it is tested in test_dispatcher.py)."""

from __future__ import annotations

import pytest

from pooledcrawl import Settings
from pooledcrawl.engine.crowding import UNCAPPED, CrowdCap
from pooledcrawl.errors import UsageError


def test_uncapped_until_as_many_hosts_as_workers_have_work() -> None:
    crowd = CrowdCap(workers=8, cap=1)
    assert [crowd.limit(busy) for busy in (0, 1, 7)] == [UNCAPPED] * 3
    assert not crowd.crowded
    assert crowd.limit(8) == 1
    assert crowd.crowded


def test_the_cap_lifts_below_half_the_workers_only() -> None:
    crowd = CrowdCap(workers=8, cap=2)
    assert crowd.limit(9) == 2
    # a host finishing and the next starting must not flip it on every page
    assert [crowd.limit(busy) for busy in (7, 5, 4)] == [2, 2, 2]
    assert not crowd.lifted
    assert crowd.limit(3) == UNCAPPED
    assert crowd.lifted and not crowd.crowded
    assert crowd.limit(7) == UNCAPPED  # not again until 8
    assert crowd.limit(8) == 2


def test_none_never_caps() -> None:
    for crowd in (CrowdCap(workers=4, cap=None), CrowdCap(workers=0, cap=1)):
        assert [crowd.limit(busy) for busy in (1, 4, 1000)] == [UNCAPPED] * 3
        assert not crowd.crowded


def test_a_cap_below_one_is_refused() -> None:
    with pytest.raises(ValueError):
        CrowdCap(workers=4, cap=0)
    with pytest.raises(UsageError):
        Settings(crowded_domain_concurrency=0)
    assert Settings().crowded_domain_concurrency == 1
