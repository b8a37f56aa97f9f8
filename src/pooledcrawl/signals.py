"""A small async signal bus: the crawl's life-cycle events, for extensions.

Receivers are plain or async callables taking keyword arguments (the signal's
documented ones; accept ``**kwargs`` to stay compatible as signals gain some). As in
Scrapy's ``send_catch_log``, an error in a receiver is logged and counted, never
raised into the crawl. The engine checks whether a signal has receivers before it
builds the arguments, so a signal nobody listens to costs nothing per request.
"""

from __future__ import annotations

import asyncio
import inspect
import logging
from collections import Counter
from collections.abc import Awaitable, Callable
from typing import Any

__all__ = [
    "Signal",
    "SignalBus",
    "engine_idle",
    "item_dropped",
    "item_scraped",
    "request_dropped",
    "request_scheduled",
    "response_received",
    "spider_closed",
    "spider_opened",
]

log = logging.getLogger("pooledcrawl.signals")

Receiver = Callable[..., Any]


class Signal:
    """A named event; compared by identity."""

    __slots__ = ("doc", "name")

    def __init__(self, name: str, doc: str) -> None:
        self.name = name
        self.doc = doc

    def __repr__(self) -> str:
        return f"<Signal {self.name}>"


spider_opened = Signal("spider_opened", "spider: the crawl starts (sinks are open)")
spider_closed = Signal("spider_closed", "spider, reason: the crawl is over")
request_scheduled = Signal("request_scheduled", "request, spider: queued in the frontier")
request_dropped = Signal(
    "request_dropped", "request, spider, reason: not queued (duplicate, offsite, depth, ...)"
)
response_received = Signal(
    "response_received", "response, request, spider: a response passed the middlewares"
)
item_scraped = Signal("item_scraped", "item, spider: the item was written to every sink")
item_dropped = Signal("item_dropped", "item, spider, reason: a pipeline dropped the item")
engine_idle = Signal(
    "engine_idle",
    "spider: nothing is left to fetch; receivers may schedule more, or the crawl ends",
)

ALL_SIGNALS = (
    spider_opened,
    spider_closed,
    request_scheduled,
    request_dropped,
    response_received,
    item_scraped,
    item_dropped,
    engine_idle,
)


class SignalBus:
    """Receivers per signal. ``receivers(signal)`` is a live list: the engine keeps a
    reference and tests its truth, the whole cost of an unwatched signal."""

    def __init__(self) -> None:
        self._receivers: dict[Signal, list[Receiver]] = {s: [] for s in ALL_SIGNALS}
        #: receiver errors, by signal and exception type
        self.errors: Counter[str] = Counter()
        self._logged: set[tuple[str, str]] = set()
        #: async receivers started from synchronous code, awaited by drain()
        self._pending: set[asyncio.Task[Any]] = set()

    def connect(self, receiver: Receiver, signal: Signal) -> None:
        """Call ``receiver(**kwargs)`` on each ``signal`` (awaited when it is async)."""
        listeners = self._receivers.setdefault(signal, [])
        if receiver not in listeners:
            listeners.append(receiver)

    def disconnect(self, receiver: Receiver, signal: Signal) -> None:
        listeners = self._receivers.get(signal)
        if listeners is not None and receiver in listeners:
            listeners.remove(receiver)

    def receivers(self, signal: Signal) -> list[Receiver]:
        """The live list of ``signal``'s receivers (do not mutate it; use connect)."""
        return self._receivers.setdefault(signal, [])

    async def send(self, signal: Signal, **kwargs: Any) -> list[Any]:
        """Call every receiver in connection order; returns their results (an exception
        in place of a receiver that raised, after logging it once per kind)."""
        results: list[Any] = []
        for receiver in tuple(self._receivers.get(signal, ())):
            try:
                result = receiver(**kwargs)
                if inspect.isawaitable(result):
                    result = await result
            except Exception as exc:
                self._record(signal, receiver, exc)
                result = exc
            results.append(result)
        return results

    def send_nowait(self, signal: Signal, **kwargs: Any) -> None:
        """Send from synchronous code: plain receivers run now, async ones in a task
        that :meth:`drain` awaits (the engine drains before ``spider_closed``)."""
        for receiver in tuple(self._receivers.get(signal, ())):
            try:
                result = receiver(**kwargs)
            except Exception as exc:
                self._record(signal, receiver, exc)
                continue
            if inspect.isawaitable(result):
                task = asyncio.ensure_future(self._finish(signal, receiver, result))
                self._pending.add(task)
                task.add_done_callback(self._pending.discard)

    async def _finish(self, signal: Signal, receiver: Receiver, result: Awaitable[Any]) -> None:
        try:
            await result
        except Exception as exc:
            self._record(signal, receiver, exc)

    async def drain(self) -> None:
        """Wait for the receivers :meth:`send_nowait` started."""
        while self._pending:
            await asyncio.gather(*self._pending)

    def _record(self, signal: Signal, receiver: Receiver, exc: Exception) -> None:
        kind = f"signal {signal.name}:{type(exc).__name__}"
        self.errors[kind] += 1
        name = getattr(receiver, "__qualname__", repr(receiver))
        if (name, kind) not in self._logged:
            self._logged.add((name, kind))
            log.error(
                "receiver %s of %s raised %s: %s (further errors of this kind are only counted)",
                name,
                signal.name,
                type(exc).__name__,
                exc,
                exc_info=exc,
            )
