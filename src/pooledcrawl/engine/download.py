"""The download half of the engine: one request's way through the downloader
middlewares, the proxy and session accounting, the transport and back, and the
retries that send it to the frontier again.

It is the hot path: each worker calls :meth:`Downloader.download` once per request.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from pooledcrawl import signals
from pooledcrawl.engine.dispatcher import Dispatcher
from pooledcrawl.engine.failure import Failure
from pooledcrawl.engine.routes import Routes
from pooledcrawl.engine.slot import Slot
from pooledcrawl.engine.tiering import Tiers
from pooledcrawl.errors import IgnoreRequest
from pooledcrawl.frontier.base import Frontier
from pooledcrawl.http.keys import slot_key
from pooledcrawl.http.request import Request
from pooledcrawl.http.response import Response
from pooledcrawl.metrics import CrawlMetrics
from pooledcrawl.middleware.chain import MiddlewareChain, checked_response
from pooledcrawl.proxy.blocks import BlockBook
from pooledcrawl.retry.policy import RetryDecision
from pooledcrawl.signals import SignalBus
from pooledcrawl.spider import Spider
from pooledcrawl.stats import ErrorLog, Stats
from pooledcrawl.transport.base import Transport, TransportError

__all__ = ["Downloader"]

log = logging.getLogger("pooledcrawl.engine")


class Downloader:
    """Downloads for one crawl; built by the engine once its middlewares are, and
    :meth:`start`-ed with the dispatcher when the crawl runs."""

    def __init__(
        self, engine: Any, schedule: Callable[[Request, Request | None], None], errors: ErrorLog
    ) -> None:
        self.spider: Spider = engine.spider
        self.stats: Stats = engine.stats
        self.metrics: CrawlMetrics = engine.metrics
        self.signals: SignalBus = engine.signals
        self.frontier: Frontier = engine.frontier
        self.transport: Transport = engine.transport
        self.routes: Routes = engine.routes
        self.tiers: Tiers = self.routes.tiers
        self.blocks: BlockBook | None = self.routes.blocks
        self._metered = self.routes.cost is not None
        self.middleware: MiddlewareChain = engine.middleware
        self._guard = self.routes.guard
        self._clock: Callable[[], float] = engine.clock
        self._errors = errors
        self._schedule = schedule
        self._response_hooks = self.middleware.response_hooks
        self._ban_hooks: list[Callable[[Request, Response, frozenset[int]], bool]]
        self._ban_hooks = self.middleware.ban_hooks
        self._on_response = self.signals.receivers(signals.response_received)
        #: when a request a middleware retries may go again (see retry_later)
        self._not_before: dict[Request, float] = {}
        self.dispatcher: Dispatcher

    def start(self, dispatcher: Dispatcher) -> None:
        self.dispatcher = dispatcher

    async def download(self, request: Request, slot: Slot) -> Response | Failure | None:
        """Fetch ``request`` on ``slot`` through the downloader middlewares: a response
        for the spider, a Failure for the errback, or None when the request went back
        to the frontier (a retry, another proxy, one a middleware put in its place)."""
        if self.blocks is None:
            return await self._download_once(request, slot)
        try:
            return await self._download_once(request, slot)
        finally:
            self.routes.in_flight.pop(request, None)

    async def _download_once(self, request: Request, slot: Slot) -> Response | Failure | None:
        """The fetch wrapped in the downloader middlewares (each step only when some
        middleware has that hook), then ``response_received``: a response for the
        spider, a Failure for the errback, or None when a request went back to the
        frontier (a retry, or one a middleware put in its place)."""
        mw = self.middleware
        if mw.on_request:
            early: Request | Response | Failure | None
            try:
                early = await mw.process_request(request, self.spider)
            except Exception as exc:
                early = self._give_up_on(request, exc, "process_request")
            if early is not None:
                # answered or replaced before the network: the slot's policy saw nothing
                self.dispatcher.handed_out(request, self._clock())
                self.dispatcher.release(slot)
                return await self._outcome(request, early)
        outcome = await self._fetch(request, slot)
        if isinstance(outcome, Response):
            if self._response_hooks or self._on_response:
                return await self._responded(request, outcome)
            return outcome
        if outcome is None:
            return None
        if mw.on_exception:
            recovered: Request | Response | Failure | None
            try:
                recovered = await mw.process_exception(request, outcome, self.spider)
            except Exception as exc:
                recovered = self._give_up_on(request, exc, "process_exception")
            if recovered is not None:
                return await self._outcome(request, recovered)
        return self._give_up(request, outcome, None, outcome.name)

    async def _outcome(
        self, request: Request, got: Request | Response | Failure
    ) -> Response | Failure | None:
        if isinstance(got, Failure):
            return got
        if isinstance(got, Request):
            self._reschedule(got, request)
            return None
        return await self._responded(request, got)

    async def _responded(self, request: Request, response: Response) -> Response | Failure | None:
        """A response through ``process_response`` and ``response_received``."""
        for hook in self._response_hooks:  # inlined: this runs for every response
            try:
                got = await hook(request, response, self.spider)
            except Exception as exc:
                return self._give_up_on(request, exc, "process_response")
            if got is None:
                continue
            if isinstance(got, Request):
                self._reschedule(got, request)
                return None
            response = checked_response(hook, got)
        if self._on_response:
            await self.signals.send(
                signals.response_received, response=response, request=request, spider=self.spider
            )
        return response

    def _give_up_on(self, request: Request, exc: Exception, hook: str) -> Failure:
        """A middleware raised: IgnoreRequest gives the request up; anything else is
        also a bug, logged once per kind."""
        if isinstance(exc, IgnoreRequest):
            if exc.response is not None:
                return self._give_up(request, None, exc.response, exc.reason)
            return self._give_up(request, exc, None, exc.reason)
        self._errors.record(f"middleware {hook}", exc)
        return self._give_up(request, exc, None, f"middleware:{type(exc).__name__}")

    def retry_later(self, request: Request, decision: RetryDecision) -> Request:
        """For a retry middleware: count the retry and set when ``request`` may go
        again; return the request from the hook and the engine queues it."""
        self._not_before[request] = self._counted_retry(request, decision)
        return request

    def _reschedule(self, new: Request, current: Request) -> None:
        """A middleware returned a request: the same one goes back to the frontier as
        is (a retry: no duplicate filter), another is scheduled as a new request."""
        if new is current:
            not_before = self._not_before.pop(current, None)
            if not_before is None:
                current.attempts += 1
                not_before = self._clock()
            self.frontier.push_later(current, not_before)
        else:
            new.depth = current.depth  # a stand-in, not a link one level down
            self._schedule(new, None)

    async def _fetch(self, request: Request, slot: Slot) -> Response | TransportError | None:
        """Fetch once, with the slot's, the proxies' and the sessions' accounting: the
        response, the error, or None when the request went back to the frontier for
        another proxy."""
        started = self._clock()
        sent, waited = self.dispatcher.handed_out(request, started)
        self.stats.requests += 1
        tier = self.tiers[slot.tier]
        guard = tier.guard
        proxy = guard.take(request, slot, started) if guard is not None else None
        session = None
        url = proxy.proxy.url if proxy is not None else None
        if proxy is not None and tier.sessions is not None:
            session = tier.sessions.take(proxy.proxy, slot_key(request.url), started)
            url = session.proxy.url
        if self.blocks is not None:
            label = proxy.label if proxy is not None else None
            self.routes.in_flight[request] = (slot.tier, session, url, label)
        try:
            response = await tier.transport.fetch(request, url)
        except TransportError as exc:
            now = self._clock()
            slot.policy.on_error(now, now - sent)
            disconnect = exc.stale_connection or exc.name == "ServerDisconnectedError"
            self.metrics.on_error(
                slot.key,
                now,
                waited,
                now - started,
                disconnect=disconnect,
                inflight=slot.inflight,
                total_inflight=self.dispatcher.inflight,
            )
            self.dispatcher.release(slot)
            if session is not None:
                self.routes.session_done(tier, session, url, now, blocked=False)
            self.tiers.dropped(slot_key(request.url), slot.tier, now)
            if proxy is not None and guard is not None:
                scrubbed: TransportError | None = guard.errored(request, proxy, started, exc)
                return scrubbed
            return exc
        except BaseException:
            if proxy is not None and guard is not None:
                guard.pool.release(proxy)
            if session is not None:
                self.routes.session_done(tier, session, url, self._clock(), blocked=False)
            self.dispatcher.release(slot)
            raise
        now = self._clock()
        slot.policy.on_response(now, response.status, now - sent, response.headers)
        self.metrics.on_response(
            slot.key,
            now,
            response.status,
            waited,
            now - started,
            response.timing,
            slot.inflight,
            self.dispatcher.inflight,
        )
        self.dispatcher.release(slot)
        status = response.status
        self.stats.status_counts[status] += 1
        self.stats.http_versions[response.http_version] += 1
        if self._metered:
            self.routes.charge(request, response, slot, self.dispatcher.active)
        if session is not None:
            self.routes.session_done(tier, session, url, now, blocked=False)
        if guard is not None and proxy is not None:
            banned = status != 407 and self._proxy_banned(request, response, tier.ban_statuses)
            if session is not None and banned:
                # the gateway answered: the exit was refused, so the BlockDetection
                # middleware rotates the session rather than bench the gateway
                if guard.pool.succeeded(proxy, started):
                    log.warning("proxy %s works again: crawl resumed", proxy.label)
            elif guard.answered(request, proxy, started, status, banned=banned):
                return None
        return response

    def _proxy_banned(self, request: Request, response: Response, statuses: frozenset[int]) -> bool:
        """The ProxyBan middleware's judgement (or its replacement's)."""
        hooks = self._ban_hooks
        if len(hooks) == 1:
            return hooks[0](request, response, statuses)
        return any(hook(request, response, statuses) for hook in hooks)

    async def fetch_aside(self, request: Request) -> Response:
        """A fetch outside the crawl's slots and stats (robots.txt). As in Scrapy it
        passes the downloader middlewares, so a cache can answer it and a signer sign
        it; but it is never retried (``dont_retry``), and the caller judges the raw
        status itself, so a middleware giving the request up does not count."""
        request.meta["dont_retry"] = True
        mw = self.middleware
        try:
            if mw.on_request:
                early = await mw.process_request(request, self.spider)
                if isinstance(early, Response):
                    return early
            if self._guard is not None:
                with self._guard.aside() as proxy:
                    response = await self.transport.fetch(request, proxy)
            else:
                response = await self.transport.fetch(request)
            if mw.on_response:
                try:
                    got = await mw.process_response(request, response, self.spider)
                except IgnoreRequest:
                    return response
                if isinstance(got, Response):
                    return got
            return response
        except TransportError:
            raise
        except Exception as exc:
            self._errors.record("middleware on robots.txt", exc)
            raise TransportError(type(exc).__name__, str(exc), retryable=False) from None

    def requeue(self, request: Request, decision: RetryDecision) -> None:
        """Count a retry and send ``request`` back to the frontier, due after the delay."""
        self.frontier.push_later(request, self._counted_retry(request, decision))

    def _counted_retry(self, request: Request, decision: RetryDecision) -> float:
        """Count a retry of ``request``; when it may go again."""
        request.attempts += 1
        request.retries += decision.counts
        self.stats.retries += 1
        return self._clock() + decision.delay

    def _give_up(
        self, request: Request, exc: BaseException | None, response: Response | None, reason: str
    ) -> Failure:
        self.stats.failed += 1
        self.stats.errors[reason] += 1
        log.debug("giving up on %s: %s", request.url, reason)
        return Failure(request, exc, response, request.attempts + 1)
