"""What a running crawl shows: a live table on a terminal, a log line otherwise.

On a terminal (stderr is a TTY) a rich ``Live`` display refreshes twice a
second: pages, items, pages/s, in flight, 429s, errors, and a row per busy
domain. Off a terminal (a log file, CI) the same numbers go out as one log line
every ``progress_interval`` seconds. :class:`ShowProgress` is the built-in extension
that runs it; disable it with ``extensions = {"ShowProgress": None}``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import sys
import time
from collections import deque
from collections.abc import Callable
from types import TracebackType
from typing import IO, TYPE_CHECKING, Any

if TYPE_CHECKING:
    from rich.console import RenderableType
    from rich.live import Live

__all__ = ["Progress", "ShowProgress"]

log = logging.getLogger("pooledcrawl.engine")

#: Seconds of history the pages/s figures are averaged over.
_RATE_WINDOW = 5.0
#: Busy domains shown in the live table; the rest are summed up in one line.
_MAX_ROWS = 12
#: Busy domains given a line of their own under the periodic log line.
_LOG_DOMAINS = 3


class Progress:
    """Call :meth:`tick` every :attr:`period` seconds while the crawl runs."""

    def __init__(
        self,
        engine: Any,
        *,
        live: bool | None = None,
        clock: Callable[[], float] = time.monotonic,
        stream: IO[str] | None = None,
    ) -> None:
        self._engine = engine
        self._clock = clock
        self._interval = engine.settings.progress_interval
        self._stream = stream if stream is not None else sys.stderr
        self._wants_live = _is_terminal(self._stream) if live is None else live
        #: how often the engine should call tick()
        self.period = 0.5 if self._wants_live else min(1.0, self._interval)
        now = clock()
        self._last_log = now
        self._last_log_pages = 0
        self._samples: deque[tuple[float, int]] = deque([(now, 0)])
        #: per domain: two checkpoints (time, pages), the older one 5 to 10 s old
        self._domain_ok: dict[str, tuple[float, int, float, int]] = {}
        self._live: Live | None = None
        self._adopted: list[tuple[logging.StreamHandler[Any], IO[str]]] = []

    # ---- lifecycle -----------------------------------------------------------------
    def __enter__(self) -> Progress:
        if self._wants_live:
            self._start_live()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        live, self._live = self._live, None
        if live is not None:
            try:
                live.update(self.render(self._clock()), refresh=True)
            finally:
                live.stop()
                for handler, stream in self._adopted:
                    handler.setStream(stream)
                self._adopted.clear()

    def _start_live(self) -> None:
        from rich.console import Console
        from rich.live import Live

        console = Console(file=self._stream, stderr=self._stream is sys.stderr)
        live = Live(
            self.render(self._clock()),
            console=console,
            auto_refresh=False,  # refreshed from tick(): no thread of its own
            redirect_stdout=False,  # items may be going to stdout (-o -)
            redirect_stderr=True,
            transient=False,
        )
        live.start()
        self._live = live
        # log records must go through the live display's proxy, or they tear it
        proxy = sys.stderr
        if proxy is not self._stream:
            for handler in logging.getLogger().handlers:
                if isinstance(handler, logging.StreamHandler) and handler.stream is self._stream:
                    handler.setStream(proxy)
                    self._adopted.append((handler, self._stream))

    # ---- ticking -------------------------------------------------------------------
    def tick(self, now: float | None = None) -> None:
        now = self._clock() if now is None else now
        engine = self._engine
        self._samples.append((now, engine.stats.pages))
        while len(self._samples) > 2 and now - self._samples[1][0] >= _RATE_WINDOW:
            self._samples.popleft()
        if self._live is not None:
            self._live.update(self.render(now), refresh=True)
        elif now - self._last_log >= self._interval:
            self._log_line(now)

    def pages_per_s(self) -> float:
        (t0, p0), (t1, p1) = self._samples[0], self._samples[-1]
        return (p1 - p0) / (t1 - t0) if t1 > t0 else 0.0

    def _log_line(self, now: float) -> None:
        engine, stats = self._engine, self._engine.stats
        rate = (stats.pages - self._last_log_pages) / max(now - self._last_log, 1e-9)
        self._last_log, self._last_log_pages = now, stats.pages
        log.info(
            "pages %d (%.0f/s)  items %d  in flight %d  pending %d  429s %d  errors %d",
            stats.pages,
            rate,
            stats.items,
            engine.dispatcher.inflight,
            len(engine.frontier) + engine.dispatcher.parked,
            stats.status_counts.get(429, 0),
            sum(stats.errors.values()),
        )
        for line in engine.items.status_lines():  # sinks with a pool, pipeline drops
            log.info("%s", line)
        self._log_domains()

    def _log_domains(self) -> None:
        """The busiest domains' controller state: concurrency, pace, 429s."""
        dispatcher = getattr(self._engine, "dispatcher", None)
        if dispatcher is None:
            return
        busy = [slot for slot in dispatcher.slots.values() if slot.inflight or slot.backlog]
        busy.sort(key=lambda slot: (-slot.inflight, -len(slot.backlog), slot.key))
        metrics = self._engine.metrics
        for slot in busy[:_LOG_DOMAINS]:
            domain = metrics.domains.get(slot.key)
            log.info(
                "  %s: concurrency %d (in flight %d)  pace %s  429s %d",
                slot.key,
                slot.policy.limit(),
                slot.inflight,
                _pace_text(slot.policy),
                domain.n429 if domain is not None else 0,
            )

    # ---- the live view -------------------------------------------------------------
    def render(self, now: float) -> RenderableType:
        from rich.console import Group
        from rich.table import Table
        from rich.text import Text

        engine, stats = self._engine, self._engine.stats
        dispatcher = getattr(engine, "dispatcher", None)
        inflight = dispatcher.inflight if dispatcher is not None else 0
        pending = len(engine.frontier) + (dispatcher.parked if dispatcher is not None else 0)
        errors = sum(stats.errors.values())
        n429 = stats.status_counts.get(429, 0)
        header = Text.assemble(
            ("pooledcrawl ", "bold"),
            f"{_clock_text(stats.elapsed)}  ",
            ("pages ", "dim"),
            (f"{stats.pages:,}", "bold green"),
            f" ({self.pages_per_s():,.0f}/s)  ",
            ("items ", "dim"),
            (f"{stats.items:,}", "bold"),
            ("  in flight ", "dim"),
            f"{inflight}",
            ("  pending ", "dim"),
            f"{pending:,}",
            ("  429s ", "dim"),
            (f"{n429:,}", "bold yellow" if n429 else ""),
            ("  errors ", "dim"),
            (f"{errors:,}", "bold red" if errors else ""),
        )
        table = Table(box=None, pad_edge=False, header_style="dim", expand=False)
        for name, justify in (
            ("domain", "left"),
            ("in flight", "right"),
            ("limit", "right"),
            ("pace", "right"),
            ("pages", "right"),
            ("pages/s", "right"),
            ("429s", "right"),
            ("p50 ms", "right"),
            ("pool wait", "right"),
        ):
            table.add_column(name, justify=justify)  # type: ignore[arg-type]
        rows, hidden = self._busy_domains(now)
        for row in rows:
            table.add_row(*row)
        parts: list[RenderableType] = [header, table]
        parts += [Text(line, style="dim") for line in engine.items.status_lines()]
        if hidden:
            parts.append(Text(f"... and {hidden} more busy domains", style="dim"))
        return Group(*parts)

    def _busy_domains(self, now: float) -> tuple[list[tuple[str, ...]], int]:
        dispatcher = getattr(self._engine, "dispatcher", None)
        if dispatcher is None:
            return [], 0
        metrics = self._engine.metrics
        busy = [slot for slot in dispatcher.slots.values() if slot.inflight or slot.backlog]
        busy.sort(key=lambda slot: (-slot.inflight, -len(slot.backlog), slot.key))
        rows: list[tuple[str, ...]] = []
        for slot in busy[:_MAX_ROWS]:
            domain = metrics.domains.get(slot.key)
            ok = domain.ok if domain is not None else 0
            n429 = domain.n429 if domain is not None else 0
            then, before, last, last_ok = self._domain_ok.get(slot.key, (now, ok, now, ok))
            rate = (ok - before) / (now - then) if now - then > 0 else 0.0
            if now - last >= _RATE_WINDOW:
                then, before, last, last_ok = last, last_ok, now, ok
            self._domain_ok[slot.key] = (then, before, last, last_ok)
            p50 = domain.body.quantile(0.5) * 1000 if domain is not None else 0.0
            wait = domain.pool_wait.mean * 1000 if domain is not None else 0.0
            rows.append(
                (
                    slot.key,
                    str(slot.inflight),
                    str(slot.policy.limit()),
                    _pace_text(slot.policy),
                    f"{ok:,}",
                    f"{rate:,.0f}",
                    f"{n429:,}",
                    f"{p50:,.0f}",
                    f"{wait:,.1f} ms",
                )
            )
        return rows, max(len(busy) - _MAX_ROWS, 0)


