"""The crawl engine."""

from pooledcrawl.engine.engine import Engine, Failure
from pooledcrawl.stats import Stats

__all__ = ["Engine", "Failure", "Stats"]
