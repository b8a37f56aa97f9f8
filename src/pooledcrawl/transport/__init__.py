"""Transports: HTTP/1.1 on aiohttp (default); HTTP/2 on httpx."""

from pooledcrawl.transport.base import Transport, TransportError

__all__ = ["Transport", "TransportError"]
