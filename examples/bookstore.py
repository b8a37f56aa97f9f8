"""Crawl a bookstore: follow every book page and every "next" page; yield title and price.

Run it against the bundled demo site with ``pooledcrawl demo``, or point it at
your own copy with ``-a start=http://host:port/``.
"""

from pooledcrawl import Response, Spider


class Bookstore(Spider):
    name = "bookstore"
    start_urls = ["http://127.0.0.1:8000/"]
    custom_settings = {"obey_robots": True}  # be a good citizen: read robots.txt first

    def __init__(self, start: str | None = None, **kwargs: object) -> None:
        super().__init__(**kwargs)
        if start:
            self.start_urls = [start]

    def parse(self, response: Response):
        for href in response.css("article h3 a::attr(href)").getall():
            yield response.follow(href, callback=self.parse_book)
        yield from response.follow_all(css="li.next a")
        yield from response.follow_all(css="ul.categories a")

    async def parse_book(self, response: Response):
        yield {
            "url": response.url,
            "title": response.css("h1::text").get(),
            "price": response.css(".price::text").get(),
        }
