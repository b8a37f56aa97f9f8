"""Scrapy with AutoThrottle against a rate-limited target, recording every response.

    python -m benchmarks._throttle_scrapy URL events.json --duration 30 --concurrency 64

AutoThrottle as its docs set it up (``AUTOTHROTTLE_ENABLED``, target concurrency
64, the other AutoThrottle settings at their defaults), 64 requests per domain,
breadth-first. Every downloaded response, 429s included (the retry middleware
hides those from ``response_received``), is written to ``events.json`` as
``[seconds since the first request, status]``, with the requests given up on.
"""

from __future__ import annotations

import argparse
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import orjson
import scrapy
from scrapy import signals
from scrapy.crawler import CrawlerProcess


class ThrottleBench(scrapy.Spider):
    name = "throttle_bench"

    def __init__(self, start: str, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.start_url = start
        self.t0: float | None = None
        self.events: list[tuple[float, int]] = []

    @classmethod
    def from_crawler(cls, crawler: Any, *args: Any, **kwargs: Any) -> ThrottleBench:
        spider = super().from_crawler(crawler, *args, **kwargs)
        crawler.signals.connect(spider._sent, signal=signals.request_reached_downloader)
        crawler.signals.connect(spider._downloaded, signal=signals.response_downloaded)
        return spider

    def _sent(self, request: Any, spider: Any) -> None:
        if self.t0 is None:
            self.t0 = time.monotonic()

    def _downloaded(self, response: Any, request: Any, spider: Any) -> None:
        self.events.append((time.monotonic(), response.status))

    async def start(self) -> AsyncIterator[Any]:
        yield scrapy.Request(self.start_url)

    def parse(self, response: Any) -> Iterator[Any]:
        yield {
            "url": response.url,
            "name": response.css("h1.name::text").get(),
            "price": response.css("span.price::text").get(),
        }
        yield from response.follow_all(css="ul a")


def run(start: str, events_path: Path, duration: float, concurrency: int, out: Path) -> None:
    process = CrawlerProcess(
        settings={
            "CONCURRENT_REQUESTS": concurrency,
            "CONCURRENT_REQUESTS_PER_DOMAIN": concurrency,
            "AUTOTHROTTLE_ENABLED": True,
            "AUTOTHROTTLE_TARGET_CONCURRENCY": float(concurrency),
            "CLOSESPIDER_TIMEOUT": duration,
            "DEPTH_PRIORITY": 1,
            "SCHEDULER_DISK_QUEUE": "scrapy.squeues.PickleFifoDiskQueue",
            "SCHEDULER_MEMORY_QUEUE": "scrapy.squeues.FifoMemoryQueue",
            "ROBOTSTXT_OBEY": False,
            "TELNETCONSOLE_ENABLED": False,
            "LOG_LEVEL": "WARNING",
            "FEEDS": {str(out): {"format": "jsonlines", "overwrite": True}},
        }
    )
    crawler = process.create_crawler(ThrottleBench)
    process.crawl(crawler, start=start)
    process.start()
    spider = crawler.spider
    assert isinstance(spider, ThrottleBench)
    t0 = spider.t0 or 0.0
    result = {
        "events": [[round(t - t0, 4), status] for t, status in spider.events],
        "lost": crawler.stats.get_value("retry/max_reached", 0),
        "scrapy": scrapy.__version__,
    }
    events_path.write_bytes(orjson.dumps(result))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("start")
    parser.add_argument("events", type=Path)
    parser.add_argument("--duration", type=float, default=30.0)
    parser.add_argument("--concurrency", type=int, default=64)
    parser.add_argument("--out", type=Path, default=Path("/dev/null"))
    args = parser.parse_args()
    run(args.start, args.events, args.duration, args.concurrency, args.out)


if __name__ == "__main__":
    main()
