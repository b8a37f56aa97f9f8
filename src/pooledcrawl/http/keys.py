"""Keys that group requests: the slot (per-host share) a URL belongs to."""

from __future__ import annotations

__all__ = ["slot_key"]


def slot_key(url: str) -> str:
    """``host[:port]`` of an http(s) URL (URLs reaching here are already validated)."""
    start = url.find("//") + 2
    end = url.find("/", start)
    host = url[start:] if end == -1 else url[start:end]
    return host.rsplit("@", 1)[-1].lower()
