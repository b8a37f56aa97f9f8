"""Choosing the transport, and the TLS options both transports share."""

from __future__ import annotations

import logging
import ssl

from pooledcrawl.errors import UsageError
from pooledcrawl.settings import Settings
from pooledcrawl.transport.base import Transport

__all__ = ["make_transport", "tls_verify"]

log = logging.getLogger("pooledcrawl.transport")


def tls_verify(settings: Settings) -> ssl.SSLContext | bool:
    """False with ``insecure``; otherwise a verifying context (``ca_bundle`` or the
    system store). A ``ca_bundle`` that cannot be loaded is a user error."""
    if settings.insecure:
        return False
    try:
        return ssl.create_default_context(cafile=settings.ca_bundle)
    except (OSError, ssl.SSLError) as exc:
        reason = getattr(exc, "strerror", None) or str(exc)
        path = settings.ca_bundle
        raise UsageError(f"setting ca_bundle: cannot load {path!r}: {reason}") from None


def make_transport(settings: Settings) -> Transport:
    """httpx with HTTP/2 when ``http2`` is on, else aiohttp (HTTP/1.1, the fastest)."""
    verify = tls_verify(settings)
    if settings.insecure:
        log.warning(
            "TLS certificate verification is OFF (--insecure / insecure = true): "
            "use it only for self-signed test targets"
        )
    if settings.http2:
        from pooledcrawl.transport.httpx import HttpxTransport

        return HttpxTransport(settings, verify=verify)
    from pooledcrawl.transport.aiohttp import AiohttpTransport

    return AiohttpTransport(settings)
