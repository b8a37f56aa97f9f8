"""Per-slot concurrency and pacing policies."""

from pooledcrawl.throttle.base import ConcurrencyPolicy, PolicyFactory
from pooledcrawl.throttle.fixed import FixedPolicy

__all__ = ["ConcurrencyPolicy", "FixedPolicy", "PolicyFactory"]
