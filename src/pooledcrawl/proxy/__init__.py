"""Proxy endpoints, the proxy pool (choice and health) and credential masking."""

from pooledcrawl.proxy.endpoint import (
    Proxy,
    ProxyConfig,
    expand_env,
    parse_proxy_url,
    read_proxy_file,
)
from pooledcrawl.proxy.masking import SecretFilter, SecretMasker, masking_logs
from pooledcrawl.proxy.pool import PoolProxy, ProxyPool

__all__ = [
    "PoolProxy",
    "Proxy",
    "ProxyConfig",
    "ProxyPool",
    "SecretFilter",
    "SecretMasker",
    "expand_env",
    "masking_logs",
    "parse_proxy_url",
    "read_proxy_file",
]
