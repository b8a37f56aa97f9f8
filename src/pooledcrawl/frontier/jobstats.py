"""The stats a job directory carries across runs: what adds up, and how it is added."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from pooledcrawl.stats import Stats

__all__ = ["restore_stats", "stats_counters"]

#: Stats keys that are maxima: a resumed run keeps the larger.
_MAXIMA = frozenset({"request_depth_max"})
#: Stats keys that describe one run rather than count work; never carried over.
_NOT_COUNTERS = frozenset(
    {"jobdir", "sinks", "pipelines", "invalid_url_samples", "domains", "timeline"}
)

_SCALARS = (
    "requests",
    "pages",
    "items",
    "retries",
    "failed",
    "duplicates_filtered",
    "links_skipped",
)


def stats_counters(stats: Stats) -> dict[str, Any]:
    """The counters of ``stats`` that add up across runs of a job."""
    keep: dict[str, Any] = {key: getattr(stats, key) for key in _SCALARS}
    keep["max_inflight"] = stats.max_inflight
    keep["status_counts"] = stats.status_counts
    keep["errors"] = stats.errors
    keep["http_versions"] = stats.http_versions
    for key, value in stats.extra.items():
        if key not in _NOT_COUNTERS and _is_counter(value):
            keep[key] = value
    return keep


def restore_stats(stats: Stats, saved: dict[str, Any]) -> None:
    """Add the counters of earlier runs (from :func:`stats_counters`) into ``stats``."""
    for key in _SCALARS:
        setattr(stats, key, getattr(stats, key) + int(saved.get(key, 0)))
    stats.max_inflight = max(stats.max_inflight, int(saved.get("max_inflight", 0)))
    for status, count in saved.get("status_counts", {}).items():
        stats.status_counts[int(status)] += count
    for key, named in (("errors", stats.errors), ("http_versions", stats.http_versions)):
        for name, count in saved.get(key, {}).items():
            named[name] += count
    known = {*_SCALARS, "max_inflight", "status_counts", "errors", "http_versions"}
    for key, value in saved.items():
        if key in _MAXIMA:
            stats.extra[key] = max(stats.extra.get(key, 0), value)
        elif key not in known and key not in _NOT_COUNTERS:
            stats.extra[key] = _add(stats.extra.get(key), value)


def _is_counter(value: Any) -> bool:
    if isinstance(value, bool):
        return False
    if isinstance(value, int):
        return True
    return isinstance(value, dict) and all(
        isinstance(v, int) and not isinstance(v, bool) for v in value.values()
    )


def _add(current: Any, saved: Any) -> Any:
    if current is None:
        return saved
    if isinstance(current, int) and isinstance(saved, int):
        return current + saved
    if isinstance(current, dict) and isinstance(saved, dict):
        merged = dict(current)
        for key, value in saved.items():
            merged[key] = merged.get(key, 0) + value
        return merged
    return current
