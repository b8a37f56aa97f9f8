"""Running one crawl in this process: settings layers, sinks, signals, stats file.

The CLI commands (``crawl``, ``demo``, ``worker``) build a :class:`CrawlJob` and call
:func:`run_job`; scripts call :func:`run` or :func:`run_async`. Nothing here parses
command lines.
"""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import sys
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson

from pooledcrawl.components import load_object
from pooledcrawl.engine import eventloop
from pooledcrawl.engine.engine import Engine
from pooledcrawl.engine.tiering import TierSpec
from pooledcrawl.errors import UsageError
from pooledcrawl.items.base import Sink
from pooledcrawl.items.outputs import sink_for
from pooledcrawl.proxy.endpoint import ProxyConfig
from pooledcrawl.proxy.masking import masking_logs
from pooledcrawl.settings import Settings
from pooledcrawl.spider import Spider
from pooledcrawl.stats import Stats

__all__ = ["CrawlJob", "build_settings", "open_sink", "run", "run_async", "run_job"]

log = logging.getLogger("pooledcrawl")

EXIT_SIGNAL = {signal.SIGINT: 130, signal.SIGTERM: 143}
#: every proxy was down for ``proxy_down_timeout``: stopped early, queued work kept
EXIT_PROXIES_DOWN = 3


@dataclass
class CrawlJob:
    spider_cls: type[Spider]
    spider_args: dict[str, str] = field(default_factory=dict)
    settings: Settings = field(default_factory=Settings)
    outputs: list[tuple[str, bool]] = field(default_factory=list)
    """(target, overwrite) pairs: ``-o`` appends, ``-O`` overwrites."""
    stats_path: str | None = None
    engine_setup: Callable[[Spider], dict[str, Any]] | None = None
    """Given the spider, extra keyword arguments for :class:`Engine` (a frontier, ...)."""
    jobdir: str | None = None
    """``--jobdir``: a crash-safe SQLite frontier there; re-running resumes the job."""
    fresh: bool = False
    """``--fresh``: start the job in ``jobdir`` over."""
    proxies: ProxyConfig | None = None
    """The proxies (profile, ``--proxy`` or ``--proxy-file``); None connects directly."""
    tiers: list[TierSpec] = field(default_factory=list)
    """``--profile a,b,c``: the tiers, cheapest first (the first is ``settings`` and
    ``proxies``); one entry names the single profile (for the cost stats)."""

    @property
    def secrets(self) -> tuple[str, ...]:
        configs = [self.proxies, *(t.proxies for t in self.tiers)]
        return tuple(s for c in configs if c is not None for s in c.secrets)


def build_settings(
    spider_cls: type[Spider],
    cli_settings: Mapping[str, Any],
    profile_settings: Mapping[str, Any] | None = None,
) -> Settings:
    """defaults < profile < spider ``custom_settings`` < command line."""
    return Settings.layered(
        ("profile", profile_settings or {}),
        (f"{spider_cls.__name__}.custom_settings", spider_cls.custom_settings),
        ("command line", cli_settings),
    )


def open_sink(target: str, overwrite: bool, settings: Settings | None = None) -> Sink:
    """The sink for one ``-o``/``-O`` target: a scheme registered in ``sink_schemes``,
    else a built-in chosen by scheme or extension."""
    settings = settings or Settings()
    scheme, sep, _ = target.partition("://")
    custom = settings.sink_schemes.get(scheme.lower()) if sep else None
    if custom is None:
        return sink_for(target, overwrite, settings)
    cls = load_object(custom, f"sink for {scheme}://") if isinstance(custom, str) else custom
    try:
        factory = getattr(cls, "from_target", None)
        if callable(factory):
            return factory(target, overwrite, settings)  # type: ignore[no-any-return]
        return cls(target, overwrite=overwrite)  # type: ignore[no-any-return]
    except UsageError:
        raise
    except Exception as exc:
        raise UsageError(f"output {scheme}://: {type(exc).__name__}: {exc}") from None


def run(
    spider_cls: type[Spider],
    *,
    settings: Mapping[str, Any] | None = None,
    profile: str | None = None,
    output: str | Sequence[str] | None = None,
    overwrite: bool = False,
    spider_args: Mapping[str, Any] | None = None,
) -> Stats:
    """Run ``spider_cls`` to its end from a script and return its stats.

    ``settings`` is the top layer (over defaults < ``profile`` < the spider's
    ``custom_settings``), as ``-s`` is on the command line; ``profile`` names a profile,
    as ``--profile`` does (its proxies come with it); ``output`` is one or more targets as for
    ``-o`` (appended to; ``overwrite=True`` acts as ``-O``). Inside a running event
    loop, use :func:`run_async`.
    """
    return eventloop.run(
        run_async(
            spider_cls,
            settings=settings,
            profile=profile,
            output=output,
            overwrite=overwrite,
            spider_args=spider_args,
        )
    )


