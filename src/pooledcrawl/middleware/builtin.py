"""The built-in middlewares, on by default (see ``BASE_MIDDLEWARES`` in the chain)."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

from pooledcrawl.errors import IgnoreRequest
from pooledcrawl.http.ratelimit_headers import parse_retry_after
from pooledcrawl.hygiene.filters import RequestFilter
from pooledcrawl.retry.policy import TOO_MANY_REQUESTS, RetryPolicy
from pooledcrawl.transport.base import TransportError

if TYPE_CHECKING:
    from pooledcrawl.http.request import Request
    from pooledcrawl.http.response import Response
    from pooledcrawl.proxy.blocks import BlockDecision, BlockDetector
    from pooledcrawl.settings import Settings
    from pooledcrawl.spider import Spider

__all__ = ["BlockDetection", "DefaultHeaders", "OffsiteDepth", "ProxyBan", "Retry", "UserAgent"]


class DefaultHeaders:
    """Sends the ``default_headers`` setting with every request (a request's own
    headers win). The headers go into the transport's sessions once, when the
    crawl starts (``process_default_headers``), so they cost nothing per request;
    with proxy tiers each tier's profile brings its own."""

    def process_default_headers(
        self, headers: dict[str, str], settings: Settings, spider: Spider
    ) -> dict[str, str]:
        return {**headers, **settings.default_headers}


class UserAgent:
    """Sends the ``user_agent`` setting as every request's User-Agent, unless a
    default header or the request itself names one (as Scrapy's UserAgentMiddleware,
    but set once in the transport's sessions). Disabled, the HTTP client library's
    own User-Agent goes out; with curl_cffi's browser impersonation the browser's
    does unless ``user_agent`` was changed from pooledcrawl's default."""

    def process_default_headers(
        self, headers: dict[str, str], settings: Settings, spider: Spider
    ) -> dict[str, str]:
        if any(name.lower() == "user-agent" for name in headers):
            return headers
        return {"User-Agent": settings.user_agent, **headers}


class ProxyBan:
    """Tells a proxy ban from a page: a response through a proxy whose status is in
    ``ban_statuses`` (403 by default; the ``ban_statuses`` of the tier's profile)
    means the proxy's IP is refused. The engine then benches that proxy and sends the
    request through another (after three bans of one request, the page itself is
    taken to be forbidden and the spider gets it). Asked only for responses that came
    through a proxy. Replace it to recognise a ban differently (a
    ``proxy_banned(request, response, statuses)`` returning True); disabled, only a
    407 benches a proxy. Left out of a crawl without proxies."""

    @classmethod
    def from_crawler(cls, crawler: Any) -> ProxyBan | None:
        tiers = getattr(crawler, "tiers", None)
        if tiers is None or any(tier.proxies is not None for tier in tiers.tiers):
            return cls()
        return None

    def proxy_banned(self, request: Request, response: Response, statuses: frozenset[int]) -> bool:
        return response.status in statuses


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


class BlockDetection:
    """Tells a block from a page: a ban status, a ``ban_patterns`` match in the first
    KB of the body (a CAPTCHA served with a 200), a redirect to a challenge path, an
    empty body, or the spider's ``is_blocked(response)`` saying so (see
    :class:`~pooledcrawl.proxy.blocks.BlockDetector`). The engine acts on the
    decision: it retires the proxy session, retries the request on a fresh one and
    feeds the tier policy. Innermost, so a block is never cached or retried as a
    status, and never reaches the spider. Left out of the chain when nothing but
    the proxy ban statuses can be a block; replace it to decide differently (a
    replacement's ``detect(response)`` returns a BlockDecision or None)."""

    def __init__(self, crawler: Any) -> None:
        self._crawler = crawler
        self.detector: BlockDetector = crawler.blocks.detector

    @classmethod
    def from_crawler(cls, crawler: Any) -> BlockDetection | None:
        return None if getattr(crawler, "blocks", None) is None else cls(crawler)

    def detect(self, response: Response) -> BlockDecision | None:
        return self.detector.check(response)

    async def process_response(
        self, request: Request, response: Response, spider: Spider
    ) -> Request | None:
        return self._crawler.on_block_decision(  # type: ignore[no-any-return]
            request, response, self.detect(response)
        )


class Retry:
    """Retries failed fetches: the statuses in ``retry_http_codes`` and retryable
    transport errors, with the backoff and budget of :class:`RetryPolicy` (a 429 never
    uses up the budget; ``Retry-After`` wins over the backoff). A status it gives up on
    goes to the errback as a Failure, as does an error (the engine does that when no
    ``process_exception`` recovers). Innermost by default: it sees every raw outcome
    first, and the middlewares above see only what it lets through."""

    def __init__(self, crawler: Any) -> None:
        self._crawler = crawler
        self.policy = RetryPolicy.from_settings(crawler.settings)
        self._statuses = self.policy.retry_statuses
        #: with proxy tiers (--profile a,b), each tier's profile sets its own retries
        tiers = getattr(crawler, "tiers", None)
        self._per_tier = tiers is not None and len(tiers) > 1

    @classmethod
    def from_crawler(cls, crawler: Any) -> Retry:
        return cls(crawler)

    async def process_response(
        self, request: Request, response: Response, spider: Spider
    ) -> Request | None:
        status = response.status
        if status not in self._statuses:
            return None
        retry_after = parse_retry_after(response.headers.get("Retry-After"), time.time())
        policy = self._crawler.retry_policy(request) if self._per_tier else self.policy
        decision = policy.for_status(request, status, retry_after)
        if decision is not None:
            return self._crawler.retry_later(request, decision)  # type: ignore[no-any-return]
        if status != TOO_MANY_REQUESTS:
            raise IgnoreRequest(f"HTTP {status}", response=response)
        return None  # a 429 with retries turned off: the spider sees it

    async def process_exception(
        self, request: Request, exception: BaseException, spider: Spider
    ) -> Request | None:
        if not isinstance(exception, TransportError):
            return None
        # a stale keep-alive connection: resent once at once, free of the budget
        free = exception.stale_connection and not request.get_meta("_stale_retried")
        if free:
            request.meta["_stale_retried"] = True
        policy = self._crawler.retry_policy(request) if self._per_tier else self.policy
        decision = policy.for_error(request, exception.retryable, free=free)
        if decision is None:
            return None
        return self._crawler.retry_later(request, decision)  # type: ignore[no-any-return]
