"""libcurl's errors as the names the aiohttp transport uses for the same failures, and
proxy credentials kept out of their messages."""

from __future__ import annotations

import logging
from typing import Final
from urllib.parse import urlsplit

from curl_cffi import Curl, CurlError, CurlInfo

from pooledcrawl.transport.base import DNS_FAILED, PROXY_AUTH_FAILED, TransportError
from pooledcrawl.transport.capped import too_large
from pooledcrawl.transport.curl_http import info

__all__ = ["classify", "scrub"]

log = logging.getLogger("pooledcrawl.transport")

#: libcurl's CURLproxycode values (curl.h): SOCKS replies that blame the target, not the proxy
_PX_TARGET_SIDE: Final = frozenset({19, 21, 22, 24})  # refused, host/net unreachable, TTL
_PX_AUTH: Final = frozenset({12, 14, 28, 33})  # no auth method, auth recv/send, user rejected


def scrub(message: str, proxy: str | None) -> str:
    """No proxy credentials in a message, whatever libcurl put in it."""
    if proxy is None:
        return message
    parts = urlsplit(proxy)
    for secret in (parts.password, parts.username, proxy):
        if secret and len(secret) >= 3:
            message = message.replace(secret, "***")
    return message


def _message(exc: CurlError) -> str:
    text = str(exc).split(". See https://curl.se/", 1)[0]
    return text.removeprefix("Failed to perform, ")


def classify(curl: Curl, exc: CurlError, proxy: str | None, cap: int) -> TransportError:
    """Map libcurl's error codes onto the names the aiohttp transport uses for the same
    failure, retryable or final, the target's fault or the proxy's."""
    code = int(exc.code)
    message = scrub(_message(exc), proxy)
    via_proxy = proxy is not None
    if code == 28:
        return TransportError("TimeoutError", message, retryable=True)
    if code == 63:  # CURLE_FILESIZE_EXCEEDED: MAXFILESIZE, announced or (decoded) so far
        length = info(curl, CurlInfo.CONTENT_LENGTH_DOWNLOAD_T)
        return too_large(cap, length if length > cap else None)
    if code == 3:
        return TransportError("InvalidURL", message, retryable=False)
    if via_proxy:
        connect_code = info(curl, CurlInfo.HTTP_CONNECTCODE)
        if connect_code in (401, 407):
            # 407 is the standard answer; tinyproxy, for one, answers a CONNECT with
            # wrong credentials 401: either way the proxy refused them
            return TransportError(
                PROXY_AUTH_FAILED,
                f"the proxy answered {connect_code} to CONNECT",
                retryable=True,
                proxy_fault=True,
            )
        if connect_code >= 300:
            # 502/504 on CONNECT: the proxy is fine, the target is not reachable through it
            return TransportError(
                "ClientHttpProxyError",
                f"the proxy answered {connect_code} to CONNECT",
                retryable=True,
                proxy_fault=connect_code not in (502, 504),
            )
        if code == 97:  # CURLE_PROXY: a SOCKS (or HTTPS proxy) handshake failed
            px = info(curl, CurlInfo.PROXY_ERROR)
            if px in _PX_AUTH:
                return TransportError(PROXY_AUTH_FAILED, message, retryable=True, proxy_fault=True)
            return TransportError(
                "ProxyError", message, retryable=True, proxy_fault=px not in _PX_TARGET_SIDE
            )
        if code in (5, 7):  # could not resolve or reach the proxy
            return TransportError("ProxyConnectionError", message, retryable=True, proxy_fault=True)
    if code == 60:
        return TransportError("SSLCertVerificationError", message, retryable=False)
    if code in (35, 53, 54, 58, 59, 64, 66, 77, 80, 82, 83, 90, 91, 98):
        return TransportError("ClientSSLError", message, retryable=False)
    if code == 6:  # libcurl's own lookup (direct requests are pinned to the crawl's)
        return TransportError(DNS_FAILED, message, retryable=True)
    if code == 7:
        return TransportError("ClientConnectorError", message, retryable=True)
    if code == 18:
        return TransportError(
            "ClientPayloadError",
            f"Response payload is not completed: body shorter than its Content-Length ({message})",
            retryable=True,
        )
    if code in (8, 1):  # a status line or header block libcurl could not parse
        return TransportError("BadHttpMessage", message, retryable=True)
    if code == 52:
        return TransportError("ServerDisconnectedError", message, retryable=True)
    if code in (16, 92):
        return TransportError("ServerDisconnectedError", message, retryable=True)
    if code == 61:
        return TransportError("ClientPayloadError", message, retryable=True)
    if code in (55, 56):
        return TransportError("ClientOSError", message, retryable=True)
    log.debug("unexpected transport error", exc_info=exc)
    return TransportError(f"CurlError{code}", message, retryable=False)
