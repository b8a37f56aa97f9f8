"""Contender (a): a pooledcrawl spider using CSS selectors (parsel), as users write it.

python -m pooledcrawl crawl benchmarks/contenders/pc_css.py -a start=URL -O out.jsonl
"""

from collections.abc import AsyncIterator, Iterator
from typing import Any

from pooledcrawl import Request, Response, Spider


class CssBench(Spider):
    name = "bench_css"

    def __init__(self, start: str = "", **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.start_url = start

    async def start(self) -> AsyncIterator[Request]:
        # Deduplicated, unlike ``start_urls``, so page 0 is not fetched a second time
        # when a link leads back to it: every contender fetches each page once.
        yield Request(self.start_url)

    def parse(self, response: Response) -> Iterator[Any]:
        yield {
            "url": response.url,
            "name": response.css("h1.name::text").get(),
            "price": response.css("span.price::text").get(),
        }
        yield from response.follow_all(css="ul a")