class ShowProgress:
    """The built-in extension showing :class:`Progress` from ``spider_opened`` until the
    crawl is over (a subscriber: the engine knows nothing of it)."""

    def __init__(self, crawler: Any) -> None:
        from pooledcrawl import signals

        self._crawler = crawler
        self._task: asyncio.Task[None] | None = None
        crawler.signals.connect(self._opened, signals.spider_opened)
        crawler.signals.connect(self._closed, signals.spider_closed)

    @classmethod
    def from_crawler(cls, crawler: Any) -> ShowProgress:
        return cls(crawler)

    def _opened(self, spider: Any) -> None:
        self._task = asyncio.get_running_loop().create_task(self._show())

    async def _show(self) -> None:
        crawler = self._crawler
        with Progress(crawler, clock=crawler.clock) as progress:
            while not await crawler.dispatcher.wait_closed(progress.period):
                progress.tick()

    async def _closed(self, spider: Any, reason: str) -> None:
        task, self._task = self._task, None
        if task is not None:
            task.cancel()  # the final view is drawn on the way out
            with contextlib.suppress(asyncio.CancelledError):
                await task


def _pace_text(policy: Any) -> str:
    """The adaptive controller's paced rate (through a job-wide wrapper too), or "-"."""
    rate = getattr(policy, "rate", None)
    if rate is None:
        rate = getattr(getattr(policy, "local", None), "rate", None)
    return f"{rate:,.0f}/s" if isinstance(rate, int | float) else "-"


def _is_terminal(stream: IO[str]) -> bool:
    try:
        return stream.isatty() and os.environ.get("TERM", "") != "dumb"
    except (AttributeError, ValueError):
        return False


def _clock_text(seconds: float) -> str:
    minutes, secs = divmod(int(seconds), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}" if hours else f"{minutes:02d}:{secs:02d}"
