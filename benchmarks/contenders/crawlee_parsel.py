"""Contender (e): Crawlee for Python's ParselCrawler, with ``enqueue_links`` as its
docs show, at a fixed concurrency, on in-memory storage (its fastest), writing
JSON lines itself.

    python -m benchmarks.contenders.crawlee_parsel URL out.jsonl --concurrency 64
"""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path

import orjson
from crawlee import ConcurrencySettings
from crawlee.crawlers import ParselCrawler, ParselCrawlingContext
from crawlee.storage_clients import MemoryStorageClient

from benchmarks.contenders._common import main


async def crawl_async(start: str, concurrency: int) -> list[bytes]:
    crawler = ParselCrawler(
        concurrency_settings=ConcurrencySettings(
            min_concurrency=concurrency,
            desired_concurrency=concurrency,
            max_concurrency=concurrency,
        ),
        storage_client=MemoryStorageClient(),
        configure_logging=False,
    )
    lines: list[bytes] = []

    @crawler.router.default_handler
    async def handler(context: ParselCrawlingContext) -> None:
        selector = context.selector
        item = {
            "url": context.request.url,
            "name": selector.css("h1.name::text").get(),
            "price": selector.css("span.price::text").get(),
        }
        lines.append(orjson.dumps(item))
        await context.enqueue_links(selector="ul a")

    await crawler.run([start])
    return lines


def crawl(start: str, out: Path, concurrency: int) -> None:
    logging.basicConfig(level=logging.WARNING)
    lines = asyncio.run(crawl_async(start, concurrency))
    out.write_bytes(b"".join(line + b"\n" for line in lines))


if __name__ == "__main__":
    main(crawl, "Crawlee for Python (ParselCrawler)")
