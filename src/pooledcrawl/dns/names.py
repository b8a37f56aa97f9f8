"""What needs no lookup: an IP address written where a host name could be."""

from __future__ import annotations

import ipaddress

__all__ = ["is_literal"]


def is_literal(name: str) -> bool:
    """An IP address written in the URL: nothing to look up."""
    if not (name[-1:].isdigit() or ":" in name):
        return False  # a name ends in a letter (a TLD); an IPv4 literal in a digit
    try:
        ipaddress.ip_address(name)
    except ValueError:
        return False
    return True
