"""Moved to :mod:`pooledcrawl.stats` (the floor every subsystem may import); kept so
existing imports keep working."""

from pooledcrawl.stats import ErrorLog, Stats

__all__ = ["ErrorLog", "Stats"]
