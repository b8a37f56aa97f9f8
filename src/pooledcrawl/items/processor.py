"""Runs items through the pipelines and out to every sink."""

from __future__ import annotations

import inspect
import logging
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from pooledcrawl.errors import DropItem
from pooledcrawl.items.base import Item, Sink
from pooledcrawl.items.pipelines import build_pipelines
from pooledcrawl.signals import SignalBus, item_dropped, item_scraped
from pooledcrawl.stats import ErrorLog, Stats

if TYPE_CHECKING:
    from pooledcrawl.settings import Settings
    from pooledcrawl.spider import Spider

__all__ = ["ItemProcessor"]

log = logging.getLogger("pooledcrawl.items")

#: Distinct drop reasons kept in stats; more are counted under "other" so a reason
#: that embeds item data cannot grow the stats without bound.
_MAX_REASONS = 50
#: Seconds between refreshes of the live ``stats.extra`` sections.
_STATS_REFRESH = 1.0


@dataclass(slots=True)
class _Stage:
    name: str
    pipeline: Any
    process: Callable[[Item, Any], Any]
    seconds: float = 0.0


class ItemProcessor:
    """Runs the pipelines, then writes to every sink.

    ``process`` awaits each pipeline and the slowest sink, which is the back-pressure
    that keeps a slow database from letting items pile up in memory: the worker that
    produced the items waits, so the crawl slows to the speed of its outputs.
    """

    def __init__(
        self,
        sinks: Sequence[Sink],
        stats: Stats,
        max_items: int | None,
        *,
        settings: Settings | None = None,
        pipelines: Sequence[Any] = (),
        signals: SignalBus | None = None,
    ) -> None:
        self._sinks = list(sinks)
        # Sinks that may wait (a database) open first, so a refused connection fails the
        # crawl before any file is truncated, and are written last, so every sink receives
        # an item before the first await: even an immediate exit finds it in all of them.
        self._open_order = sorted(self._sinks, key=lambda s: not getattr(s, "may_block", False))
        self._writers: list[Sink] = []
        self._stats = stats
        self._max_items = max_items
        self._settings = settings
        self._entries = list(pipelines)
        self._stages: list[_Stage] = []
        self._spider: Spider | None = None
        self._opened_sinks: list[Sink] = []
        self._errors = ErrorLog(log, stats.errors)
        self._dropped: Counter[str] = Counter()
        self._failed: Counter[str] = Counter()
        self._sink_seconds = 0.0
        self._last_refresh = 0.0
        self._signals = signals
        # live receiver lists: no per-item cost while nobody listens
        self._on_scraped = signals.receivers(item_scraped) if signals else []
        self._on_dropped = signals.receivers(item_dropped) if signals else []

    # ---- lifecycle -------------------------------------------------------------------
    async def open(self, spider: Spider) -> None:
        """Build and open the pipelines, then open the sinks; on failure close what opened."""
        from pooledcrawl.settings import Settings

        self._spider = spider
        settings = self._settings or Settings()
        entries = [*getattr(spider, "pipelines", ()), *settings.pipelines, *self._entries]
        try:
            for pipeline in build_pipelines(entries, settings):
                if callable(opener := getattr(pipeline, "open", None)):
                    await _maybe_await(opener(spider))
                name = type(pipeline).__name__
                self._stages.append(_Stage(name, pipeline, pipeline.process_item))
            for sink in self._open_order:
                await sink.open(spider)
                self._opened_sinks.append(sink)
        except BaseException:
            await self._close_all()  # errors while closing are logged; the first one wins
            raise
        self._writers = self._open_order[::-1]
        self._refresh_stats()

    async def process(self, items: list[Item]) -> bool:
        """Write ``items``; False once ``max_items`` is reached (the crawl should stop)."""
        if self._stages:
            items = await self._run_pipelines(items)
        if self._max_items is not None:
            room = self._max_items - self._stats.items
            if room <= 0:
                return False
            del items[room:]
        if items:
            # Counted before the awaits below so concurrent workers see the room taken.
            self._stats.items += len(items)
            started = time.perf_counter()
            for sink in self._writers:
                await sink.write(items)
            if self._on_scraped:
                assert self._signals is not None
                for item in items:
                    await self._signals.send(item_scraped, item=item, spider=self._spider)
            now = time.perf_counter()
            self._sink_seconds += now - started
            if now - self._last_refresh >= _STATS_REFRESH:
                self._refresh_stats()
        return self._max_items is None or self._stats.items < self._max_items

    async def flush(self) -> None:
        for sink in self._opened_sinks:
            await sink.flush()

    async def close(self) -> None:
        """Close pipelines and sinks, all of them even if one fails; raise the first error."""
        errors = await self._close_all()
        if errors:
            raise errors[0]

    def emergency_flush(self) -> None:
        for sink in self._opened_sinks:
            try:
                sink.emergency_flush()
            except Exception as exc:  # the process is exiting: save what the others can
                log.error("emergency flush of %s failed: %s", type(sink).__name__, exc)
        self._refresh_stats()

    def status_lines(self) -> list[str]:
        """Live lines for the progress display: sinks with state worth watching (a
        database pool), and items dropped or failed in pipelines."""
        lines = [
            status() for sink in self._sinks if callable(status := getattr(sink, "status", None))
        ]
        dropped, failed = sum(self._dropped.values()), sum(self._failed.values())
        if dropped or failed:
            spent = sum(stage.seconds for stage in self._stages)
            lines.append(f"pipelines: dropped {dropped:,}  failed {failed:,}  time {spent:.1f}s")
        return lines

    def snapshot(self) -> dict[str, Any]:
        """The ``pipelines`` stats section: drops, failures, time spent."""
        return {
            "names": [stage.name for stage in self._stages],
            "dropped": sum(self._dropped.values()),
            "drop_reasons": dict(self._dropped.most_common()),
            "failed": sum(self._failed.values()),
            "failed_kinds": dict(self._failed.most_common()),
            "time_s": {stage.name: round(stage.seconds, 3) for stage in self._stages},
            "sinks_time_s": round(self._sink_seconds, 3),
        }

    # ---- internals -------------------------------------------------------------------
    async def _run_pipelines(self, items: list[Item]) -> list[Item]:
        spider = self._spider
        kept: list[Item] = []
        clock = time.perf_counter
        for item in items:
            current = item
            for stage in self._stages:
                started = clock()
                try:
                    result = stage.process(current, spider)
                    if inspect.isawaitable(result):
                        result = await result
                except DropItem as exc:
                    reason = str(exc) or "dropped"
                    self._count_drop(reason)
                    if self._on_dropped:
                        assert self._signals is not None
                        await self._signals.send(
                            item_dropped, item=current, spider=spider, reason=reason
                        )
                    current = None
                    break
                except Exception as exc:
                    where = f"pipeline {stage.name}"
                    kind = f"{stage.name}:{type(exc).__name__}"
                    self._failed[kind] += 1
                    self._errors.record(where, exc, key=f"pipeline {kind}")
                    current = None
                    break
                finally:
                    stage.seconds += clock() - started
                if result is not None:
                    current = result
            if current is not None:
                kept.append(current)
        return kept

    def _count_drop(self, reason: str) -> None:
        if reason not in self._dropped and len(self._dropped) >= _MAX_REASONS:
            reason = "other"
        self._dropped[reason] += 1

    def _refresh_stats(self) -> None:
        self._last_refresh = time.perf_counter()
        self._stats.extra["pipelines"] = self.snapshot()
        self._stats.extra["sinks"] = [sink.stats() for sink in self._sinks]

    async def _close_all(self) -> list[BaseException]:
        errors: list[BaseException] = []
        spider = self._spider
        for stage in self._stages:
            closer = getattr(stage.pipeline, "close", None)
            if not callable(closer):
                continue
            try:
                await _maybe_await(closer(spider))
            except Exception as exc:  # close the others anyway
                log.error("closing pipeline %s failed: %s", stage.name, exc)
                errors.append(exc)
        for sink in self._opened_sinks:
            try:
                await sink.close()
            except Exception as exc:  # close the others anyway; report the first
                log.error("closing %s failed: %s", type(sink).__name__, exc)
                errors.append(exc)
        self._refresh_stats()
        self._opened_sinks = []
        self._writers = []
        return errors


async def _maybe_await(value: Any) -> Any:
    if inspect.isawaitable(value):
        return await value
    return value
