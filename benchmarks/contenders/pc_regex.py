"""Contender (b): a pooledcrawl spider extracting with regular expressions, so what
remains is the framework's own cost per page (compare with the aiohttp loop, (c)).

    python -m pooledcrawl crawl benchmarks/contenders/pc_regex.py -a start=URL -O out.jsonl
"""

import re
from collections.abc import AsyncIterator, Iterator
from typing import Any

from pooledcrawl import Request, Response, Spider

NAME = re.compile(r'<h1 class="name">([^<]*)</h1>')
PRICE = re.compile(r'<span class="price">([^<]*)</span>')
LINK = re.compile(r'<a href="([^"]+)"')


class RegexBench(Spider):
    name = "bench_regex"

    def __init__(self, start: str = "", **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.start_url = start

    async def start(self) -> AsyncIterator[Request]:
        # Deduplicated, unlike ``start_urls``, so page 0 is not fetched a second time
        # when a link leads back to it: every contender fetches each page once.
        yield Request(self.start_url)

    def parse(self, response: Response) -> Iterator[Any]:
        text = response.text
        name, price = NAME.search(text), PRICE.search(text)
        yield {
            "url": response.url,
            "name": name and name.group(1),
            "price": price and price.group(1),
        }
        yield from response.follow_all(LINK.findall(text))
