"""The frontier's packed fingerprint set answers exactly as a ``set`` would, through
every split of its table, and keeps each member in about 10 bytes."""

from __future__ import annotations

import random
import sys

from pooledcrawl.frontier.fingerprints import FingerprintSet

MASK = (1 << 64) - 1


def test_members_and_non_members_as_a_set_would_say() -> None:
    rng = random.Random(20)
    members = [rng.getrandbits(64) for _ in range(20_000)]
    # edge values, and ones that share their low bits (the same bucket) with a member
    members += [0, 1, MASK, members[0] ^ (1 << 63), members[1] ^ (1 << 40)]
    fingerprints = FingerprintSet(initial_buckets=4)  # many splits on the way
    reference: set[int] = set()
    for value in members:
        assert fingerprints.add(value) == (value not in reference)
        reference.add(value)
    assert len(fingerprints) == len(reference)
    for value in members:
        assert value in fingerprints
        assert not fingerprints.add(value)  # already there
    strangers = [rng.getrandbits(64) for _ in range(20_000)]
    strangers += [v ^ 1 for v in members[:1000]] + [v >> 8 for v in members[:1000]]
    for value in strangers:
        assert (value in fingerprints) == (value in reference)


def test_a_value_straddling_two_members_is_not_a_member() -> None:
    # Two members packed next to each other contain, across their boundary, the bytes
    # of a third value: found by bytes.find, it must not count.
    fingerprints = FingerprintSet(initial_buckets=1)
    first, second = 0x1111111111111111, 0x2222222222222222
    fingerprints.add(first)
    fingerprints.add(second)
    packed = first.to_bytes(8, sys.byteorder) + second.to_bytes(8, sys.byteorder)
    straddler = int.from_bytes(packed[4:12], sys.byteorder)
    assert straddler not in fingerprints
    assert fingerprints.add(straddler)
    assert straddler in fingerprints and len(fingerprints) == 3


def test_negative_hashes_are_taken_as_their_unsigned_64_bits() -> None:
    fingerprints = FingerprintSet()
    assert fingerprints.add(-5 & MASK)
    assert -5 in fingerprints
    assert not fingerprints.add(-5)


def test_a_member_costs_about_ten_bytes() -> None:
    fingerprints = FingerprintSet()
    for value in range(200_000):
        fingerprints.add(hash(f"http://h{value}.test/") & MASK)
    held = sys.getsizeof(fingerprints._buckets) + sum(
        sys.getsizeof(bucket) for bucket in fingerprints._buckets
    )
    assert held / len(fingerprints) < 16  # a set of ints: 60 to 90
