"""The built-in middlewares, on by default (see ``BASE_MIDDLEWARES`` in the chain)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from pooledcrawl.hygiene.filters import RequestFilter

if TYPE_CHECKING:
    from pooledcrawl.http.request import Request
    from pooledcrawl.spider import Spider

__all__ = ["OffsiteDepth"]


class OffsiteDepth:
    """Drops requests outside the spider's ``allowed_domains`` (subdomains are in) or
    deeper than ``max_depth``, and lowers the priority of deeper ones
    (``depth_priority``), before they are queued. Left out of the chain when neither
    is set, so a crawl without these rules pays nothing for them."""

    def __init__(self, rules: RequestFilter) -> None:
        self._rules = rules

    @classmethod
    def from_crawler(cls, crawler: Any) -> OffsiteDepth | None:
        rules = RequestFilter.create(crawler.spider, crawler.settings, crawler.stats)
        return None if rules is None else cls(rules)

    def process_schedule(self, request: Request, canonical_url: str, spider: Spider) -> str | None:
        rules = self._rules
        return None if rules.admit(request, canonical_url) else rules.reason
