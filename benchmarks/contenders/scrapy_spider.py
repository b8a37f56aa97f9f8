"""Contender (d): Scrapy, with ``response.css`` and ``follow_all`` as its docs show,
breadth-first (``DEPTH_PRIORITY = 1`` and FIFO queues, as its FAQ says).

    python -m benchmarks.contenders.scrapy_spider URL out.jsonl --concurrency 64
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import scrapy
from scrapy.crawler import CrawlerProcess

from benchmarks.contenders._common import main


class BenchSpider(scrapy.Spider):
    name = "bench"

    def __init__(self, start: str, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.start_url = start

    async def start(self) -> AsyncIterator[Any]:
        # Deduplicated, unlike ``start_urls``: every contender fetches each page once.
        yield scrapy.Request(self.start_url)

    def parse(self, response: Any) -> Iterator[Any]:
        yield {
            "url": response.url,
            "name": response.css("h1.name::text").get(),
            "price": response.css("span.price::text").get(),
        }
        yield from response.follow_all(css="ul a")


def crawl(start: str, out: Path, concurrency: int) -> None:
    process = CrawlerProcess(
        settings={
            "CONCURRENT_REQUESTS": concurrency,
            "CONCURRENT_REQUESTS_PER_DOMAIN": concurrency,
            "DOWNLOAD_DELAY": 0,
            "AUTOTHROTTLE_ENABLED": False,
            "DEPTH_PRIORITY": 1,
            "SCHEDULER_DISK_QUEUE": "scrapy.squeues.PickleFifoDiskQueue",
            "SCHEDULER_MEMORY_QUEUE": "scrapy.squeues.FifoMemoryQueue",
            "ROBOTSTXT_OBEY": False,
            "TELNETCONSOLE_ENABLED": False,
            "LOG_LEVEL": "WARNING",
            "FEEDS": {str(out): {"format": "jsonlines", "overwrite": True}},
        }
    )
    process.crawl(BenchSpider, start=start)
    process.start()


if __name__ == "__main__":
    main(crawl, "Scrapy")
