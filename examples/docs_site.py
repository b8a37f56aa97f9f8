"""Crawl a whole documentation site and list its pages: what `wget -r` reaches.

Debian's documentation packages are real sites to try it on. DocBook's XHTML
pages start with an XML declaration and are served as text/html: they are
parsed as HTML because the Content-Type says so.

    sudo apt-get install --no-install-recommends debian-faq
    python3 -m http.server -b 127.0.0.1 -d /usr/share/doc/debian/FAQ 8000 &
    pooledcrawl crawl examples/docs_site.py -a start=http://127.0.0.1:8000/index.en.html \
        -O pages.jsonl
"""

from collections.abc import Iterator
from typing import Any
from urllib.parse import urlsplit

from pooledcrawl import Response, Spider


class DocsSite(Spider):
    name = "docs_site"
    start_urls = ["http://127.0.0.1:8000/"]

    def __init__(self, start: str | None = None, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        if start:
            self.start_urls = [start]
        # stay on the site the crawl starts on
        self.allowed_domains = [urlsplit(self.start_urls[0]).hostname or ""]

    def parse(self, response: Response) -> Iterator[Any]:
        if not response.headers.get("Content-Type", "").startswith(
            ("text/html", "application/xhtml")
        ):
            return  # an image or a stylesheet a <link> pointed to
        links = response.css("a::attr(href), area::attr(href), frame::attr(src), iframe::attr(src)")
        yield {
            "url": response.url,
            "title": response.css("title::text").get(default="").strip(),
            "links": len(links),
        }
        # <base href> is honoured; mailto: and javascript: links are left out
        for href in links.getall():
            url = response.urljoin(href)
            if url.startswith(("http://", "https://")):
                yield response.follow(url)
