"""What a transport saw of one fetch, for the pool and latency metrics."""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["Timing"]


@dataclass(slots=True)
class Timing:
    """Durations in seconds from the start of ``Transport.fetch``.

    A fetch is one or more HTTP exchanges (redirects), each on a connection
    that was either reused from the keep-alive pool or newly opened.
    """

    headers: float = 0.0
    """Until the final response's headers arrived."""
    body: float = 0.0
    """Until its whole body was read."""
    conn_wait: float = 0.0
    """Waiting for a pooled connection (or, over HTTP/2, a free stream); not connecting."""
    reused: int = 0
    """Exchanges sent over a connection kept alive from an earlier request."""
    opened: int = 0
    """Connections this fetch opened."""
    disconnects: int = 0
    """Kept-alive connections the server had closed, found when sending on them (the
    client resent on another connection by itself, so no error reached the engine)."""
