"""A spider of another name, to try joining a job that belongs to ``graph``."""

from pooledcrawl import Response, Spider


class OtherSpider(Spider):
    name = "other"

    def __init__(self, start: str = "", **kwargs: object) -> None:
        super().__init__(**kwargs)
        self.start_urls = [start]

    def parse(self, response: Response):
        yield {"url": response.url}
