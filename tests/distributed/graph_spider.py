"""A spider over the tests' link-graph site (tests/sites.py); start with -a start=URL."""

import re

from pooledcrawl import Response, Spider

_LINK = re.compile(r'href="([^"]+)"')


class GraphSpider(Spider):
    name = "graph"

    def __init__(self, start: str = "", **kwargs: object) -> None:
        super().__init__(**kwargs)
        self.start_urls = [start]

    def parse(self, response: Response):
        yield {"url": response.url}
        for href in _LINK.findall(response.text):
            yield response.follow(href)
