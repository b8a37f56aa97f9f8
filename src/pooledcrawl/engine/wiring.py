"""Choosing the engine's components from the settings: the built-ins, or the classes
the ``*_class`` settings name; what the middlewares' build-time hooks change in them;
and the TaskGroup's UsageError unwrapping."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from typing import Any

from pooledcrawl.components import (
    build_components,
    custom_component,
    load_object,
    ordered_entries,
)
from pooledcrawl.engine.progress import ShowProgress
from pooledcrawl.errors import UsageError
from pooledcrawl.frontier.base import Frontier
from pooledcrawl.frontier.memory import MemoryFrontier
from pooledcrawl.middleware.chain import MiddlewareChain
from pooledcrawl.proxy.endpoint import ProxyConfig
from pooledcrawl.proxy.pool import ProxyPool
from pooledcrawl.settings import Settings
from pooledcrawl.throttle.base import PolicyFactory
from pooledcrawl.throttle.factory import policy_factory
from pooledcrawl.transport.base import Transport
from pooledcrawl.transport.factory import make_transport

__all__ = [
    "BASE_EXTENSIONS",
    "BUILTIN_EXTENSIONS",
    "apply_middleware_wiring",
    "build_extensions",
    "choose_frontier",
    "choose_policies",
    "choose_transport",
    "proxy_pool",
    "usage_errors_unwrapped",
]


#: extensions on by default (short name -> order), and every built-in by short name
BASE_EXTENSIONS = {"ShowProgress": 100}
BUILTIN_EXTENSIONS = {"ShowProgress": ShowProgress}


def build_extensions(crawler: Any) -> list[Any]:
    """The ``extensions`` setting's extensions, built-ins included, in order."""
    entries = ordered_entries(BASE_EXTENSIONS, crawler.settings.extensions)
    return build_components(entries, crawler, "extension", BUILTIN_EXTENSIONS)


def apply_middleware_wiring(crawler: Any, chain: MiddlewareChain) -> Frontier:
    """Run the middlewares' build-time hooks, each once: every tier's transport gets
    the default headers (``process_default_headers``: UserAgent, DefaultHeaders);
    the frontier is wrapped (``wrap_frontier``: RobotsTxt) and so is each slot's
    policy of the first tier (``wrap_policies``). Returns what the dispatcher pops
    from. Called before the crawl runs, so none of it is on the hot path."""
    for tier in crawler.tiers.tiers:
        use = getattr(tier.transport, "use_default_headers", None)
        if use is not None:
            use(chain.default_headers(tier.settings, crawler.spider))
    queue: Frontier = crawler.frontier
    for wrap_frontier in chain.frontier_hooks:
        queue = wrap_frontier(queue)
    factory = crawler.tiers[0].policy_factory
    for wrap_policies in chain.policy_hooks:
        factory = wrap_policies(factory)
    crawler.tiers[0].policy_factory = factory
    return queue


def choose_frontier(given: Frontier | None, settings: Settings) -> Frontier:
    # `is None`, not `or`: an empty frontier has len() 0 and is falsy
    if given is None:
        given = custom_component(settings.frontier_class, settings, "frontier_class")
    return given if given is not None else MemoryFrontier()


def choose_transport(settings: Settings) -> Transport:
    custom = custom_component(settings.transport_class, settings, "transport_class", settings)
    return custom if custom is not None else make_transport(settings)


def choose_policies(settings: Settings) -> PolicyFactory:
    """Per-domain policies: the ``policy_class`` setting's (one built now, to fail
    early), else the adaptive or fixed one."""
    entry = settings.policy_class
    if entry is None:
        return policy_factory(settings)
    cls = load_object(entry, "policy_class") if isinstance(entry, str) else entry
    custom_component(cls, settings, "policy_class", settings)
    return lambda _key: custom_component(cls, settings, "policy_class", settings)


def proxy_pool(proxies: ProxyConfig | ProxyPool | None, settings: Settings) -> ProxyPool | None:
    if proxies is None or isinstance(proxies, ProxyPool):
        return proxies
    return ProxyPool.from_config(
        proxies,
        cap=settings.proxy_concurrency,
        backoff_base=settings.proxy_backoff_base,
        backoff_cap=settings.proxy_backoff_cap,
    )


@contextlib.asynccontextmanager
async def usage_errors_unwrapped() -> AsyncIterator[None]:
    """A UsageError raised in a task reaches the CLI as itself (one line, exit 2),
    not inside the TaskGroup's ExceptionGroup."""
    try:
        yield
    except BaseExceptionGroup as group:
        usage = group.subgroup(lambda exc: isinstance(exc, UsageError))
        while usage is not None and isinstance(usage.exceptions[0], BaseExceptionGroup):
            usage = usage.exceptions[0]
        if usage is not None:
            raise usage.exceptions[0] from None
        raise
