"""robots.txt rules: what a fetch outcome means, whose ``User-agent:`` lines apply,
one host's parsed rules and what the crawl knows of a host.

Fetch outcomes follow Google's robots.txt specification: 2xx is parsed; a 4xx
(but 429) means there are no rules; a 5xx, a 429, a timeout or a network error
means the host is not crawled for a while (see :mod:`pooledcrawl.hygiene.robots`).
"""

from __future__ import annotations

import enum
from collections import deque
from typing import TYPE_CHECKING

from protego import Protego

from pooledcrawl.http.request import Request

if TYPE_CHECKING:
    from pooledcrawl.hygiene.crawl_delay import _SlotDelay
    from pooledcrawl.settings import Settings

__all__ = ["DONT_OBEY", "MAX_BYTES", "Outcome", "RobotsRules", "classify", "robots_agent"]

#: ``Request.meta`` key that exempts one request from robots.txt (as in Scrapy).
DONT_OBEY = "dont_obey_robotstxt"
#: Google reads the first 500 KiB of a robots.txt.
MAX_BYTES = 500 * 1024


class Outcome(enum.Enum):
    RULES = "rules"  # parse the body
    ALLOW_ALL = "allow_all"  # no robots.txt
    UNREACHABLE = "unreachable"  # no crawling for a while, then try again


def classify(status: int | None, *, retryable_error: bool = True) -> Outcome:
    """What a robots.txt fetch means: ``status`` of the final response, or None when
    the fetch failed (a timeout or a network error is ``retryable_error``)."""
    if status is None:
        # a redirect loop, an invalid URL or an oversized body will not get better
        return Outcome.UNREACHABLE if retryable_error else Outcome.ALLOW_ALL
    if 200 <= status < 300:
        return Outcome.RULES
    if status == 429 or status >= 500:
        return Outcome.UNREACHABLE
    return Outcome.ALLOW_ALL


def robots_agent(settings: Settings) -> str:
    """The name matched against ``User-agent:`` lines: ``robots_user_agent``, else the
    product token of ``user_agent`` (``pooledcrawl`` in ``pooledcrawl/1.0 (+url)``)."""
    if settings.robots_user_agent:
        return settings.robots_user_agent
    token = settings.user_agent.strip().split(" ", 1)[0].split("/", 1)[0]
    return token or settings.user_agent


class RobotsRules:
    """One host's parsed robots.txt, for one user agent."""

    def __init__(self, text: str, agent: str) -> None:
        self._parser = Protego.parse(text)
        self._agent = agent
        delay = self._parser.crawl_delay(agent)
        self.crawl_delay: float = float(delay) if delay else 0.0

    def allows(self, url: str) -> bool:
        return bool(self._parser.can_fetch(url, self._agent))


class _State(enum.Enum):
    UNKNOWN = 0
    FETCHING = 1
    OPEN = 2
    BLOCKED = 3


class _Host:
    """What is known of one host's robots.txt, and the requests waiting on it."""

    __slots__ = (
        "blocked_until",
        "crawl_delay",
        "failures",
        "key",
        "rules",
        "slot",
        "state",
        "waiting",
    )

    def __init__(self, key: str) -> None:
        self.key = key
        self.state = _State.UNKNOWN
        self.rules: RobotsRules | None = None  # None: everything allowed
        self.crawl_delay = 0.0
        self.blocked_until = 0.0
        self.failures = 0
        self.waiting: deque[Request] = deque()
        #: the shared slot this host's delay was counted into (shared slot keys only)
        self.slot: _SlotDelay | None = None
