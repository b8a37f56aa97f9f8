"""Moved to :mod:`pooledcrawl.redis.keys` (shared with the Redis frontier); kept so
existing imports keep working."""

from pooledcrawl.redis.keys import GROUP, JobKeys

__all__ = ["GROUP", "JobKeys"]
