"""Connection metering for aiohttp: fills a :class:`~pooledcrawl.metrics.timing.Timing`.

aiohttp's ``TraceConfig`` would tell us the same, but it builds a parameters
object and awaits a signal for every step of every request, hooked or not: about
15% of the client's CPU on a fast crawl. A connector that times its own
``connect()`` sees everything the metrics need for the price of one extra frame.
"""

from __future__ import annotations

import contextvars
import functools
import time
import weakref
from typing import TYPE_CHECKING, Any

import aiohttp
from aiohttp_socks import ProxyConnector

from pooledcrawl.metrics.timing import Timing
from pooledcrawl.transport.handler import AcyclicResponseHandler
from pooledcrawl.transport.idle import IdleCap

if TYPE_CHECKING:
    from aiohttp.client_proto import ResponseHandler

__all__ = ["MeteredConnector", "MeteredSocksConnector", "end_metered_fetch", "metered_fetch"]

#: the fetch a ``connect()`` works for: set around each request, as the connector is
#: called from inside aiohttp's request machinery, where no argument of ours reaches
_CURRENT: contextvars.ContextVar[Timing | None] = contextvars.ContextVar(
    "pooledcrawl_timing", default=None
)


def metered_fetch(timing: Timing) -> contextvars.Token[Timing | None]:
    """Charge the connections made until ``_CURRENT.reset(token)`` to ``timing``."""
    return _CURRENT.set(timing)


def end_metered_fetch(token: contextvars.Token[Timing | None]) -> None:
    _CURRENT.reset(token)


class _ConnectMeter:
    """Mixin for an aiohttp connector: count reused and opened connections, and the
    time a reused one took to come free (the pool wait)."""

    _seen: weakref.WeakSet[ResponseHandler]

    async def connect(
        self,
        req: Any,
        traces: Any,
        timeout: Any,  # noqa: ASYNC109 (aiohttp's signature)
    ) -> aiohttp.connector.Connection:
        timing = _CURRENT.get()
        if timing is None:
            return await super().connect(req, traces, timeout)  # type: ignore[misc,no-any-return]
        started = time.perf_counter()
        connection: aiohttp.connector.Connection = await super().connect(  # type: ignore[misc]
            req, traces, timeout
        )
        protocol = connection.protocol
        if protocol is not None and protocol in self._seen:
            timing.reused += 1
            # handing out an idle connection is immediate: any time here was a queue
            timing.conn_wait += time.perf_counter() - started
        else:
            # a new connection: the time was spent connecting (after a queue, if the
            # pool was full: that part is not told apart, and counts as connecting)
            timing.opened += 1
            if protocol is not None:
                self._seen.add(protocol)
        return connection


class MeteredConnector(_ConnectMeter, IdleCap, aiohttp.TCPConnector):
    """A ``TCPConnector`` that fills the current fetch's Timing, with at most
    ``max_idle`` idle connections (see :class:`~pooledcrawl.transport.idle.IdleCap`)."""

    def __init__(self, *, max_idle: int = 1 << 30, **options: Any) -> None:
        super().__init__(**options)
        self._seen = weakref.WeakSet()
        self._cap_idle(max_idle)
        # each connection's protocol: aiohttp's, freed as soon as it closes
        self._factory = functools.partial(AcyclicResponseHandler, loop=self._loop)  # type: ignore[assignment]


class MeteredSocksConnector(_ConnectMeter, IdleCap, ProxyConnector):
    """aiohttp-socks' ``ProxyConnector`` that fills the current fetch's Timing, with at
    most ``max_idle`` idle connections."""

    def __init__(self, *, max_idle: int = 1 << 30, **options: Any) -> None:
        super().__init__(**options)
        self._seen = weakref.WeakSet()
        self._cap_idle(max_idle)
