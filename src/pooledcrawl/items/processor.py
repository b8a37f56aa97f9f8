"""Runs items through the pipelines and out to every sink."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import TYPE_CHECKING

from pooledcrawl.engine.stats import Stats
from pooledcrawl.items.base import Item, Sink

if TYPE_CHECKING:
    from pooledcrawl.spider import Spider

__all__ = ["ItemProcessor"]

log = logging.getLogger("pooledcrawl.items")


class ItemProcessor:
    """Owns the sinks. ``process`` awaits the slowest sink, which is the back-pressure
    that keeps a slow database from letting items pile up in memory."""

    def __init__(self, sinks: Sequence[Sink], stats: Stats, max_items: int | None) -> None:
        self._sinks = list(sinks)
        self._stats = stats
        self._max_items = max_items

    async def open(self, spider: Spider) -> None:
        for sink in self._sinks:
            await sink.open(spider)

    async def process(self, items: list[Item]) -> bool:
        """Write ``items``; False once ``max_items`` is reached (the crawl should stop)."""
        if self._max_items is not None:
            room = self._max_items - self._stats.items
            if room <= 0:
                return False
            del items[room:]
        for sink in self._sinks:
            await sink.write(items)
        self._stats.items += len(items)
        return self._max_items is None or self._stats.items < self._max_items

    async def flush(self) -> None:
        for sink in self._sinks:
            await sink.flush()

    async def close(self) -> None:
        errors: list[BaseException] = []
        for sink in self._sinks:
            try:
                await sink.close()
            except Exception as exc:  # close the others anyway; report the first
                log.error("closing %s failed: %s", type(sink).__name__, exc)
                errors.append(exc)
        self._stats.extra["sinks"] = [sink.stats() for sink in self._sinks]
        if errors:
            raise errors[0]

    def emergency_flush(self) -> None:
        for sink in self._sinks:
            sink.emergency_flush()
