"""Pool and latency metrics: pure counters, histograms and timelines, fed by the engine.

Nothing here does I/O or reads a clock; the engine passes the times in.
"""

from pooledcrawl.metrics.domain import CrawlMetrics, DomainMetrics
from pooledcrawl.metrics.histogram import Histogram
from pooledcrawl.metrics.timeline import Timeline
from pooledcrawl.metrics.timing import Timing

__all__ = ["CrawlMetrics", "DomainMetrics", "Histogram", "Timeline", "Timing"]