async def run_async(
    spider_cls: type[Spider],
    *,
    settings: Mapping[str, Any] | None = None,
    profile: str | None = None,
    output: str | Sequence[str] | None = None,
    overwrite: bool = False,
    spider_args: Mapping[str, Any] | None = None,
) -> Stats:
    """:func:`run`, awaited in the caller's event loop (no signal handlers installed:
    the application owns them; cancel the task to stop)."""
    if not (isinstance(spider_cls, type) and issubclass(spider_cls, Spider)):
        raise UsageError(f"run() needs a Spider subclass, got {spider_cls!r}")
    profile_settings, proxies = None, None
    name = profile or spider_cls.profile
    if name:
        from pooledcrawl.profiles.loader import load_profile

        loaded = load_profile(name)
        profile_settings, proxies = loaded.settings, loaded.proxy
    targets = [output] if isinstance(output, str) else list(output or ())
    job = CrawlJob(
        spider_cls=spider_cls,
        spider_args=dict(spider_args or {}),
        settings=build_settings(spider_cls, settings or {}, profile_settings),
        outputs=[(target, overwrite) for target in targets],
        proxies=proxies,
    )
    engine = build_engine(job)
    with masking_logs(job.secrets):
        await engine.run()
    return engine.stats


def build_engine(job: CrawlJob) -> Engine:
    """The spider, its sinks and frontier, and the engine wiring them."""
    spider = job.spider_cls(**job.spider_args)
    outputs, frontier = job.outputs, None
    if job.jobdir is not None:
        from pooledcrawl.frontier.sqlite import open_jobdir

        frontier, outputs = open_jobdir(job.jobdir, spider, job.settings, outputs, fresh=job.fresh)
    sinks = [open_sink(target, overwrite, job.settings) for target, overwrite in outputs]
    options = job.engine_setup(spider) if job.engine_setup is not None else {}
    if frontier is not None:
        options["frontier"] = frontier
    if job.proxies is not None:
        options["proxies"] = job.proxies
    if job.tiers:
        options["tiers"] = job.tiers
    # a --jobdir frontier binds itself to the engine (ext.Bound): sinks, stats
    return Engine(spider, job.settings, sinks=sinks, **options)


def run_job(
    job: CrawlJob, *, on_engine: Callable[[Engine], None] | None = None
) -> tuple[Stats, int]:
    """Run the crawl to its end; returns the stats and the process exit code."""
    engine = build_engine(job)
    if on_engine is not None:
        on_engine(engine)
    # proxy credentials never reach a log line, whatever library writes it
    with masking_logs(job.secrets):
        try:
            exit_code = eventloop.run(_run_with_signals(engine, job))
        except UsageError:
            raise  # one line, exit 2: the CLI says it
        except Exception:
            # logged here, inside the masking: a traceback may hold a proxy URL
            log.exception("internal error")
            exit_code = 1
    return engine.stats, exit_code


async def _run_with_signals(engine: Engine, job: CrawlJob) -> int:
    loop = asyncio.get_running_loop()
    received: list[signal.Signals] = []

    def on_signal(sig: signal.Signals) -> None:
        received.append(sig)
        if len(received) == 1:
            log.warning(
                "%s: finishing in-flight requests; press Ctrl-C again to quit now", sig.name
            )
            engine.request_stop(f"shutdown ({sig.name})")
        else:
            engine.emergency_flush()
            write_stats(engine.stats, job.stats_path)
            os._exit(EXIT_SIGNAL[sig])

    for sig in EXIT_SIGNAL:
        loop.add_signal_handler(sig, on_signal, sig)
    try:
        await engine.run()
    finally:
        for sig in EXIT_SIGNAL:
            loop.remove_signal_handler(sig)
        write_stats(engine.stats, job.stats_path)
    if received:
        return EXIT_SIGNAL[received[0]]
    return EXIT_PROXIES_DOWN if engine.fatal else 0


def write_stats(stats: Stats, path: str | None) -> None:
    write_stats_dict(stats.to_dict(), path)


def write_stats_dict(stats: dict[str, Any], path: str | None) -> None:
    if path is None:
        return
    data = orjson.dumps(stats, option=orjson.OPT_INDENT_2 | orjson.OPT_NON_STR_KEYS)
    tmp = Path(path).with_name(Path(path).name + ".tmp")
    tmp.write_bytes(data)
    tmp.replace(path)  # never leave a half-written stats file


def print_summary(stats: Stats) -> None:
    print(stats.summary(), file=sys.stderr)
