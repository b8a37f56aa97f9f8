"""The simulated limiter families, and a grid of windows and penalty boxes around
them, for changes to the controller that the families alone would not judge.

    python tests/throttle/grid.py --seeds 1 2 3 --json after.json
    python tests/throttle/grid.py --compare before.json after.json

Windows: fixed (started by the first request, and on one clock for all), moving,
sliding-window counter and reject-counting, of 1-60 s at 150 requests/s, behind
50 and 200 ms; penalty boxes of 100/s with 2-15 s of quiet, with and without
``Retry-After``. Each case is a 60 s crawl from a cold start (180 s for 60 s
windows) with the datacenter profile's settings, as in ``test_families.py``.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))

from sim import (
    AlignedFixedWindow,
    FixedWindow,
    MovingWindow,
    PenaltyBox,
    RejectCounting,
    SlidingWindowCounter,
)
from test_families import FAMILIES, Family, crawl

WINDOWS = (1, 2, 3, 4, 5, 6, 8, 10, 12, 15, 20, 30, 60)
KINDS = (AlignedFixedWindow, FixedWindow, MovingWindow, SlidingWindowCounter, RejectCounting)
QUIET = (2, 3, 5, 8, 10, 15)


def cases() -> dict[str, tuple[Family, float]]:
    """Name: (family, target share of the limit)."""
    out = {f"family: {name}": (family, family.share) for name, family in FAMILIES.items()}
    for kind in KINDS:
        for window in WINDOWS:
            for latency in (0.05, 0.2):
                make = lambda k=kind, w=window: k(150 * w, float(w))  # noqa: E731
                duration = 180.0 if window >= 60 else 60.0
                name = f"window: {kind.__name__} {window} s, {latency * 1000:g} ms"
                out[name] = (Family(make, latency, duration), 0.9)
    for quiet in QUIET:
        for told in (False, True):
            for latency in (0.05, 0.2):
                box = lambda q=quiet, t=told: PenaltyBox(100, float(q), retry_after=t)  # noqa: E731
                name = f"box: {quiet} s{', Retry-After' if told else ''}, {latency * 1000:g} ms"
                out[name] = (Family(box, latency), 0.8)
    return out


def run(seeds: list[int]) -> dict[str, list[float]]:
    """Case and seed: [share of the limit, share of 429s], in percent."""
    results = {}
    for name, (family, _target) in cases().items():
        for seed in seeds:
            _policy, result, _limiter = crawl(family, seed)
            share, refused = 100 * result.share_of_limit, 100 * result.share_429
            results[f"{name} #{seed}"] = [round(share, 1), round(refused, 2)]
    return results


def summary(results: dict[str, list[float]]) -> None:
    targets = {name: target for name, (_family, target) in cases().items()}
    for group in ("family", "window", "box"):
        rows = {k: v for k, v in results.items() if k.startswith(group)}
        missed = [
            k
            for k, (share, refused) in rows.items()
            if share < 100 * targets[k.rsplit(" #", 1)[0]] or refused > 3
        ]
        shares = [share for share, _refused in rows.values()]
        print(
            f"{group}: {len(rows)} runs, {len(missed)} under target, "
            f"least {min(shares):.1f}%, mean {statistics.mean(shares):.1f}%"
        )
        for name in missed:
            print(f"  {name}: {rows[name][0]}% of the limit, {rows[name][1]}% 429s")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[1])
    parser.add_argument("--json", type=Path, help="write the results here")
    parser.add_argument("--compare", type=Path, nargs=2, metavar=("BEFORE", "AFTER"))
    args = parser.parse_args()
    if args.compare:
        before, after = (json.loads(path.read_text()) for path in args.compare)
        for name in after:
            if name in before and abs(after[name][0] - before[name][0]) >= 0.5:
                print(f"{name}: {before[name][0]}% -> {after[name][0]}%")
        summary(after)
        return
    results = run(args.seeds)
    if args.json:
        args.json.write_text(json.dumps(results, indent=1))
    summary(results)


if __name__ == "__main__":
    main()
