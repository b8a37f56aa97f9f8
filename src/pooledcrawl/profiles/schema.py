"""What a profile file may contain, and which Settings key each entry sets.

A profile groups settings into sections (``[timeout] total = 30`` sets
``timeout_total``); ``[settings]`` takes any Settings key by its own name, a nested
one dotted (``"postgres.pool_size" = 4``), in its table (``[settings.postgres]``) or
by its old flat name (``pg_pool_size = 4``).
A few entries are not settings: ``description``, ``extends``, the ``[sizing]``
figures the connector limits are derived from, and the proxy list.
"""

from __future__ import annotations

import functools
import types
from typing import Any, Union, get_args, get_origin

from pooledcrawl.settings import Settings, aliases, field_type

__all__ = [
    "META_KEYS",
    "SECTIONS",
    "all_dotted_keys",
    "settings_type",
    "type_error",
]

#: section -> {key in the profile: Settings key}
SECTIONS: dict[str, dict[str, str]] = {
    "concurrency": {
        "global": "concurrency",
        "start": "domain_concurrency",
        "max": "domain_concurrency_max",
        "per_proxy": "proxy_concurrency",
        "autothrottle": "autothrottle",
    },
    "connector": {
        "limit": "connector_limit",
        "limit_per_host": "connector_limit_per_host",
        "keepalive_timeout": "keepalive_timeout",
        "ttl_dns_cache": "ttl_dns_cache",
    },
    "timeout": {
        "total": "timeout_total",
        "connect": "timeout_connect",
        "sock_connect": "timeout_sock_connect",
        "sock_read": "timeout_sock_read",
    },
    "retry": {
        "max_retries": "max_retries",
        "backoff_base": "retry_backoff_base",
        "backoff_cap": "retry_backoff_cap",
        "http_codes": "retry_http_codes",
        "retry_after_cap": "retry_after_cap",
    },
    "http": {
        "http2": "http2",
        "transport": "transport",
        "impersonate": "impersonate",
        "max_response_size": "max_response_size",
        "max_redirects": "max_redirects",
        "user_agent": "user_agent",
        "cookies": "cookies",
        "default_headers": "default_headers",
        "insecure": "insecure",
        "ca_bundle": "ca_bundle",
    },
    "proxy": {
        "ban_statuses": "ban_statuses",
        "backoff_base": "proxy_backoff_base",
        "backoff_cap": "proxy_backoff_cap",
        "down_timeout": "proxy_down_timeout",
        "ban_patterns": "ban_patterns",
        "ban_challenge_paths": "ban_challenge_paths",
        "ban_empty_body": "ban_empty_body",
        "max_block_retries": "max_block_retries",
    },
    "cost": {
        "price_per_gb": "price_per_gb",
        "price_per_request": "price_per_request",
    },
}

#: entries that are not settings: dotted key -> (type, meaning)
META_KEYS: dict[str, tuple[Any, str]] = {
    "description": (str, "one line shown by `profiles list`"),
    "extends": (str, "name of the profile this one starts from"),
    "sizing.latency_ms": (float, "typical p50 latency through this pool, in ms"),
    "sizing.target_rps": (float, "per-domain rate the connections are sized for"),
    "proxy.kind": (str, "rotating (one gateway, limits per target) or static (per IP)"),
    "proxy.url": (str, "one proxy URL"),
    "proxy.urls": (list[str], "several proxy URLs"),
    "proxy.file": (str, "a file with one proxy URL per line (relative to the profile)"),
    "proxy.username": (str, "credentials for URLs that carry none (use ${ENV_VAR})"),
    "proxy.password": (str, "credentials for URLs that carry none (use ${ENV_VAR})"),
    "session.template": (str, "where the session id goes: {username}-session-{session}"),
    "session.max_age": (float, "seconds one session (one exit IP) lives"),
    "session.max_uses": (int, "requests one session carries"),
    "session.pool_size": (int, "sessions alive at once (per domain with per_domain)"),
    "session.per_domain": (bool, "each domain gets its own sessions"),
}

#: keys whose values are secrets: never shown
CREDENTIAL_KEYS = frozenset({"proxy.username", "proxy.password"})
#: keys that list proxies: a child profile setting one of them replaces all of its parent's
PROXY_LIST_KEYS = ("url", "urls", "file")


def settings_type(key: str) -> Any:
    """The type of Settings key ``key`` (dotted, flat, or an old flat name)."""
    return field_type(key)


@functools.cache
def all_dotted_keys() -> tuple[str, ...]:
    keys = [f"{section}.{key}" for section, table in SECTIONS.items() for key in table]
    keys += list(META_KEYS)
    keys += [f"settings.{key}" for key in (*Settings.keys(), *aliases())]
    return tuple(keys)


def type_error(tp: Any, value: Any) -> str | None:
    """Why ``value`` (as parsed from TOML) is not of type ``tp``; None when it is."""
    origin = get_origin(tp)
    if origin in (Union, types.UnionType):
        args = [a for a in get_args(tp) if a is not type(None)]
        return type_error(args[0], value)
    if tp is bool:
        return None if isinstance(value, bool) else f"expected true or false, got {value!r}"
    if tp is int:
        ok = isinstance(value, int) and not isinstance(value, bool)
        return None if ok else f"expected an integer, got {value!r}"
    if tp is float:
        ok = isinstance(value, int | float) and not isinstance(value, bool)
        return None if ok else f"expected a number, got {value!r}"
    if tp is str:
        return None if isinstance(value, str) else f"expected a string, got {value!r}"
    if origin is list:
        if not isinstance(value, list):
            return f"expected a list, got {value!r}"
        (item_type,) = get_args(tp)
        for item in value:
            problem = type_error(item_type, item)
            if problem is not None:
                return f"in the list: {problem}"
        return None
    if origin is dict:
        if not isinstance(value, dict):
            return f"expected a table, got {value!r}"
        for item in value.values():
            if not isinstance(item, str):
                return f"expected string values in the table, got {item!r}"
        return None
    return f"unsupported type {tp!r}"  # pragma: no cover - a bug in the schema
