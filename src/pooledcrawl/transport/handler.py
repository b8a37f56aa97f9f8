"""aiohttp's protocol for one connection, minus a reference cycle left when it closes.

On Python 3.11 asyncio's socket transport keeps a bound method of itself
(``_read_ready_cb``) after the connection is lost, so every closed connection stays
alive as a cycle (transport, socket, method, dicts) until a full garbage collection.
A crawl that opens a few connections per host makes thousands of them: full
collections come often, and each one walks every object the process holds. Breaking
the cycle when the connection is lost lets reference counting free it at once.
"""

from __future__ import annotations

from typing import Any

from aiohttp.client_proto import ResponseHandler

__all__ = ["AcyclicResponseHandler"]


def _lost() -> None:
    """What a closed transport would call on a read event (it gets none: the reader
    is removed when it closes)."""
    return None


class AcyclicResponseHandler(ResponseHandler):
    #: the transport until the connection is lost (``self.transport`` is dropped
    #: earlier when aiohttp closes the connection itself)
    _own_transport: Any = None

    def connection_made(self, transport: Any) -> None:
        self._own_transport = transport
        super().connection_made(transport)

    def connection_lost(self, exc: BaseException | None) -> None:
        transport, self._own_transport = self._own_transport, None
        super().connection_lost(exc)
        if getattr(transport, "_read_ready_cb", None) is not None:
            transport._read_ready_cb = _lost
