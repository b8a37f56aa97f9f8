"""Crawl hygiene: offsite and depth rules, and robots.txt."""

from pooledcrawl.hygiene.filters import ALLOW_OFFSITE, RequestFilter
from pooledcrawl.hygiene.robots import DONT_OBEY, RobotsFrontier

__all__ = ["ALLOW_OFFSITE", "DONT_OBEY", "RequestFilter", "RobotsFrontier"]
