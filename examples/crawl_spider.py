"""A CrawlSpider: rules say which links to follow and which pages to parse.

Try it against the test suite's documentation site::

    python tests/spiders/toolkit_sites.py crawl       # prints http://127.0.0.1:PORT
    pooledcrawl crawl examples/crawl_spider.py -a base=http://127.0.0.1:PORT -o docs.jsonl
"""

from urllib.parse import urlsplit

from pooledcrawl import CrawlSpider, LinkExtractor, Response, Rule


class DocsSpider(CrawlSpider):
    name = "docs"
    base = "http://127.0.0.1:8000"

    rules = (
        # the manual, but not its printable copies: parse each chapter, follow its links
        Rule(
            LinkExtractor(allow=r"/docs/", deny=r"/docs/print/"), callback="parse_doc", follow=True
        ),
        # blog posts: parse them, don't follow their links (a rule with a callback
        # follows only if asked to)
        Rule(LinkExtractor(allow=r"/blog/\d+\.html$"), callback="parse_post"),
    )

    def __init__(self, **kwargs: object) -> None:
        super().__init__(**kwargs)
        self.start_urls = [self.base.rstrip("/") + "/"]
        self.allowed_domains = [urlsplit(self.base).hostname or ""]

    def parse_start_url(self, response: Response):
        yield {"kind": "home", "url": response.url}

    def parse_doc(self, response: Response):
        yield {"kind": "doc", "url": response.url, "title": response.css("title::text").get()}

    def parse_post(self, response: Response):
        yield {
            "kind": "post",
            "url": response.url,
            "title": response.css("h1::text").get(),
            "link_text": response.meta["link_text"],
        }
