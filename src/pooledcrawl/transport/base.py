"""The transport interface: one HTTP client library behind one small API."""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Protocol

from pooledcrawl.http.request import Request
from pooledcrawl.http.response import Response

if TYPE_CHECKING:
    from pooledcrawl.settings import Settings

__all__ = [
    "DNS_FAILED",
    "PROXY_AUTH_FAILED",
    "DefaultHeaders",
    "Transport",
    "TransportError",
    "dns_failure",
    "settings_headers",
    "too_many_redirects",
]

#: TransportError name when a proxy refuses our credentials (every transport)
PROXY_AUTH_FAILED = "ProxyAuthenticationRequired"
#: TransportError name when a host name does not resolve (every transport): the name
#: aiohttp's own exception for it has
DNS_FAILED = "ClientConnectorDNSError"


class TransportError(Exception):
    """A fetch that produced no usable response.

    ``name`` is what stats count it as (the underlying exception's class name,
    or a reason such as ``ResponseTooLarge``); ``retryable`` says whether trying
    again could help; ``proxy_fault`` blames the proxy rather than the target.
    """

    def __init__(
        self,
        name: str,
        message: str,
        *,
        retryable: bool,
        proxy_fault: bool = False,
        stale_connection: bool = False,
    ) -> None:
        super().__init__(message)
        self.name = name
        self.retryable = retryable
        self.proxy_fault = proxy_fault
        self.stale_connection = stale_connection

    def __str__(self) -> str:
        return f"{self.name}: {self.args[0]}"


def dns_failure(host: str, port: int, reason: str) -> TransportError:
    """A host name that did not resolve (or is cached as failed): retryable, as a
    lookup may succeed later; the resolver has counted it."""
    return TransportError(
        DNS_FAILED, f"Cannot connect to host {host}:{port} [{reason}]", retryable=True
    )


def too_many_redirects(visited: list[str]) -> TransportError:
    """The error for a chain of redirects (``visited``, the first URL included) that
    was cut off: a loop if a URL came twice, else too long."""
    if len(set(visited)) < len(visited):
        return TransportError(
            "RedirectLoop", f"redirect loop through {len(set(visited))} URLs", retryable=False
        )
    return TransportError(
        "TooManyRedirects", f"more than {len(visited) - 1} redirects", retryable=False
    )


class Transport(Protocol):
    """Fetches requests over long-lived sessions: one per proxy, never one per request."""

    async def fetch(self, request: Request, proxy: str | None = None) -> Response:
        """The final response after redirects; raises :class:`TransportError`."""
        ...

    async def close(self) -> None: ...


class DefaultHeaders(Protocol):
    """A transport whose sessions send default headers (every built-in one). The
    engine sets them once, before the first fetch, to what the middlewares'
    ``process_default_headers`` hooks made (the UserAgent and DefaultHeaders
    middlewares): defaults cost nothing per request, and a request's own headers
    win. A transport nobody calls this on sends :func:`settings_headers`."""

    def use_default_headers(self, headers: Mapping[str, str]) -> None: ...


def settings_headers(settings: Settings) -> dict[str, str]:
    """The defaults the settings ask for: ``user_agent`` and ``default_headers``."""
    return {"User-Agent": settings.user_agent, **settings.default_headers}
