"""Frontier backends: where pending requests wait."""

from pooledcrawl.frontier.base import Frontier
from pooledcrawl.frontier.memory import MemoryFrontier

__all__ = ["Frontier", "MemoryFrontier"]
