"""Crawl counters, and the stats JSON users read (its keys are a stable interface)."""

from __future__ import annotations

import logging
import time
from collections import Counter
from typing import Any

from pooledcrawl.metrics.summary import domain_table

__all__ = ["ErrorLog", "Stats"]

#: hosts with a line of their own in the summary (the stats file keeps the top N)
_MAX_HOST_LINES = 20


_MAX_BAD_URL_SAMPLES = 5


class Stats:
    """Counters the engine bumps on the hot path: plain attributes and Counters."""

    def __init__(self) -> None:
        self.started_at = time.monotonic()
        self.finished_at: float | None = None
        self.requests = 0
        self.pages = 0
        self.items = 0
        self.retries = 0
        self.failed = 0
        self.duplicates_filtered = 0
        #: links to schemes the crawler does not fetch (mailto:, tel:, javascript:...)
        self.links_skipped = 0
        self.max_inflight = 0
        self.status_counts: Counter[int] = Counter()
        self.errors: Counter[str] = Counter()
        self.http_versions: Counter[str] = Counter()
        self.finish_reason = ""
        #: per-slot state for stats (filled by the engine at the end)
        self.domains: dict[str, dict[str, Any]] = {}
        #: sections other components add (sinks, proxies...)
        self.extra: dict[str, Any] = {}

    @property
    def elapsed(self) -> float:
        end = self.finished_at if self.finished_at is not None else time.monotonic()
        return end - self.started_at

    def bad_url(self, url: str, why: str) -> None:
        """Count a URL a spider yielded that cannot be fetched; keep a few samples."""
        self.errors["InvalidURL"] += 1
        samples = self.extra.setdefault("invalid_url_samples", [])
        if len(samples) < _MAX_BAD_URL_SAMPLES:
            sample = url if len(url) <= 80 else url[:77] + "..."
            samples.append(f"{sample!r}: {why}")

    def to_dict(self) -> dict[str, Any]:
        elapsed = self.elapsed
        return {
            "elapsed_s": round(elapsed, 3),
            "finish_reason": self.finish_reason,
            "requests": self.requests,
            "pages": self.pages,
            "items": self.items,
            "pages_per_s": round(self.pages / elapsed, 1) if elapsed > 0 else 0.0,
            "status_counts": {str(k): v for k, v in sorted(self.status_counts.items())},
            "errors": dict(self.errors.most_common()),
            "retries": self.retries,
            "failed": self.failed,
            "duplicates_filtered": self.duplicates_filtered,
            "links_skipped": self.links_skipped,
            "max_inflight": self.max_inflight,
            "http_versions": dict(self.http_versions),
            "domains": self.domains,
            **self.extra,
        }

    def summary(self) -> str:
        """The human summary printed on stderr at the end."""
        d = self.to_dict()
        lines = [
            f"pooledcrawl: {d['finish_reason'] or 'finished'} after {d['elapsed_s']:.1f}s",
            f"  pages {d['pages']}  items {d['items']}  requests {d['requests']}  "
            f"pages/s {d['pages_per_s']}",
            f"  retries {d['retries']}  failed {d['failed']}  "
            f"duplicates filtered {d['duplicates_filtered']}  links skipped {d['links_skipped']}  "
            f"max in flight {d['max_inflight']}",
            "  status " + (" ".join(f"{k}:{v}" for k, v in d["status_counts"].items()) or "-"),
        ]
        if d["errors"]:
            lines.append("  errors " + " ".join(f"{k}:{v}" for k, v in d["errors"].items()))
        hosts = self.extra.get("hosts")
        if hosts and hosts.get("seen", 0) > 1:
            spread = hosts["pages_per_host"]
            lines.append(
                f"  hosts {hosts['seen']:,} (done {hosts['done']:,}, blocked {hosts['blocked']:,},"
                f" with errors {hosts['with_errors']:,}); pages per host p50 {spread['p50']}"
                f" p90 {spread['p90']} max {spread['max']}"
            )
        busiest = sorted(self.domains.items(), key=lambda kv: (-int(kv[1].get("pages", 0)), kv[0]))
        for host, info in sorted(busiest[:_MAX_HOST_LINES]):
            rate = info.get("rate")
            lines.append(
                f"  {host}: concurrency {info.get('concurrency')}"
                f" rate {'-' if rate is None else f'{rate:.1f}/s'}"
                f" 429s {info.get('status_counts', {}).get('429', 0)}"
            )
        lines += domain_table(self.domains)  # pool metrics, one row per domain
        return "\n".join(lines)


class ErrorLog:
    """Logs each kind of error once, with its traceback; later ones are only counted."""

    def __init__(self, logger: logging.Logger, errors: Counter[str]) -> None:
        self._logger = logger
        self._errors = errors
        self._seen: set[tuple[str, str]] = set()

    def record(self, where: str, exc: BaseException, *, key: str | None = None) -> None:
        key = key or type(exc).__name__
        self._errors[key] += 1
        if (where, key) not in self._seen:
            self._seen.add((where, key))
            self._logger.error(
                "%s: %s: %s (further errors of this kind are only counted)",
                where,
                type(exc).__name__,
                exc,
                exc_info=exc,
            )
