"""The name a URL makes a client look up, and what needs no lookup (an IP address)."""

from __future__ import annotations

import ipaddress

from pooledcrawl.http.keys import slot_key

__all__ = ["is_literal", "lookup_target"]


def lookup_target(url: str) -> tuple[str, str, int]:
    """``(host key, name to look up, port)`` of an http(s) URL: the host key as
    ``host`` mode has it (``host[:port]``), the bare name, and the port connected to.
    String slicing, not ``urlsplit``: transports call it for every request."""
    key = slot_key(url)
    name, sep, port = key.rpartition(":")
    if sep and "]" not in port and port.isdigit():
        return key, name.strip("[]"), int(port)
    return key, key.strip("[]"), 443 if url.startswith("https:") else 80


def is_literal(name: str) -> bool:
    """An IP address written in the URL: nothing to look up."""
    if not (name[-1:].isdigit() or ":" in name):
        return False  # a name ends in a letter (a TLD); an IPv4 literal in a digit
    try:
        ipaddress.ip_address(name)
    except ValueError:
        return False
    return True
