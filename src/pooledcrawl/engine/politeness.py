"""Which requests share one politeness limit (one slot): the slot key of a URL.

``host`` keys by ``host[:port]``; ``domain`` by the registered domain, so the hosts
of one site share one limit. Kept apart from the dispatcher because it is chosen once
per crawl (``politeness_key``) and needs the Public Suffix List, not the dispatcher's
queues.
"""

from __future__ import annotations

import functools
import ipaddress
from collections.abc import Callable
from typing import Any

from pooledcrawl.errors import UsageError
from pooledcrawl.http.keys import slot_key

__all__ = ["POLITENESS_KEYS", "key_function", "registered_domain"]

#: what requests share one slot (one politeness limit): see :func:`key_function`
POLITENESS_KEYS = ("host", "domain")


def registered_domain(host: str, extract: Callable[[str], Any]) -> str:
    """eTLD+1 of ``host`` (``a.b.example.co.uk`` -> ``example.co.uk``) by the Public
    Suffix List; an IP address stays itself; a name under a suffix the list does
    not know (``a.example.test``) keeps its last two labels."""
    name = host.strip("[]")
    try:
        ipaddress.ip_address(name)
        return name
    except ValueError:
        pass
    found: str = extract(name).top_domain_under_public_suffix
    if found:
        return found
    labels = name.rstrip(".").split(".")
    return ".".join(labels[-2:])


def key_function(mode: str, cache_size: int = 65_536) -> Callable[[str], str]:
    """URL -> slot key. ``host``: ``host[:port]``; ``domain``: the registered domain
    (``[:port]`` kept), so ``a.example.com`` and ``b.example.com`` share one limit.

    The Public Suffix List comes from ``tldextract``'s bundled snapshot: nothing is
    downloaded at run time."""
    if mode == "host":
        return slot_key
    if mode != "domain":
        raise ValueError(f"politeness key {mode!r}: choose from {', '.join(POLITENESS_KEYS)}")
    try:
        import tldextract
    except ImportError:
        raise UsageError(
            "politeness_key=domain needs tldextract: pip install 'pooledcrawl[broad]'"
        ) from None

    extract = tldextract.TLDExtract(suffix_list_urls=(), cache_dir=None)

    @functools.lru_cache(maxsize=cache_size)
    def of_host(host: str) -> str:
        name, sep, port = host.rpartition(":")
        if not sep or "]" in port:  # no port (or the colon was inside an IPv6 literal)
            return registered_domain(host, extract)
        return f"{registered_domain(name, extract)}:{port}"

    def key(url: str) -> str:
        return of_host(slot_key(url))

    return key
