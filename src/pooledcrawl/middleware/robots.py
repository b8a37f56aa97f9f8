"""The built-in robots.txt middleware (the rules themselves: ``hygiene.robots``)."""

from __future__ import annotations

from typing import Any

from pooledcrawl.frontier.base import Frontier
from pooledcrawl.hygiene.robots import RobotsFrontier
from pooledcrawl.throttle.base import PolicyFactory

__all__ = ["RobotsTxt"]


class RobotsTxt:
    """Obeys robots.txt when ``obey_robots`` is set (else it leaves itself out): each
    host's robots.txt is fetched once, its disallowed requests are dropped and its
    ``Crawl-delay`` spaces the host's requests (see
    :class:`~pooledcrawl.hygiene.robots.RobotsFrontier`).

    It works on the dispatcher's side, not around each download: ``wrap_frontier``
    puts a filter between the frontier and the dispatcher, which holds a host's
    requests back until its robots.txt is known, so a request only takes its slot
    when it will really be sent, and a crawl that does not obey robots.txt pays
    nothing. A replacement may use the same hooks, or ``process_request`` raising
    ``IgnoreRequest`` as in Scrapy."""

    def __init__(self, crawler: Any) -> None:
        self._crawler = crawler
        #: the filter, once the engine asked for it
        self.frontier: RobotsFrontier | None = None

    @classmethod
    def from_crawler(cls, crawler: Any) -> RobotsTxt | None:
        return cls(crawler) if crawler.settings.obey_robots else None

    def wrap_frontier(self, frontier: Frontier) -> Frontier:
        c = self._crawler
        self.frontier = RobotsFrontier(frontier, c.settings, c.stats, c.fetch_aside, c.clock)
        return self.frontier

    def wrap_policies(self, factory: PolicyFactory) -> PolicyFactory:
        assert self.frontier is not None, "wrap_frontier() comes first"
        return self.frontier.wrap_policies(factory)
