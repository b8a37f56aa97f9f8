"""Choosing each domain's policy from the settings: adaptive, or a fixed cap."""

from __future__ import annotations

import random

from pooledcrawl.errors import UsageError
from pooledcrawl.settings import Settings
from pooledcrawl.throttle.adaptive import AdaptiveConfig, AdaptivePolicy
from pooledcrawl.throttle.base import PolicyFactory
from pooledcrawl.throttle.fixed import FixedPolicy

__all__ = ["adaptive_config", "policy_factory"]


def adaptive_config(settings: Settings) -> AdaptiveConfig:
    """The controller's tuning from the settings; the ceiling honours ``limit_per_host``."""
    top = settings.domain_max
    if settings.connector_limit_per_host:
        top = min(top, settings.connector_limit_per_host)
    try:
        return AdaptiveConfig(
            start=min(settings.domain_start, top),
            max=top,
            slow_start=settings.autothrottle_slow_start,
            probe=settings.autothrottle_probe,
            backoff=settings.autothrottle_backoff,
            retry_after_cap=settings.retry_after_cap,
        )
    except ValueError as exc:
        raise UsageError(f"autothrottle settings: {exc}") from None


def policy_factory(settings: Settings) -> PolicyFactory:
    """Per-domain policies: :class:`AdaptivePolicy` unless ``autothrottle`` is off,
    then a :class:`FixedPolicy` at ``domain_concurrency``."""
    if not settings.autothrottle:
        limit = settings.domain_start
        return lambda _key: FixedPolicy(limit)
    config = adaptive_config(settings)
    # one jitter source for all domains: a Random per domain costs 2.5 KB and a seeding
    # from the OS, and a broad crawl builds policies for millions of domains
    rng = random.Random()
    return lambda _key: AdaptivePolicy(config, rng=rng)
