"""Choosing the transport, and the TLS options both transports share."""

from __future__ import annotations

import logging
import ssl

from pooledcrawl.errors import UsageError
from pooledcrawl.settings import Settings
from pooledcrawl.transport.base import Transport

__all__ = ["curl_available", "make_transport", "resolve_transport", "tls_verify"]

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


def curl_available() -> bool:
    """Whether curl_cffi (the ``curl`` extra) is installed and loads."""
    try:
        import curl_cffi  # noqa: F401
    except ImportError:
        return False
    return True


def resolve_transport(settings: Settings) -> str:
    """The transport ``settings`` ask for: ``aiohttp``, ``httpx`` or ``curl``.

    ``auto`` picks aiohttp for HTTP/1.1 (the fastest there), and curl for HTTP/2 or a
    browser identity when it is installed: the throughput benchmark has it at about
    6x httpx's pages/s over HTTP/2, at a fifth of the CPU per page (the README's
    Performance section); httpx otherwise.
    Asking for curl without it installed is a user error.
    """
    wanted = settings.transport
    if wanted == "auto":
        if settings.impersonate:
            wanted = "curl"
        elif settings.http2:
            return "curl" if curl_available() else "httpx"
        else:
            return "aiohttp"
    if wanted == "curl" and not curl_available():
        why = f"impersonate = {settings.impersonate!r}" if settings.impersonate else "transport"
        raise UsageError(
            f"{why} needs the curl transport, which is not installed: "
            "pip install 'pooledcrawl[curl]'"
        )
    return wanted


def make_transport(settings: Settings) -> Transport:
    """The transport :func:`resolve_transport` names, configured from ``settings``."""
    kind = resolve_transport(settings)
    verify = tls_verify(settings)
    if settings.insecure:
        log.warning(
            "TLS certificate verification is OFF (--insecure / insecure = true): "
            "use it only for self-signed test targets"
        )
    if kind == "curl":
        from pooledcrawl.transport.curl import CurlTransport

        return CurlTransport(settings)
    if kind == "httpx":
        from pooledcrawl.transport.httpx import HttpxTransport

        return HttpxTransport(settings, verify=verify)
    from pooledcrawl.transport.aiohttp import AiohttpTransport

    return AiohttpTransport(settings)
