"""Crawl-delay: each slot's policy spaces its sends by its host's ``Crawl-delay``.

When a slot is shared by several hosts (``politeness_key`` ``domain`` or ``ip``), its
delay is the largest ``Crawl-delay`` among the hosts routed through it so far
(:class:`SlotDelays`): the hosts share one limit, so the strictest host's rule
must hold for all of their requests together.
"""

from __future__ import annotations

import logging
import weakref
from collections.abc import Callable, Mapping
from typing import Any, Protocol

from pooledcrawl.http.keys import slot_key
from pooledcrawl.throttle.base import ConcurrencyPolicy

__all__ = ["CrawlDelayPolicy", "SlotDelays"]

log = logging.getLogger("pooledcrawl.robots")


class _Delay(Protocol):
    """Whatever carries a delay: a host's robots.txt state, or a shared slot's cell."""

    crawl_delay: float


class _DelayedHost(Protocol):
    """A host as the robots.txt frontier knows it (``robots_rules._Host``); a protocol,
    so this module need not import the frontier's state."""

    key: str
    crawl_delay: float
    slot: _SlotDelay | None


class _SlotDelay:
    """The delay of one shared slot: the largest ``Crawl-delay`` of its hosts."""

    __slots__ = ("__weakref__", "crawl_delay", "key")

    def __init__(self, key: str) -> None:
        self.key = key
        self.crawl_delay = 0.0


class SlotDelays:
    """Slot key -> the largest ``Crawl-delay`` among the hosts routed through it, for
    slot keys that are not hosts (a registered domain, an address).

    Such a key names no host whose robots.txt could be fetched; only routing knows
    which hosts share it. So :meth:`route` wraps the crawl's slot-key function and,
    for a host with a ``Crawl-delay``, raises its slot's delay. An entry lives while
    a slot's policy or a remembered delayed host holds it (weak values), so slots
    without delays cost nothing once the dispatcher drops them, and a delay outlives
    an evicted slot as long as its host's robots.txt is remembered."""

    def __init__(self) -> None:
        self._slots: weakref.WeakValueDictionary[str, _SlotDelay] = weakref.WeakValueDictionary()
        #: host key -> host, for remembered hosts with a Crawl-delay (usually few)
        self.delayed: dict[str, _DelayedHost] = {}

    def of(self, key: str) -> _SlotDelay:
        """The delay cell of slot ``key``, made if new (a policy keeps it alive)."""
        cell = self._slots.get(key)
        if cell is None:
            cell = self._slots[key] = _SlotDelay(key)
        return cell

    def note(self, host: _DelayedHost, key: str) -> None:
        """``host``'s requests go through slot ``key``."""
        cell = host.slot
        if cell is None or cell.key != key:
            # new, or its address changed: the old slot keeps what it had (strictest)
            cell = host.slot = self.of(key)
        if host.crawl_delay > cell.crawl_delay:
            cell.crawl_delay = host.crawl_delay
            log.info("slot %s: Crawl-delay %gs (the largest of its hosts)", key, cell.crawl_delay)

    def route(self, key: Callable[[str], str]) -> Callable[[str], str]:
        """``key``, noting the slot of each request of a delayed host as it is routed.
        While no remembered host has a delay, one truth test per call."""
        delayed = self.delayed
        note = self.note

        def keyed(url: str) -> str:
            found = key(url)
            if delayed:
                host = delayed.get(slot_key(url))
                if host is not None and (host.slot is None or host.slot.key != found):
                    note(host, found)
            return found

        return keyed


class CrawlDelayPolicy:
    """A slot's policy, with sends at least the host's ``Crawl-delay`` apart (the
    largest of its hosts' when hosts share the slot)."""

    def __init__(self, inner: ConcurrencyPolicy, host: _Delay) -> None:
        self._inner = inner
        self._host = host
        self._last_send = float("-inf")

    def limit(self) -> int:
        return self._inner.limit()

    def ready_at(self) -> float:
        ready = self._inner.ready_at()
        delay = self._host.crawl_delay
        return max(ready, self._last_send + delay) if delay else ready

    def on_send(self, now: float) -> None:
        self._last_send = now
        self._inner.on_send(now)

    def on_response(
        self, now: float, status: int, latency: float, headers: Mapping[str, str]
    ) -> None:
        self._inner.on_response(now, status, latency, headers)

    def on_error(self, now: float, latency: float) -> None:
        self._inner.on_error(now, latency)

    def snapshot(self) -> dict[str, Any]:
        snapshot = self._inner.snapshot()
        if self._host.crawl_delay:
            snapshot["crawl_delay"] = self._host.crawl_delay
        return snapshot

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)  # what else the dispatcher or metrics ask for
