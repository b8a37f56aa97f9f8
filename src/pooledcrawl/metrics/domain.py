"""Pool and latency metrics for one slot (domain), and for the whole crawl."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from pooledcrawl.metrics.histogram import Histogram
from pooledcrawl.metrics.hosts import HostBook
from pooledcrawl.metrics.timeline import Timeline
from pooledcrawl.metrics.timing import Timing

__all__ = ["CrawlMetrics", "DomainMetrics"]

# column positions in the timelines (kept in step with the names passed to Timeline)
_A_RESPONSES, _A_OK, _A_429, _A_INFLIGHT = range(4)
_ACTIVITY = ("responses", "ok", "n429", "inflight")

_T_RESPONSES, _T_PAGES, _T_3XX, _T_4XX, _T_429, _T_5XX, _T_ERRORS, _T_INFLIGHT, _T_ITEMS = range(9)
_TIMELINE = ("responses", "pages", "s3xx", "s4xx", "s429", "s5xx", "errors", "inflight", "items")


class DomainMetrics:
    """Everything measured about one slot's requests. Pure: times come from the caller.

    *Pool wait* is the time a request that was ready to go spent waiting: parked
    on its slot (the per-domain cap, or the pacing of the adaptive controller)
    plus waiting for a connection in the HTTP client's pool. Connecting is not
    waiting; it shows in the latency of the request that opened the connection.
    """

    __slots__ = (
        "activity",
        "body",
        "disconnects",
        "errors",
        "exchanges",
        "first",
        "headers",
        "last",
        "n403",
        "n429",
        "ok",
        "opened",
        "pool_wait",
        "responses",
        "reused",
    )

    def __init__(self, *, max_rows: int = 512) -> None:
        self.responses = 0
        self.ok = 0
        self.n429 = 0
        self.n403 = 0  # and 401: with 429s, what says a host blocks the crawl
        self.errors = 0
        self.disconnects = 0
        self.exchanges = 0
        self.reused = 0
        self.opened = 0
        self.headers = Histogram()
        self.body = Histogram()
        self.pool_wait = Histogram()
        self.first: float | None = None
        self.last = 0.0
        self.activity = Timeline(_ACTIVITY, peaks=("inflight",), max_rows=max_rows)

    def _span(self, t: float, latency: float) -> None:
        start = t - latency
        if self.first is None or start < self.first:
            self.first = start
        if t > self.last:
            self.last = t

    def on_response(
        self,
        t: float,
        status: int,
        slot_wait: float,
        latency: float,
        timing: Timing | None,
        inflight: int,
    ) -> None:
        """``t``: seconds since the crawl started; ``latency``: the whole fetch, as the
        engine saw it (used when the transport gave no ``timing``)."""
        self._span(t, latency)
        self.responses += 1
        activity = self.activity
        activity.add(t, _A_RESPONSES)
        activity.peak(t, _A_INFLIGHT, inflight)
        if 200 <= status < 300:
            self.ok += 1
            activity.add(t, _A_OK)
        elif status == 429:
            self.n429 += 1
            activity.add(t, _A_429)
        elif status == 403 or status == 401:
            self.n403 += 1
        if timing is None:
            self.headers.add(latency)
            self.body.add(latency)
            self.pool_wait.add(slot_wait)
            return
        self.headers.add(timing.headers)
        self.body.add(timing.body)
        self.pool_wait.add(slot_wait + timing.conn_wait)
        self._count(timing)

    def _count(self, timing: Timing) -> None:
        self.exchanges += timing.reused + timing.opened
        self.reused += timing.reused
        self.opened += timing.opened
        self.disconnects += timing.disconnects

    def on_error(
        self,
        t: float,
        slot_wait: float,
        latency: float,
        *,
        disconnect: bool,
        inflight: int,
        timing: Timing | None = None,
    ) -> None:
        self._span(t, latency)
        self.errors += 1
        if disconnect:
            self.disconnects += 1
        self.activity.peak(t, _A_INFLIGHT, inflight)
        self.pool_wait.add(slot_wait + (timing.conn_wait if timing is not None else 0.0))
        if timing is not None:
            self._count(timing)

    @property
    def reuse_ratio(self) -> float | None:
        """Exchanges on a kept-alive connection ÷ all exchanges; None if nothing was seen."""
        return self.reused / self.exchanges if self.exchanges else None

    @property
    def pages_per_s(self) -> float:
        """2xx responses per second over the time this domain was being fetched."""
        if self.first is None:
            return 0.0
        span = self.last - self.first
        return self.ok / span if span > 0 else 0.0

    def snapshot(self) -> dict[str, Any]:
        ratio = self.reuse_ratio
        return {
            "started_s": None if self.first is None else round(max(self.first, 0.0), 3),
            "pages": self.ok,
            "pages_per_s": round(self.pages_per_s, 1),
            "latency_headers_p50_ms": _ms(self.headers.quantile(0.5)),
            "latency_headers_p95_ms": _ms(self.headers.quantile(0.95)),
            "latency_body_p50_ms": _ms(self.body.quantile(0.5)),
            "latency_body_p95_ms": _ms(self.body.quantile(0.95)),
            "pool_wait_avg_ms": _ms(self.pool_wait.mean),
            "pool_wait_p95_ms": _ms(self.pool_wait.quantile(0.95)),
            "reuse_ratio": None if ratio is None else round(ratio, 3),
            "connections_opened": self.opened,
            "server_disconnects": self.disconnects,
            "transport_errors": self.errors,
            "activity": self.activity.to_dict(),
        }


class CrawlMetrics:
    """Per-domain :class:`DomainMetrics` plus a crawl-wide timeline.

    The engine calls ``on_response``/``on_error`` once per fetch with its own
    clock's ``now``; everything is stored relative to ``started``.
    """

    def __init__(self, started: float, *, max_rows: int = 512, top: int = 50) -> None:
        self.started = started
        self._max_rows = max_rows
        #: domains with a live slot; idle ones are folded into ``hosts`` (see retire)
        self.domains: dict[str, DomainMetrics] = {}
        self.hosts = HostBook(top)
        self.timeline = Timeline(
            _TIMELINE, peaks=("inflight", "items"), latency=True, max_rows=max_rows
        )

    def domain(self, key: str) -> DomainMetrics:
        metrics = self.domains.get(key)
        if metrics is None:
            metrics = self.domains[key] = DomainMetrics(max_rows=self._max_rows)
        return metrics

    def on_response(
        self,
        key: str,
        now: float,
        status: int,
        slot_wait: float,
        latency: float,
        timing: Timing | None,
        inflight: int,
        total_inflight: int,
    ) -> None:
        t = now - self.started
        self.domain(key).on_response(t, status, slot_wait, latency, timing, inflight)
        timeline = self.timeline
        timeline.add(t, _T_RESPONSES)
        timeline.peak(t, _T_INFLIGHT, total_inflight)
        timeline.latency(t, timing.body if timing is not None else latency)
        if 200 <= status < 300:
            timeline.add(t, _T_PAGES)
        elif status == 429:
            timeline.add(t, _T_429)
        elif status >= 500:
            timeline.add(t, _T_5XX)
        elif status >= 400:
            timeline.add(t, _T_4XX)
        elif status >= 300:
            timeline.add(t, _T_3XX)

    def on_error(
        self,
        key: str,
        now: float,
        slot_wait: float,
        latency: float,
        *,
        disconnect: bool,
        inflight: int,
        total_inflight: int,
        timing: Timing | None = None,
    ) -> None:
        t = now - self.started
        self.domain(key).on_error(
            t, slot_wait, latency, disconnect=disconnect, inflight=inflight, timing=timing
        )
        self.timeline.add(t, _T_ERRORS)
        self.timeline.peak(t, _T_INFLIGHT, total_inflight)

    def sample(self, now: float, items: int) -> None:
        """Periodic sample of crawl-wide counters (items stored so far, a running total)."""
        self.timeline.peak(now - self.started, _T_ITEMS, items)

    def retire(
        self,
        key: str,
        memo: tuple[float, ...] | None = None,
        controller: Callable[[], dict[str, Any]] | None = None,
    ) -> None:
        """Fold domain ``key`` into the aggregates and forget its live metrics.

        ``memo``: what its controller learned, handed back by ``hosts.learned(key)``
        if the domain comes back; ``controller()``: the controller's stats, asked for
        only if the domain makes a top-N list."""
        metrics = self.domains.pop(key, None)
        if metrics is None:
            metrics = DomainMetrics(max_rows=2)  # a slot that never got an answer

        def detail() -> dict[str, Any]:
            snapshot = controller() if controller is not None else {}
            snapshot.update(metrics.snapshot())
            return snapshot

        counts = (metrics.ok, metrics.responses, metrics.errors, metrics.n429, metrics.n403)
        self.hosts.fold(key, counts, memo, detail, metrics.body)

    def retire_all(self) -> None:
        """Fold every domain still live (at the end of the crawl)."""
        for key in list(self.domains):
            self.retire(key)

    def snapshot(self) -> dict[str, dict[str, Any]]:
        """Full detail of live domains (the engine folds them all at the end, after
        which ``hosts.top_domains()`` holds the top N)."""
        return {key: metrics.snapshot() for key, metrics in self.domains.items()}


def _ms(seconds: float) -> float:
    return round(seconds * 1000, 2)
