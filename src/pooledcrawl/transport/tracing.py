"""aiohttp client tracing that fills a :class:`~pooledcrawl.metrics.timing.Timing`.

Pass the fetch's ``Timing`` as ``trace_request_ctx``; the hooks add up the
time spent queued for a connection, and count connections reused and opened.
"""

from __future__ import annotations

import time
from types import SimpleNamespace
from typing import Any

import aiohttp

from pooledcrawl.metrics.timing import Timing

__all__ = ["aiohttp_trace_config"]


def aiohttp_trace_config() -> aiohttp.TraceConfig:
    """A fresh TraceConfig (one per session; its hooks keep no state of their own)."""
    config = aiohttp.TraceConfig()
    config.on_connection_queued_start.append(_queued_start)
    config.on_connection_queued_end.append(_queued_end)
    config.on_connection_create_end.append(_created)
    config.on_connection_reuseconn.append(_reused)
    return config


def _timing(ctx: SimpleNamespace) -> Timing | None:
    timing = ctx.trace_request_ctx
    return timing if isinstance(timing, Timing) else None


async def _queued_start(session: aiohttp.ClientSession, ctx: SimpleNamespace, _: Any) -> None:
    ctx.queued_at = time.perf_counter()


async def _queued_end(session: aiohttp.ClientSession, ctx: SimpleNamespace, _: Any) -> None:
    timing = _timing(ctx)
    queued_at = getattr(ctx, "queued_at", None)
    if timing is not None and queued_at is not None:
        timing.conn_wait += time.perf_counter() - queued_at


async def _created(session: aiohttp.ClientSession, ctx: SimpleNamespace, _: Any) -> None:
    timing = _timing(ctx)
    if timing is not None:
        timing.opened += 1


async def _reused(session: aiohttp.ClientSession, ctx: SimpleNamespace, _: Any) -> None:
    timing = _timing(ctx)
    if timing is not None:
        timing.reused += 1
