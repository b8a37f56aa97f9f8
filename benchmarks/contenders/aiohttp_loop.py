"""Contender (c): the floor. A minimal hand-written aiohttp crawler: N workers on a
FIFO queue (breadth-first), a set of URLs for dedup, regular expressions to extract.

    python -m benchmarks.contenders.aiohttp_loop URL out.jsonl --concurrency 64
"""

from __future__ import annotations

import asyncio
import re
from pathlib import Path
from urllib.parse import urljoin

import aiohttp
import orjson

from benchmarks.contenders._common import main

NAME = re.compile(r'<h1 class="name">([^<]*)</h1>')
PRICE = re.compile(r'<span class="price">([^<]*)</span>')
LINK = re.compile(r'<a href="([^"]+)"')


async def crawl_async(start: str, concurrency: int) -> list[bytes]:
    queue: asyncio.Queue[str] = asyncio.Queue()
    seen = {start}
    queue.put_nowait(start)
    lines: list[bytes] = []
    connector = aiohttp.TCPConnector(limit=concurrency)
    async with aiohttp.ClientSession(connector=connector) as session:

        async def worker() -> None:
            while True:
                url = await queue.get()
                try:
                    async with session.get(url) as resp:
                        body = await resp.read()
                    text = body.decode("utf-8", "replace")
                    name, price = NAME.search(text), PRICE.search(text)
                    item = {
                        "url": url,
                        "name": name and name.group(1),
                        "price": price and price.group(1),
                    }
                    lines.append(orjson.dumps(item))
                    for href in LINK.findall(text):
                        link = urljoin(url, href)
                        if link not in seen:
                            seen.add(link)
                            queue.put_nowait(link)
                except Exception as exc:  # a benchmark crawler: report and go on
                    print(f"{url}: {exc!r}")
                finally:
                    queue.task_done()

        workers = [asyncio.create_task(worker()) for _ in range(concurrency)]
        await queue.join()
        for task in workers:
            task.cancel()
        await asyncio.gather(*workers, return_exceptions=True)
    return lines


def crawl(start: str, out: Path, concurrency: int) -> None:
    lines = asyncio.run(crawl_async(start, concurrency))
    out.write_bytes(b"".join(line + b"\n" for line in lines))


if __name__ == "__main__":
    main(crawl, "hand-written aiohttp crawler (the floor)")
