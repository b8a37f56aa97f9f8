"""Probing up after a long clean stretch: steps grow (``probing.CleanRun``), so a
limit far above the rate where refusals began is found in seconds, not minutes.
Simulated with a fake clock (``sim.py``)."""

from __future__ import annotations

import random

from sim import LeakyBucket, simulate

from pooledcrawl.throttle import AdaptiveConfig, AdaptivePolicy
from pooledcrawl.throttle.probing import CleanRun


def test_clean_steps_grow_and_a_refusal_starts_over() -> None:
    run = CleanRun()
    sizes = [run.step() for _ in range(9)]
    # the usual step five times (most clean stretches near a limit end there),
    # then twice, then four times the usual, and no more
    assert sizes == [1.0, 1.0, 1.0, 1.0, 1.0, 2.0, 4.0, 4.0, 4.0]
    run.reset()
    assert run.step() == 1.0


def _raised_at_15(t: float) -> float:
    return 50.0 if t < 15 else 200.0


def test_a_limit_raised_fourfold_is_found_within_ten_seconds() -> None:
    # the rate where refusals began (50/s) is far under the new limit: 1% of it per
    # step took 16 s to reach 90% of 200/s
    for seed in (1, 2, 3):
        policy = AdaptivePolicy(
            AdaptiveConfig(start=50, max=200), wall_clock=lambda: 1.7e9, rng=random.Random(seed)
        )
        result = simulate(
            policy, limit=1.0, latency=0.1, duration=60.0, links=10,
            limiter=LeakyBucket(_raised_at_15, 10), seed=seed,
        )  # fmt: skip
        reached = next(
            (t for t in range(15, 58) if sum(result.ok_per_second[t : t + 3]) >= 3 * 0.9 * 200),
            None,
        )
        assert reached is not None and reached <= 25, seed
        assert result.ok_rate(15, 60) >= 0.85 * 200, seed
        assert result.share_429 <= 0.03, seed
