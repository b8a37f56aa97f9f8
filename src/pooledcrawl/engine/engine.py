"""The crawl engine: wires frontier, dispatcher, transport, policies and items together.

Workers (as many as the global ``concurrency``) loop: take a request the
dispatcher says may go, fetch it, run its callback, store what it yields. No
task is created per request or per discovered link.
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import logging
import time
import types
from collections.abc import Callable, Coroutine, Sequence
from typing import Any

from pooledcrawl import signals
from pooledcrawl.engine.addresses import ip_routing
from pooledcrawl.engine.callbacks import outputs_of
from pooledcrawl.engine.dispatcher import Dispatcher, Slot, key_function, slot_key
from pooledcrawl.engine.failure import Failure
from pooledcrawl.engine.proxies import ProxyGuard
from pooledcrawl.engine.tiering import BlockBook, Tier, Tiers, TierSpec, cost_meter
from pooledcrawl.engine.wiring import (
    build_extensions,
    choose_frontier,
    choose_policies,
    choose_transport,
    proxy_pool,
    usage_errors_unwrapped,
)
from pooledcrawl.errors import CloseSpider, IgnoreRequest, UsageError
from pooledcrawl.frontier.base import Frontier
from pooledcrawl.http.request import Request
from pooledcrawl.http.response import Response
from pooledcrawl.http.url import InvalidURL, UnsupportedScheme, canonical_or_raise, prepare_url
from pooledcrawl.hygiene.robots import RobotsFrontier
from pooledcrawl.items.base import Sink, is_item
from pooledcrawl.items.processor import ItemProcessor
from pooledcrawl.metrics import CrawlMetrics
from pooledcrawl.middleware.chain import MiddlewareChain, checked_response
from pooledcrawl.proxy.blocks import BlockDecision
from pooledcrawl.proxy.endpoint import ProxyConfig
from pooledcrawl.proxy.pool import ProxyPool
from pooledcrawl.proxy.sessions import ProxySession
from pooledcrawl.retry.policy import RetryDecision, RetryPolicy
from pooledcrawl.settings import Settings
from pooledcrawl.signals import SignalBus
from pooledcrawl.spider import Spider
from pooledcrawl.stats import ErrorLog, Stats
from pooledcrawl.throttle.base import PolicyFactory
from pooledcrawl.transport.base import Transport, TransportError

__all__ = ["Engine", "Failure"]

log = logging.getLogger("pooledcrawl.engine")


class Engine:
    """Also the ``crawler`` that middlewares and extensions get in ``from_crawler``:
    ``crawler.settings``, ``.signals``, ``.stats``, ``.spider``, ``.schedule()``."""

    def __init__(
        self,
        spider: Spider,
        settings: Settings,
        *,
        sinks: Sequence[Sink] = (),
        frontier: Frontier | None = None,
        transport: Transport | None = None,
        policy_factory: PolicyFactory | None = None,
        policy_wrapper: Callable[[PolicyFactory], PolicyFactory] | None = None,
        background: Sequence[Callable[[], Coroutine[Any, Any, None]]] = (),
        proxies: ProxyConfig | ProxyPool | None = None,
        tiers: Sequence[TierSpec] = (),
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.spider = spider
        self.settings = settings
        self.stats = Stats()
        #: the crawl's life-cycle events (see pooledcrawl.signals)
        self.signals = SignalBus()
        self.frontier: Frontier = choose_frontier(frontier, settings)
        self.transport: Transport = transport or choose_transport(settings)
        #: charges a request's retry budget when a proxy fails it (see _proxy_failed);
        #: the retry decisions themselves are the Retry middleware's
        self.retry = RetryPolicy.from_settings(settings)
        #: when a request a middleware retries may go again (see retry_later)
        self._not_before: dict[Request, float] = {}
        self.items = ItemProcessor(
            sinks, self.stats, settings.max_items, settings=settings, signals=self.signals
        )
        self._clock = clock
        #: the crawl's clock (monotonic seconds), for extensions
        self.clock = clock
        #: pool and latency metrics per domain, merged into the stats at the end
        self.metrics = CrawlMetrics(clock(), top=settings.top_hosts)
        self._policy_factory = policy_factory or choose_policies(settings)
        if policy_wrapper is not None:  # e.g. job-wide limits shared through Redis
            self._policy_factory = policy_wrapper(self._policy_factory)
        #: coroutines that run alongside the crawl and are cancelled when it ends
        self._background = list(background)
        self._errors = ErrorLog(log, self.stats.errors)
        self._workers: list[asyncio.Task[None]] = []
        self._seeder: asyncio.Task[None] | None = None
        self._drop_tracking = settings.drop_tracking_params
        #: with obey_robots, what the dispatcher pops from: requests robots.txt allows
        self.robots: RobotsFrontier | None = None
        if settings.obey_robots:
            self.robots = RobotsFrontier(
                self.frontier, settings, self.stats, self._fetch_aside, clock
            )
            self._policy_factory = self.robots.wrap_policies(self._policy_factory)
        self._handle_statuses: frozenset[int] = frozenset(
            getattr(spider, "handle_httpstatus_list", ())
        )
        self.dispatcher: Dispatcher  # created in run(): it needs the running loop
        #: the job's proxies (the first tier's); None connects directly
        self.proxies = proxy_pool(proxies, settings)
        self._guard = self._guard_for(self.proxies, settings)
        first = Tier(
            0,
            tiers[0].name if tiers else "default",
            settings,
            proxies=self.proxies,
            transport=self.transport,
            policy_factory=self._policy_factory,
            guard=self._guard,
        )
        wrap = policy_wrapper or (lambda factory: factory)
        #: proxy tiers (``--profile a,b,c``); one when a single profile is used
        self.tiers = Tiers.build(tiers, first, wrap=wrap, guard_for=self._guard_for)
        #: what the BlockDetection middleware reports to; None when nothing but the
        #: proxy ban statuses can be a block (then that middleware is left out)
        self.blocks = BlockBook.create(settings, spider, self.tiers)
        #: the tier and session each request in flight went through, for the blocks
        self._routes: dict[Request, tuple[int, ProxySession | None, str | None, str | None]] = {}
        #: bytes and cost; None when no price, budget or tiers are set
        self.cost = cost_meter(self.tiers, settings.budget)
        if self.cost is not None:
            for tier in self.tiers.tiers:
                if hasattr(tier.transport, "count_bytes"):
                    tier.transport.count_bytes = True
        #: why the crawl had to stop short (every proxy down); the CLI exits 3
        self.fatal: str | None = None
        # live lists: an unwatched signal costs one truth test where it would be sent
        self._on_scheduled = self.signals.receivers(signals.request_scheduled)
        self._on_dropped = self.signals.receivers(signals.request_dropped)
        self._on_response = self.signals.receivers(signals.response_received)
        self._on_idle = self.signals.receivers(signals.engine_idle)
        self._idle_rounds_left = True
        self._idle_task: asyncio.Task[None] | None = None
        #: built last: their from_crawler() may use anything above
        self.extensions = build_extensions(self)
        self.middleware = MiddlewareChain.from_crawler(self)
        self._admit = self.middleware.schedule_hooks
        self._response_hooks = self.middleware.response_hooks

    # ---- lifecycle -----------------------------------------------------------------
    async def run(self) -> Stats:
        """Crawl until the frontier is exhausted or a close condition is met."""
        source: Frontier = self.robots if self.robots is not None else self.frontier
        addresses, own_resolver = None, None
        mode = self.settings.politeness_key
        if mode == "ip":
            mode = "host"  # unless the addresses can be known: see ip_routing
            routing = ip_routing(
                source,
                self.settings,
                self.transport,
                (tier.proxies for tier in self.tiers.tiers),
            )
            if routing is not None:
                addresses, own_resolver = routing
                source = addresses
        self.dispatcher = Dispatcher(
            source,
            self._policy_factory,
            self._clock,
            proxies=self.proxies,
            tiers=self.tiers,
            metrics=self.metrics,
            key=addresses.key if addresses is not None else key_function(mode),
            idle_timeout=self.settings.slot_idle_timeout,
            max_idle=self.settings.max_idle_slots,
        )
        self.dispatcher.on_idle = self._idle
        for tier in self.tiers.tiers:
            if tier.guard is not None:
                tier.guard.dispatcher = self.dispatcher
        self.stats.started_at = time.monotonic()
        self.metrics.started = self._clock()
        try:
            async with contextlib.AsyncExitStack() as stack:
                await self.frontier.open()
                stack.push_async_callback(self.frontier.close)
                stack.push_async_callback(self.transport.close)
                stack.push_async_callback(self.tiers.close)
                if self.robots is not None:
                    stack.push_async_callback(self.robots.close)
                if addresses is not None:
                    stack.push_async_callback(addresses.close)
                if own_resolver is not None:
                    stack.push_async_callback(own_resolver.close)
                await self.items.open(self.spider)
                stack.push_async_callback(self.items.close)
                stack.push_async_callback(self._close_spider)
                await self.signals.send(signals.spider_opened, spider=self.spider)
                async with usage_errors_unwrapped(), asyncio.TaskGroup() as tg:
                    self.dispatcher.producers += 1
                    self._seeder = tg.create_task(self._seed())
                    workers = max(t.settings.concurrency for t in self.tiers.tiers)
                    self._workers = [tg.create_task(self._worker()) for _ in range(workers)]
                    tg.create_task(self._watch())
                    if self._guard is not None:
                        pending = lambda: len(self.frontier) + self.dispatcher.parked  # noqa: E731
                        tg.create_task(self._guard.watch(pending, self._proxies_down))
                    extras = [tg.create_task(make()) for make in self._background]
                    await asyncio.wait(self._workers)
                    for task in extras:
                        task.cancel()
        finally:
            self.stats.finished_at = time.monotonic()
            busy = self.dispatcher.retire_all()  # every host into the aggregates
            self.stats.domains = self.metrics.hosts.top_domains()
            self.stats.extra["hosts"] = self.metrics.hosts.summary(busy)
            # the resolver's counts: the transport's, or the one politeness_key=ip made
            dns = getattr(self.transport, "dns", None) or own_resolver
            if dns is not None:
                self.stats.extra["dns"] = dns.counts.to_dict()
            self.stats.extra["timeline"] = self.metrics.timeline.to_dict()
            if self.signals.errors:
                self.stats.errors.update(self.signals.errors)
            if self._guard is not None:
                self.stats.extra["proxies"] = self._guard.snapshot()
            self._tier_stats()
            if not self.stats.finish_reason:
                self.stats.finish_reason = "finished"
        return self.stats

    async def _close_spider(self) -> None:
        """``spider_closed``, then ``Spider.closed(reason)``, before sinks close (so
        both may still write items through them... and see the final counts)."""
        reason = self.stats.finish_reason or "finished"
        await self.signals.drain()
        await self.signals.send(signals.spider_closed, spider=self.spider, reason=reason)
        closed = getattr(self.spider, "closed", None)
        if callable(closed):
            try:
                result = closed(reason)
                if inspect.isawaitable(result):
                    await result
            except Exception as exc:
                self._errors.record(f"{type(self.spider).__name__}.closed", exc)

    def _idle(self) -> bool:
        """Nothing left to fetch: True keeps the crawl open while ``engine_idle``
        receivers run; the crawl ends when a round of them scheduled nothing."""
        if not self._on_idle or not self._idle_rounds_left or self.dispatcher.closed:
            return False
        self.dispatcher.producers += 1
        self._idle_task = asyncio.get_running_loop().create_task(self._send_idle())
        return True

    async def _send_idle(self) -> None:
        try:
            await self.signals.send(signals.engine_idle, spider=self.spider)
        finally:
            if self.frontier.exhausted():
                self._idle_rounds_left = False
            self.dispatcher.producer_done()

    def request_stop(self, reason: str, *, grace: float | None = None) -> None:
        """Stop taking new work; in-flight requests get ``grace`` seconds (default: the
        ``shutdown_grace`` setting) to finish, then they are cancelled."""
        if self.dispatcher.closed:
            return
        log.info("stopping: %s", reason)
        self.stats.finish_reason = reason
        self.dispatcher.close()
        if grace is None:
            grace = self.settings.shutdown_grace
        asyncio.get_running_loop().call_later(grace, self._cancel_workers)

    def _cancel_workers(self) -> None:
        # a start() stuck awaiting would keep the TaskGroup open as surely as a worker
        for task in (*self._workers, *([self._seeder] if self._seeder else [])):
            task.cancel()

    def emergency_flush(self) -> None:
        """Push buffered items out now; called before an immediate exit."""
        self.items.emergency_flush()

    async def _seed(self) -> None:
        try:
            if not await self.frontier.claim_seeding():
                return
            try:
                start = self.spider.start()
                if self.middleware.on_start:
                    start = self.middleware.process_start(start, self.spider)
                async for request in start:
                    if self.dispatcher.closed:
                        break
                    if isinstance(request, Request):
                        self.schedule(request, None)
            finally:
                self.frontier.seeding_done()
        except UsageError:
            raise
        except Exception as exc:
            self._errors.record("start()", exc)
        finally:
            self.dispatcher.producer_done()

    async def _watch(self) -> None:
        """The time limit, and the metrics timeline's crawl-wide samples."""
        deadline = self.settings.max_duration
        while True:
            wait = 0.5
            if deadline is not None:
                left = self.stats.started_at + deadline - time.monotonic()
                wait = max(min(wait, left), 0.0)
            if await self.dispatcher.wait_closed(wait):
                break
            if deadline is not None and time.monotonic() - self.stats.started_at >= deadline:
                self.request_stop("max_duration reached")
                continue
            self.metrics.sample(self._clock(), self.stats.items)
        self.metrics.sample(self._clock(), self.stats.items)  # the last bucket's items

    # ---- scheduling ----------------------------------------------------------------
    def schedule(self, request: Request, parent: Request | None) -> None:
        """Validate, deduplicate and queue a request a spider yielded."""
        try:
            url, canonical = prepare_url(request.url, drop_tracking=self._drop_tracking)
        except UnsupportedScheme:
            # mailto:, tel:, javascript:... a browser would not fetch them either
            self.stats.links_skipped += 1
            return
        except InvalidURL as exc:
            self.stats.bad_url(request.url, str(exc))
            if self._on_dropped:
                self._dropped(request, "invalid_url")
            return
        # the URL a browser would send (escapes kept as written); dedup uses the canonical form
        request.url = url
        if parent is not None:
            request.depth = parent.depth + 1
        for admit in self._admit:  # offsite and depth rules (OffsiteDepth), ...
            refused = admit(request, canonical, self.spider)
            if refused is not None:
                if self._on_dropped:
                    self._dropped(request, refused)
                return
        if self.frontier.push(request, canonical):
            self.dispatcher.notify()
            if self._on_scheduled:
                self.signals.send_nowait(
                    signals.request_scheduled, request=request, spider=self.spider
                )
        else:
            self.stats.duplicates_filtered += 1
            if self._on_dropped:
                self._dropped(request, "duplicate")

    def _dropped(self, request: Request, reason: str) -> None:
        self.signals.send_nowait(
            signals.request_dropped, request=request, spider=self.spider, reason=reason
        )

    # ---- the worker loop -----------------------------------------------------------
    async def _worker(self) -> None:
        dispatcher = self.dispatcher
        while (got := await dispatcher.next()) is not None:
            request, slot = got
            if dispatcher.inflight > self.stats.max_inflight:
                self.stats.max_inflight = dispatcher.inflight
            try:
                outcome = await self._download(request, slot)
                if isinstance(outcome, Response):
                    await self._handle_response(request, outcome)
                elif outcome is not None and request.errback is not None:
                    await self._run_callback(request, request.errback, outcome)
            except BaseException:
                dispatcher.finish(request, ack=False)  # not completed: never acknowledged
                raise
            dispatcher.finish(request)
            limit = self.settings.close_on_errors
            if limit is not None and sum(self.stats.errors.values()) >= limit:
                self.request_stop(f"close_on_errors reached ({limit} errors)")

    async def _download(self, request: Request, slot: Slot) -> Response | Failure | None:
        if self.blocks is None:
            return await self._download_once(request, slot)
        try:
            return await self._download_once(request, slot)
        finally:
            self._routes.pop(request, None)

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
                self.dispatcher.waited(request, self._clock())
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
            self.schedule(new, None)

    async def _fetch(self, request: Request, slot: Slot) -> Response | TransportError | None:
        """Fetch once, with the slot's, the proxies' and the sessions' accounting: the
        response, the error, or None when the request went back to the frontier for
        another proxy."""
        started = self._clock()
        waited = self.dispatcher.waited(request, started)
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
            self._routes[request] = (slot.tier, session, url, label)
        try:
            response = await tier.transport.fetch(request, url)
        except TransportError as exc:
            slot.policy.on_error(self._clock(), self._clock() - started)
            now = self._clock()
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
                self._session_done(tier, session, url, now, blocked=False)
            self.tiers.dropped(slot_key(request.url), slot.tier, now)
            if proxy is not None and guard is not None:
                return guard.errored(request, proxy, started, exc)
            return exc
        except BaseException:
            if proxy is not None and guard is not None:
                guard.pool.release(proxy)
            if session is not None:
                self._session_done(tier, session, url, self._clock(), blocked=False)
            self.dispatcher.release(slot)
            raise
        now = self._clock()
        slot.policy.on_response(now, response.status, now - started, response.headers)
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
        if self.cost is not None:
            self._charge(request, response, slot, tier)
        if session is not None:
            self._session_done(tier, session, url, now, blocked=False)
        if guard is not None and proxy is not None:
            if session is not None and status in tier.ban_statuses:
                # the gateway answered: the exit was refused, so the BlockDetection
                # middleware rotates the session rather than bench the gateway
                if guard.pool.succeeded(proxy, started):
                    log.warning("proxy %s works again: crawl resumed", proxy.label)
            elif guard.answered(request, proxy, started, status):
                return None
        return response

    # ---- blocks, sessions, tiers and cost ------------------------------------------
    def _guard_for(self, pool: ProxyPool | None, settings: Settings) -> ProxyGuard | None:
        """Proxy health for one tier's pool, charging that tier's retry budget."""
        if pool is None:
            return None
        retry = RetryPolicy.from_settings(settings)
        return ProxyGuard(pool, settings, self.stats, retry, self._requeue, self._clock)

    def _charge(self, request: Request, response: Response, slot: Slot, tier: Tier) -> None:
        cost = self.cost
        assert cost is not None
        domain = slot_key(request.url)
        cost.charge(tier.name, f"{slot.tier}:{tier.name}", domain, response.wire_bytes)
        # every request handed out may still be paid for: in flight, or about to be
        if cost.over_budget(self.dispatcher.active):
            self.request_stop(f"budget reached ({cost.total.cost:.4g} of {cost.budget:g})")

    def _session_done(
        self, tier: Tier, session: ProxySession, url: str | None, now: float, *, blocked: bool
    ) -> None:
        assert tier.sessions is not None
        if tier.sessions.done(session, now, blocked=blocked):
            discard = getattr(tier.transport, "discard", None)
            if discard is not None:
                discard(url)  # its connections and cookies go with it

    def retry_policy(self, request: Request) -> RetryPolicy:
        """For the Retry middleware: the retry policy of the tier ``request`` went through."""
        route = self._routes.get(request)
        return self.tiers[route[0] if route is not None else 0].retry

    def on_block_decision(
        self, request: Request, response: Response, decision: BlockDecision | None
    ) -> Request | None:
        """For the BlockDetection middleware: what the decision on ``response`` means.

        It is counted (per domain, tier, session and proxy) and fed to the tier policy.
        A block never reaches the spider: the session that got it is retired, and the
        request is retried at once on a fresh session (a new exit) or through the tier
        above, else after a backoff, up to ``max_block_retries`` without using the
        retry budget; then the budget; then it is given up as ``Blocked``. A ban
        status with no session in play stays the proxy pool's business, as before."""
        book = self.blocks
        route = self._routes.get(request)
        if book is None or route is None:
            return None
        index, session, url, label = route
        tier = self.tiers[index]
        now = self._clock()
        domain = slot_key(request.url)
        self.tiers.observe(domain, index, now, blocked=decision is not None)
        if decision is None:
            return None
        book.count(decision, domain=domain, tier=tier.name, session=session, proxy=label)
        if session is not None:
            assert tier.sessions is not None
            if tier.sessions.retire(session):
                discard = getattr(tier.transport, "discard", None)
                if discard is not None:
                    discard(url)
        elif decision.kind == "status":
            return None
        blocked = request.get_meta("_blocks", 0) + 1
        request.meta["_blocks"] = blocked
        if not request.get_meta("dont_retry") and blocked <= tier.settings.max_block_retries:
            # a new session usually is a new IP, and a tier above may take over; a few
            # in a row blocked means the pool is burnt for now, so give it time
            fresh = session is not None or tier.index + 1 < len(self.tiers)
            delay = 0.0 if fresh and blocked <= 3 else tier.retry.backoff(blocked)
            book.retried += 1
            return self.retry_later(request, RetryDecision(delay, counts=False))
        decision_ = tier.retry.for_error(request, True)
        if decision_ is not None:
            return self.retry_later(request, decision_)
        raise IgnoreRequest("Blocked", response=response)

    def _tier_stats(self) -> None:
        extra = self.stats.extra
        if self.blocks is not None:
            extra["blocks"] = self.blocks.snapshot(self.tiers)
        if self.cost is not None:
            extra["cost"] = self.cost.snapshot()
        policy = self.tiers.policy
        if policy is not None:
            extra["tiers"] = {
                "order": list(policy.names),
                "domains": policy.snapshot(self.metrics.started),
            }
            for tier in self.tiers.tiers[1:]:
                if tier.guard is not None:
                    extra.setdefault("tier_proxies", {})[tier.name] = tier.guard.snapshot()

    async def _fetch_aside(self, request: Request) -> Response:
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
                response = await self._guard.fetch_aside(self.transport, request)
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

    def _proxies_down(self, message: str) -> None:
        self.fatal = message
        log.error("%s", message)
        self.stats.extra["fatal_error"] = message
        self.request_stop("all proxies down")

    def _requeue(self, request: Request, decision: RetryDecision) -> None:
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

    async def _handle_response(self, request: Request, response: Response) -> None:
        status = response.status
        if (
            (status < 200 or status >= 300)
            and status not in self._handle_statuses
            and not (request.get_meta("handle_httpstatus_all"))
        ):
            if request.errback is not None:
                failure = Failure(request, None, response, request.attempts + 1)
                await self._run_callback(request, request.errback, failure)
            return
        if response.url != request.url and not await self._redirect_is_new(request, response):
            self.stats.duplicates_filtered += 1
            return
        max_pages = self.settings.max_pages
        if max_pages is not None and self.stats.pages >= max_pages:
            # stopping: responses still in flight are not parsed past the limit, and
            # go back unparsed, so a resumed job (--jobdir) still has them
            self.frontier.push_later(request, self._clock())
            return
        self.stats.pages += 1
        if max_pages is not None and self.stats.pages >= max_pages:
            self.request_stop("max_pages reached")
        callback = request.callback or self.spider.parse
        await self._run_callback(request, callback, response)

    async def _redirect_is_new(self, request: Request, response: Response) -> bool:
        """Whether a page reached through a redirect is one the crawl has not queued
        under its own URL: if it has, that request parses it (as Scrapy's dupefilter
        drops the redirected request)."""
        if request.dont_filter or request.method != "GET":
            return True
        try:
            canonical = canonical_or_raise(response.url, drop_tracking=self._drop_tracking)
            if canonical == canonical_or_raise(request.url, drop_tracking=self._drop_tracking):
                return True  # the same URL, only spelled differently by the client
        except InvalidURL:
            return True
        return await self.frontier.add_seen(canonical)

    async def _run_callback(self, request: Request, callback: Callable[..., Any], arg: Any) -> None:
        items: list[Any] = []
        kwargs = request._cb_kwargs or {}
        try:
            result = callback(arg, **kwargs)
            if self.middleware.on_output:
                stream = self.middleware.process_spider_output(arg, outputs_of(result), self.spider)
                async for output in stream:
                    self._take_output(output, request, items)
            elif type(result) is types.GeneratorType:
                # the usual callback: a plain generator, iterated without an async wrapper
                for output in result:
                    self._take_output(output, request, items)
            else:
                async for output in outputs_of(result):
                    self._take_output(output, request, items)
        except CloseSpider as exc:
            self.request_stop(f"closed by spider: {exc.reason}")
        except UsageError:
            raise  # e.g. a callback a persistent frontier cannot store: stop, exit 2
        except Exception as exc:
            name = getattr(callback, "__name__", "callback")
            self._errors.record(f"{type(self.spider).__name__}.{name}", exc)
        if items and not await self.items.process(items):
            self.request_stop("max_items reached")

    def _take_output(self, output: Any, request: Request, items: list[Any]) -> None:
        if isinstance(output, Request):
            self.schedule(output, request)
        elif is_item(output):
            items.append(output)
        elif output is not None:
            self.stats.errors["UnsupportedOutput"] += 1
