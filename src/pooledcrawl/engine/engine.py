"""The crawl engine: wires frontier, dispatcher, transport, policies and items together.

Workers (as many as the global ``concurrency``) loop: take a request the
dispatcher says may go, fetch it (``engine.download``), run its callback
(``engine.handler``), store what it yields. No task is created per request or per
discovered link.
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import logging
import time
from collections.abc import Callable, Coroutine, Sequence
from typing import Any

from pooledcrawl import signals
from pooledcrawl.engine.dispatcher import Dispatcher, key_function
from pooledcrawl.engine.download import Downloader
from pooledcrawl.engine.failure import Failure
from pooledcrawl.engine.gc_tuning import young_gc_threshold
from pooledcrawl.engine.handler import ResponseHandler
from pooledcrawl.engine.routes import Routes
from pooledcrawl.engine.tiering import TierSpec
from pooledcrawl.engine.wiring import (
    apply_middleware_wiring,
    build_extensions,
    choose_frontier,
    choose_policies,
    choose_transport,
    usage_errors_unwrapped,
)
from pooledcrawl.errors import UsageError
from pooledcrawl.ext import Bound
from pooledcrawl.frontier.base import Frontier
from pooledcrawl.http.keys import slot_key
from pooledcrawl.http.request import Request
from pooledcrawl.http.response import Response
from pooledcrawl.http.url import InvalidURL, UnsupportedScheme, prepare_url
from pooledcrawl.items.base import Sink
from pooledcrawl.items.processor import ItemProcessor
from pooledcrawl.metrics import CrawlMetrics
from pooledcrawl.middleware.chain import MiddlewareChain
from pooledcrawl.proxy.blocks import BlockDecision
from pooledcrawl.proxy.endpoint import ProxyConfig
from pooledcrawl.proxy.pool import ProxyPool
from pooledcrawl.retry.policy import RetryDecision, RetryPolicy
from pooledcrawl.settings import Settings
from pooledcrawl.signals import SignalBus
from pooledcrawl.spider import Spider
from pooledcrawl.stats import ErrorLog, Stats
from pooledcrawl.throttle.base import PolicyFactory
from pooledcrawl.transport.base import Transport

__all__ = ["Engine", "Failure"]

log = logging.getLogger("pooledcrawl.engine")


class Engine:
    """Also the ``crawler`` (``pooledcrawl.ext.Crawler``) that middlewares and
    extensions get in ``from_crawler`` and bound components in ``bind``.

    The engine owns the crawl's life cycle, scheduling and worker loop; a request's
    download is :class:`~pooledcrawl.engine.download.Downloader`'s, its response's
    callback :class:`~pooledcrawl.engine.handler.ResponseHandler`'s, and the proxy
    tiers, blocks and cost :class:`~pooledcrawl.engine.routes.Routes`'. ``attached``
    are objects that run with the crawl and need it (``bind(crawler)``)."""

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
        attached: Sequence[Bound] = (),
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.spider = spider
        self.settings = settings
        self.stats = Stats()
        #: the crawl's life-cycle events (see pooledcrawl.signals)
        self.signals = SignalBus()
        self.frontier: Frontier = choose_frontier(frontier, settings)
        self.transport: Transport = transport or choose_transport(settings)
        self.items = ItemProcessor(
            sinks, self.stats, settings.max_items, settings=settings, signals=self.signals
        )
        self._clock = clock
        #: the crawl's clock (monotonic seconds), for extensions
        self.clock = clock
        #: pool and latency metrics per domain, merged into the stats at the end
        self.metrics = CrawlMetrics(clock(), top=settings.top_hosts)
        policies = policy_factory or choose_policies(settings)
        if policy_wrapper is not None:  # e.g. job-wide limits shared through Redis
            policies = policy_wrapper(policies)
        #: coroutines that run alongside the crawl and are cancelled when it ends
        self._background = list(background)
        self._errors = ErrorLog(log, self.stats.errors)
        self._workers: list[asyncio.Task[None]] = []
        self._seeder: asyncio.Task[None] | None = None
        self._drop_tracking = settings.drop_tracking_params
        self.dispatcher: Dispatcher  # created in run(): it needs the running loop
        #: the tiers, their proxies and sessions, the blocks and the cost
        self.routes = Routes(
            self,
            spider,
            settings,
            self.stats,
            transport=self.transport,
            policy_factory=policies,
            policy_wrapper=policy_wrapper,
            proxies=proxies,
            tiers=tiers,
            requeue=self._requeue,
            clock=clock,
        )
        self.proxies = self.routes.proxies
        self.tiers = self.routes.tiers
        #: what the BlockDetection middleware reports to (None: it is left out)
        self.blocks = self.routes.blocks
        self._guard = self.routes.guard
        #: why the crawl had to stop short (every proxy down); the CLI exits 3
        self.fatal: str | None = None
        # live lists: an unwatched signal costs one truth test where it would be sent
        self._on_scheduled = self.signals.receivers(signals.request_scheduled)
        self._on_dropped = self.signals.receivers(signals.request_dropped)
        self._on_idle = self.signals.receivers(signals.engine_idle)
        self._idle_rounds_left = True
        self._idle_task: asyncio.Task[None] | None = None
        #: built last: their from_crawler() may use anything above
        self.extensions = build_extensions(self)
        self.middleware = MiddlewareChain.from_crawler(self)
        self._admit = self.middleware.schedule_hooks
        self._downloader = Downloader(self, self.schedule, self._errors)
        self._handler = ResponseHandler(self, self.schedule, self._errors)
        #: what the dispatcher pops from: the frontier, or a middleware's filter on it
        self.queue = apply_middleware_wiring(self, self.middleware)
        for component in (self.frontier, *attached):
            bind = getattr(component, "bind", None)
            if bind is not None:
                bind(self)

    # ---- lifecycle -----------------------------------------------------------------
    async def run(self) -> Stats:
        """Crawl until the frontier is exhausted or a close condition is met."""
        with young_gc_threshold(self.settings.gc_young_threshold):
            return await self._run()

    async def _run(self) -> Stats:
        source: Frontier = self.queue
        addresses, own_resolver = None, None
        mode = self.settings.politeness_key
        if mode == "ip":
            # here, not at the top: the resolver it needs (c-ares, aiohttp) is only
            # worth importing when slots are keyed by address
            from pooledcrawl.engine.addresses import ip_routing

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
        key = addresses.key if addresses is not None else key_function(mode)
        route_keys = getattr(self.queue, "route_keys", None)  # RobotsFrontier
        if route_keys is not None and key is not slot_key:
            key = route_keys(key)  # slots shared by hosts learn their Crawl-delays
        self.dispatcher = Dispatcher(
            source,
            self.tiers[0].policy_factory,
            self._clock,
            proxies=self.proxies,
            tiers=self.tiers,
            metrics=self.metrics,
            key=key,
            idle_timeout=self.settings.slot_idle_timeout,
            max_idle=self.settings.max_idle_slots,
            workers=max(t.settings.concurrency for t in self.tiers.tiers),
            crowded_cap=self.settings.crowded_domain_concurrency,
        )
        self.dispatcher.on_idle = self._idle
        self.routes.bind(self.dispatcher)
        self._downloader.start(self.dispatcher)
        self.stats.started_at = time.monotonic()
        self.metrics.started = self._clock()
        try:
            async with contextlib.AsyncExitStack() as stack:
                await self.frontier.open()
                stack.push_async_callback(self.frontier.close)
                stack.push_async_callback(self.transport.close)
                stack.push_async_callback(self.tiers.close)
                if self.queue is not self.frontier:
                    stack.push_async_callback(self.queue.close)
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
            self.routes.snapshot(self.stats.extra, self.metrics.started)
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
        download = self._downloader.download
        handle, run_callback = self._handler.handle, self._handler.run_callback
        while (got := await dispatcher.next()) is not None:
            request, slot = got
            if dispatcher.inflight > self.stats.max_inflight:
                self.stats.max_inflight = dispatcher.inflight
            try:
                outcome = await download(request, slot)
                if isinstance(outcome, Response):
                    await handle(request, outcome)
                elif outcome is not None and request.errback is not None:
                    await run_callback(request, request.errback, outcome)
            except BaseException:
                dispatcher.finish(request, ack=False)  # not completed: never acknowledged
                raise
            dispatcher.finish(request)
            limit = self.settings.close_on_errors
            if limit is not None and sum(self.stats.errors.values()) >= limit:
                self.request_stop(f"close_on_errors reached ({limit} errors)")

    # ---- for bound components (ext.Bound) ----------------------------------------------
    async def flush_items(self) -> None:
        await self.items.flush()

    def wake(self) -> None:
        self.dispatcher.notify()

    def demand(self, key: str) -> int:
        slot = self.dispatcher.slots.get(key)
        return 0 if slot is None else slot.inflight + len(slot.backlog)

    # ---- for the built-in middlewares ------------------------------------------------
    def retry_later(self, request: Request, decision: RetryDecision) -> Request:
        """For a retry middleware: count the retry and set when ``request`` may go
        again; return the request from the hook and the engine queues it."""
        return self._downloader.retry_later(request, decision)

    async def fetch_aside(self, request: Request) -> Response:
        """A fetch outside the crawl's slots and stats (robots.txt): see ``ext.Crawler``."""
        return await self._downloader.fetch_aside(request)

    def retry_policy(self, request: Request) -> RetryPolicy:
        """For the Retry middleware: the retry policy of the tier ``request`` went through."""
        return self.routes.retry_policy(request)

    def on_block_decision(
        self, request: Request, response: Response, decision: BlockDecision | None
    ) -> Request | None:
        """For the BlockDetection middleware (see ``Routes.on_block_decision``)."""
        return self.routes.on_block_decision(request, response, decision)

    def _requeue(self, request: Request, decision: RetryDecision) -> None:
        self._downloader.requeue(request, decision)  # a proxy failed it: another goes

    def _proxies_down(self, message: str) -> None:
        self.fatal = message
        log.error("%s", message)
        self.stats.extra["fatal_error"] = message
        self.request_stop("all proxies down")
