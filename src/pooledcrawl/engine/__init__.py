"""The crawl engine."""

from pooledcrawl.engine.engine import Engine, Failure
from pooledcrawl.engine.stats import Stats

__all__ = ["Engine", "Failure", "Stats"]
