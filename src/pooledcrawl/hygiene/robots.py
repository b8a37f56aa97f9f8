"""robots.txt: fetched once per host, parsed with protego, obeyed before a request
reaches its domain's slot.

:class:`RobotsFrontier` wraps the crawl's frontier on the dispatcher's side. It
holds back the requests of a host until that host's robots.txt is known, drops
the disallowed ones (acknowledged, so a persistent frontier forgets them too),
and hands the rest on, so a request only reaches the slot's policy when it will
really be sent. :class:`~pooledcrawl.hygiene.crawl_delay.CrawlDelayPolicy` wraps
each slot's policy to space requests by the host's ``Crawl-delay`` (the largest of
its hosts' when hosts share a slot: :mod:`pooledcrawl.hygiene.crawl_delay`). The
parsing and the meaning of a fetch outcome are in :mod:`pooledcrawl.hygiene.robots_rules`.

Fetch outcomes follow Google's robots.txt specification: 2xx is parsed; a 4xx
(but 429) means there are no rules; a 5xx, a 429, a timeout or a network error
means no crawling of that host for ``robots_retry_delay`` seconds, then another
try. After :data:`MAX_ATTEMPTS` failed tries the host is crawled as if it had no
robots.txt (Google does that after 30 days).
"""

from __future__ import annotations

import asyncio
import itertools
import logging
from collections import OrderedDict, deque
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING

from pooledcrawl.frontier.base import Frontier
from pooledcrawl.frontier.holding import HoldingFrontier
from pooledcrawl.http.keys import slot_key
from pooledcrawl.http.request import Request
from pooledcrawl.http.response import Response
from pooledcrawl.hygiene.crawl_delay import CrawlDelayPolicy, SlotDelays
from pooledcrawl.hygiene.robots_rules import (
    DONT_OBEY,
    MAX_BYTES,
    Outcome,
    RobotsRules,
    _Host,
    _State,
    classify,
    robots_agent,
)
from pooledcrawl.sizing import session_connector_limit
from pooledcrawl.throttle.base import ConcurrencyPolicy, PolicyFactory
from pooledcrawl.transport.base import TransportError

if TYPE_CHECKING:
    from pooledcrawl.settings import Settings
    from pooledcrawl.stats import Stats

__all__ = [
    "DONT_OBEY",
    "MAX_ATTEMPTS",
    "CrawlDelayPolicy",
    "Outcome",
    "RobotsFrontier",
    "RobotsRules",
    "SlotDelays",
    "classify",
    "robots_agent",
]

log = logging.getLogger("pooledcrawl.robots")

# read at run time, so tests may lower them
#: Failed robots.txt fetches of one host before it is crawled as if it had none.
MAX_ATTEMPTS = 5
#: Requests held back while their hosts' robots.txt is fetched or unreachable.
MAX_HELD = 10_000
#: Hosts whose robots.txt is remembered; past it the least recently used host with
#: nothing waiting is forgotten (and fetched again if the crawl comes back to it).
MAX_HOSTS = 50_000


