"""Offsite and depth rules for the requests a spider yields. Pure: no I/O, no clock."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from pooledcrawl.http.request import Request

if TYPE_CHECKING:
    from pooledcrawl.settings import Settings
    from pooledcrawl.spider import Spider
    from pooledcrawl.stats import Stats

__all__ = ["ALLOW_OFFSITE", "RequestFilter", "host_of", "normalize_domains"]

log = logging.getLogger("pooledcrawl.hygiene")

#: ``Request.meta`` key that lets one request past the offsite filter (as in Scrapy).
ALLOW_OFFSITE = "allow_offsite"
_HOST_CACHE = 10_000
_LOGGED_DOMAINS = 100


def host_of(url: str) -> str:
    """The host of an http(s) URL, without userinfo or port (lower case if ``url`` is
    canonical); IPv6 literals keep their brackets."""
    start = url.find("//") + 2
    end = url.find("/", start)
    netloc = url[start:] if end == -1 else url[start:end]
    netloc = netloc.rsplit("@", 1)[-1]
    if netloc.startswith("["):
        return netloc[: netloc.find("]") + 1]
    return netloc.split(":", 1)[0]


def normalize_domains(domains: list[str] | tuple[str, ...]) -> list[str]:
    """``allowed_domains`` as bare lower-case host names. Entries written as URLs or
    with a port are reduced to their host, with a warning, as Scrapy does."""
    out: list[str] = []
    for raw in domains:
        domain = raw.strip().lower().rstrip(".")
        if "://" in domain or "/" in domain or ":" in domain.strip("[]"):
            host = host_of(domain if "://" in domain else "http://" + domain)
            log.warning(
                "allowed_domains accepts domains, not URLs or ports: using %r for %r", host, raw
            )
            domain = host
        if domain.startswith("."):
            domain = domain[1:]
        if domain and domain not in out:
            out.append(domain)
    return out


class RequestFilter:
    """Drops requests to hosts outside ``allowed_domains`` (their subdomains are in),
    and requests deeper than ``max_depth``; gives deeper requests lower priority
    (``depth_priority``, as Scrapy's ``DEPTH_PRIORITY``). Counts what it drops."""

    def __init__(
        self,
        stats: Stats,
        *,
        allowed_domains: list[str] | tuple[str, ...] = (),
        max_depth: int | None = None,
        depth_priority: int = 0,
    ) -> None:
        self._stats = stats
        self._domains = tuple(normalize_domains(allowed_domains))
        self._suffixes = tuple("." + d for d in self._domains)
        self._max_depth = max_depth
        self._depth_priority = depth_priority
        self._hosts: dict[str, bool] = {}
        #: why the last request admit() refused was refused: "depth" or "offsite"
        self.reason = ""
        self._logged: set[str] = set()

    @classmethod
    def create(cls, spider: Spider, settings: Settings, stats: Stats) -> RequestFilter | None:
        """The filter for this crawl, or None when no rule is set (the fast path)."""
        domains = list(getattr(spider, "allowed_domains", None) or ())
        if not domains and settings.max_depth is None and not settings.depth_priority:
            return None
        return cls(
            stats,
            allowed_domains=domains,
            max_depth=settings.max_depth,
            depth_priority=settings.depth_priority,
        )

    def admit(self, request: Request, canonical_url: str) -> bool:
        """True to queue ``request``; its depth must be set already."""
        depth = request.depth
        extra = self._stats.extra
        if depth > extra.get("request_depth_max", 0):
            extra["request_depth_max"] = depth
        if self._max_depth is not None and depth > self._max_depth:
            extra["depth_filtered"] = extra.get("depth_filtered", 0) + 1
            self.reason = "depth"
            return False
        if self._domains and not self._onsite(request, canonical_url):
            extra["offsite_filtered"] = extra.get("offsite_filtered", 0) + 1
            self.reason = "offsite"
            return False
        if self._depth_priority and depth:
            request.priority -= depth * self._depth_priority
        return True

    def _onsite(self, request: Request, canonical_url: str) -> bool:
        host = host_of(canonical_url)
        allowed = self._hosts.get(host)
        if allowed is None:
            allowed = host in self._domains or host.endswith(self._suffixes)
            if len(self._hosts) >= _HOST_CACHE:
                self._hosts.clear()
            self._hosts[host] = allowed
        if allowed or request.dont_filter or request.get_meta(ALLOW_OFFSITE):
            return True
        if host not in self._logged and len(self._logged) < _LOGGED_DOMAINS:
            self._logged.add(host)
            log.debug("filtered offsite request to %s: %s", host, request.url)
        return False
