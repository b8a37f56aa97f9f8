"""The shared backoff formulas: full jitter's bounds and the reconnect loops' doubling."""

from __future__ import annotations

import random

import pytest

from pooledcrawl.backoff import Doubling, full_jitter


class Highest(random.Random):
    """Always the top of the range: shows the ceiling full jitter draws under."""

    def uniform(self, a: float, b: float) -> float:
        return b


@pytest.mark.parametrize(
    ("retry", "ceiling"), [(1, 0.5), (2, 1.0), (3, 2.0), (5, 8.0), (7, 30.0), (10_000, 30.0)]
)
def test_full_jitter_ceiling_doubles_up_to_the_cap(retry: int, ceiling: float) -> None:
    assert full_jitter(retry, 0.5, 30.0, Highest()) == ceiling


def test_full_jitter_spreads_over_the_whole_interval() -> None:
    rng = random.Random(1)
    samples = [full_jitter(4, 1.0, 100.0, rng) for _ in range(500)]
    assert all(0.0 <= s <= 8.0 for s in samples)
    assert min(samples) < 1.0 and max(samples) > 7.0


def test_doubling_grows_to_its_cap_and_resets() -> None:
    backoff = Doubling(0.1, 1.0)
    assert [backoff.failed() for _ in range(6)] == pytest.approx([0.1, 0.2, 0.4, 0.8, 1.0, 1.0])
    backoff.reset()
    assert backoff.failed() == 0.1