class RobotsFrontier(HoldingFrontier):
    """The crawl's frontier as the dispatcher sees it when ``obey_robots`` is on."""

    def __init__(
        self,
        inner: Frontier,
        settings: Settings,
        stats: Stats,
        fetch: Callable[[Request], Awaitable[Response]],
        clock: Callable[[], float],
    ) -> None:
        super().__init__(inner)
        self._fetch_fn = fetch
        self._clock = clock
        self._agent = robots_agent(settings)
        self._timeout = settings.robots_timeout
        self._retry_delay = settings.robots_retry_delay
        self._counts: dict[str, int] = stats.extra.setdefault(
            "robots", {"fetched": 0, "allow_all": 0, "unreachable": 0, "disallowed": 0}
        )
        self._hosts: OrderedDict[str, _Host] = OrderedDict()
        self._max_hosts = MAX_HOSTS
        self._blocked: set[_Host] = set()
        # robots.txt fetches use the connections the pool holds beyond the crawl's
        # concurrency: slow robots.txt servers then never take one from a page fetch
        spare = session_connector_limit(settings) - settings.concurrency
        self._fetches = asyncio.Semaphore(max(1, min(spare, 64)))
        #: set when slots are keyed by something other than the host (see route_keys)
        self._shared: SlotDelays | None = None

    # ---- wiring --------------------------------------------------------------------
    def wrap_policies(self, factory: PolicyFactory) -> PolicyFactory:
        """Each slot's policy, spaced by its host's ``Crawl-delay``, or by the largest
        of its hosts' when slots are shared (:meth:`route_keys`)."""

        def wrapped(key: str) -> ConcurrencyPolicy:
            # a slot per proxy is keyed "key via proxy": the key's delay applies to each
            base = key.split(" via ", 1)[0]
            shared = self._shared
            delay = self._host(base) if shared is None else shared.of(base)
            return CrawlDelayPolicy(factory(key), delay)

        return wrapped

    def route_keys(self, key: Callable[[str], str]) -> Callable[[str], str]:
        """The crawl's slot-key function when it is not the host key (``politeness_key``
        ``domain`` or ``ip``), wrapped so each slot learns its hosts' delays. Call it
        before the crawl routes anything."""
        if self._shared is None:
            self._shared = SlotDelays()
            for host in self._hosts.values():
                if host.crawl_delay:
                    self._shared.delayed[host.key] = host
        return self._shared.route(key)

    # ---- what the dispatcher reads ----------------------------------------------------
    def pop(self, now: float) -> Request | None:
        if self._blocked:
            self._unblock(now)
        return super().pop(now)

    def _take(self, now: float) -> Request | None:
        inner = self._inner
        while self._held < MAX_HELD:
            request = inner.pop(now)
            if request is None:
                return None
            if request.get_meta(DONT_OBEY):
                return request
            host = self._host(slot_key(request.url))
            if host.state is _State.OPEN:
                if host.rules is None or host.rules.allows(request.url):
                    return request
                self._disallow(request)
                continue
            host.waiting.append(request)
            self._held += 1
            if host.state is _State.UNKNOWN:
                self._start_fetch(host, request.url)
        return None

    def next_due(self) -> float | None:
        due = self._inner.next_due()
        for host in self._blocked:
            if host.waiting and (due is None or host.blocked_until < due):
                due = host.blocked_until
        return due

    # ---- internals -----------------------------------------------------------------
    def _host(self, key: str) -> _Host:
        hosts = self._hosts
        host = hosts.get(key)
        if host is None:
            host = hosts[key] = _Host(key)
            if len(hosts) > self._max_hosts:
                self._forget()
        else:
            hosts.move_to_end(key)
        return host

    def _forget(self) -> None:
        """Drop the least recently used hosts that have nothing waiting on them."""
        hosts = self._hosts
        for key in list(itertools.islice(hosts, max(1, self._max_hosts // 100))):
            host = hosts[key]
            if host.state is _State.OPEN and not host.waiting:
                del hosts[key]
                if self._shared is not None:
                    self._shared.delayed.pop(key, None)
            if len(hosts) <= self._max_hosts:
                break

    def _disallow(self, request: Request) -> None:
        self._counts["disallowed"] += 1
        log.debug("robots.txt disallows %s", request.url)
        self._inner.ack(request)  # done with: a persistent frontier forgets it

    def _unblock(self, now: float) -> None:
        for host in list(self._blocked):
            if host.blocked_until <= now:
                self._blocked.discard(host)
                host.state = _State.UNKNOWN
                if host.waiting:
                    self._start_fetch(host, host.waiting[0].url)

    def _start_fetch(self, host: _Host, url: str) -> None:
        host.state = _State.FETCHING
        end = url.find("/", url.find("//") + 2)
        origin = url if end == -1 else url[:end]
        self._spawn(f"robots {host.key}", self._fetch, host, origin + "/robots.txt")

    async def _fetch(self, host: _Host, robots_url: str) -> None:
        body = b""
        try:
            async with self._fetches, asyncio.timeout(self._timeout):
                response = await self._fetch_fn(Request(robots_url, dont_filter=True))
            outcome = classify(response.status)
            body = response.body
        except TransportError as exc:
            outcome = classify(None, retryable_error=exc.retryable)
            log.debug("robots.txt of %s: %s", host.key, exc)
        except TimeoutError:
            outcome = Outcome.UNREACHABLE
            log.debug("robots.txt of %s: timed out after %gs", host.key, self._timeout)
        self._counts["fetched"] += 1
        self._apply(host, outcome, body)

    def _apply(self, host: _Host, outcome: Outcome, body: bytes) -> None:
        if outcome is Outcome.UNREACHABLE:
            self._counts["unreachable"] += 1
            host.failures += 1
            if host.failures < MAX_ATTEMPTS:
                host.state = _State.BLOCKED
                host.blocked_until = self._clock() + self._retry_delay
                self._blocked.add(host)
                log.info(
                    "robots.txt of %s unreachable: not crawling it for %gs",
                    host.key,
                    self._retry_delay,
                )
                self._on_ready()  # the dispatcher re-reads next_due
                return
            log.warning(
                "robots.txt of %s unreachable %d times: crawling it without rules",
                host.key,
                host.failures,
            )
            outcome = Outcome.ALLOW_ALL
        if outcome is Outcome.RULES:
            text = body[:MAX_BYTES].decode("utf-8", "replace")
            host.rules = RobotsRules(text, self._agent)
            host.crawl_delay = host.rules.crawl_delay
            if host.crawl_delay:
                log.info("robots.txt of %s: Crawl-delay %gs", host.key, host.crawl_delay)
                if self._shared is not None:
                    self._shared.delayed[host.key] = host
        else:
            self._counts["allow_all"] += 1
            host.rules = None
        host.state = _State.OPEN
        waiting, host.waiting = host.waiting, deque()
        self._held -= len(waiting)
        for request in waiting:
            if host.rules is None or host.rules.allows(request.url):
                self._ready.append(request)
                self._held += 1
            else:
                self._disallow(request)
        self._on_ready()
