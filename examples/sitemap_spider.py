"""A SitemapSpider: start from robots.txt, follow its sitemap index (gzipped
children included), and send each listed URL to the callback its rule names.

Try it against the test suite's sitemap site::

    python tests/spiders/toolkit_sites.py sitemap     # prints http://127.0.0.1:PORT
    pooledcrawl crawl examples/sitemap_spider.py -a base=http://127.0.0.1:PORT -o pages.jsonl

``-a sitemap_modified_since=2026-01-01`` keeps only entries modified since then.
"""

from pooledcrawl import Response, SitemapSpider


class ShopSitemap(SitemapSpider):
    name = "shop-sitemap"
    base = "http://127.0.0.1:8000"
    sitemap_rules = [
        (r"/product/", "parse_product"),
        (r"/blog/", "parse_post"),
        (r"", "parse"),  # everything else
    ]

    def __init__(self, **kwargs: object) -> None:
        super().__init__(**kwargs)
        # robots.txt: its Sitemap: lines are followed
        self.sitemap_urls = [self.base.rstrip("/") + "/robots.txt"]

    def parse_product(self, response: Response):
        yield {"kind": "product", "url": response.url}

    def parse_post(self, response: Response):
        yield {"kind": "post", "url": response.url}

    def parse(self, response: Response):
        yield {"kind": "other", "url": response.url}
