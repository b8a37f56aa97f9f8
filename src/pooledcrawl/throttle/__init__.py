"""Per-slot concurrency and pacing policies."""

from pooledcrawl.throttle.adaptive import AdaptiveConfig, AdaptivePolicy
from pooledcrawl.throttle.base import ConcurrencyPolicy, PolicyFactory
from pooledcrawl.throttle.factory import policy_factory
from pooledcrawl.throttle.fixed import FixedPolicy

__all__ = [
    "AdaptiveConfig",
    "AdaptivePolicy",
    "ConcurrencyPolicy",
    "FixedPolicy",
    "PolicyFactory",
    "policy_factory",
]
