"""Name resolution for crawls of many hosts: c-ares when installed, cached by TTL."""

from pooledcrawl.dns.resolver import CachingResolver, DnsCache

__all__ = ["CachingResolver", "DnsCache"]
