"""The kill-and-resume spider: one item per page of the link graph; counts pages in
``self.state`` so the test can check that spider state survives a kill."""

import re

from pooledcrawl import Request, Response, Spider

_LINK = re.compile(r'href="([^"]+)"')


class ResumeSpider(Spider):
    name = "resume"

    def __init__(self, start: str = "", **kwargs: object) -> None:
        super().__init__(**kwargs)
        self.start_urls = [start]

    def parse(self, response: Response):
        self.state["parsed"] = self.state.get("parsed", 0) + 1
        yield {"url": response.url}
        for href in _LINK.findall(response.text):
            yield response.follow(href, callback=self.parse)


class OtherSpider(ResumeSpider):
    name = "other"


class LambdaSpider(ResumeSpider):
    name = "lambda"

    def parse(self, response: Response):
        yield Request(response.urljoin("/p/1.html"), callback=lambda r: None)
