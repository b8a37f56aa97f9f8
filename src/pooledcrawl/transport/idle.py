"""A cap on the kept-alive connections an aiohttp connector holds idle.

aiohttp's ``limit`` counts connections in use, not idle ones: each host keeps its
kept-alive connections until ``keepalive_timeout`` (checked once per timeout, so up
to twice as long). A broad crawl finishes dozens of hosts a second, each leaving a
few connections behind, so thousands of idle sockets pile up (each several KB of
client memory, a file descriptor and a slot on the server), nearly all to hosts it
is done with. Past the cap the least recently released idle connection is closed:
a host being crawled reuses its connections within milliseconds and keeps them,
and the ones that go are those of hosts that went quiet.
"""

from __future__ import annotations

from collections import OrderedDict
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from aiohttp.client_proto import ResponseHandler
    from aiohttp.client_reqrep import ConnectionKey

__all__ = ["IdleCap"]


class IdleCap:
    """Mixin for an aiohttp ``TCPConnector``: at most ``max_idle`` idle connections.

    It keeps its own record of the idle connections in the order they were
    released (O(1) per release and reuse); aiohttp's pool stays the one that hands
    them out. Built on the connector's internals (``_release``, ``_conns``), which
    the transport tests check, so an aiohttp that changes them fails there."""

    _conns: Any
    _closed: bool
    _cleanup_closed_disabled: bool
    _cleanup_closed_transports: list[Any]

    def _cap_idle(self, max_idle: int) -> None:
        self._max_idle = max(max_idle, 0)
        #: idle connection -> its pool key, least recently released first; an entry
        #: whose connection aiohttp closed or handed out meanwhile is stale (dropped
        #: when met)
        self._idle: OrderedDict[ResponseHandler, ConnectionKey] = OrderedDict()

    @property
    def idle_connections(self) -> int:
        """Kept-alive connections in the pool now (what the cap bounds)."""
        return sum(len(conns) for conns in self._conns.values())

    async def connect(self, req: Any, traces: Any, timeout: Any) -> Any:  # noqa: ASYNC109
        connection = await super().connect(req, traces, timeout)  # type: ignore[misc]
        protocol = connection.protocol
        if protocol is not None and self._idle:
            self._idle.pop(protocol, None)  # in use again
        return connection

    def _release(
        self, key: ConnectionKey, protocol: ResponseHandler, *, should_close: bool = False
    ) -> None:
        super()._release(key, protocol, should_close=should_close)  # type: ignore[misc]
        conns = self._conns.get(key)
        if self._closed or not conns or conns[-1][0] is not protocol:
            return  # closed, not pooled
        idle = self._idle
        idle[protocol] = key
        while len(idle) > self._max_idle:
            self._close_idle(*idle.popitem(last=False))

    def _close_idle(self, protocol: ResponseHandler, key: ConnectionKey) -> None:
        conns = self._conns.get(key)
        if not conns:
            return  # stale: reused or already closed
        for index, (pooled, _) in enumerate(conns):
            if pooled is protocol:
                del conns[index]
                break
        else:
            return
        if not conns:
            del self._conns[key]
        transport = protocol.transport
        protocol.close()
        if key.is_ssl and not self._cleanup_closed_disabled:
            self._cleanup_closed_transports.append(transport)

    def _cleanup(self) -> None:
        super()._cleanup()  # type: ignore[misc]
        # aiohttp closed the connections idle past keepalive_timeout: forget them
        idle = self._idle
        for protocol in [p for p in idle if not p.is_connected()]:
            del idle[protocol]
