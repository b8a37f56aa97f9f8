"""Real documentation sites, as Debian ships them: a full crawl finds exactly the
HTML pages ``wget -r`` finds on the same server from the same start URL, and no
page that has links yields an empty link list.

The pages come from Debian packages (see ``docsites.GENERATORS``; ``.ci/run``
installs them); nobody here wrote them. Which pages each client fetched is read
from nginx's access log, so both are judged by the same, third-party, record.
"""

from __future__ import annotations

import asyncio
import re
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from docsites import GENERATORS, DocServer, Generator, doc_server, require

from pooledcrawl import Engine, Request, Response, Settings, Spider
from pooledcrawl.http.response import document_type

# an <a ...> tag with an href attribute, in the raw bytes: independent of the parser
_ANCHOR_WITH_HREF = re.compile(rb"<a\s[^>]*\bhref\s*=\s*[\"']?[^\s\"'>#]", re.I)
# what holds no elements in a browser: comments, and the text of raw-text elements
# (HTML Standard; <noframes> is one in a frameset page, where javadoc puts its
# "Non-frame version" link)
_NO_ELEMENTS = re.compile(
    rb"<!--.*?-->|<(script|style|noframes|textarea|xmp)[\s>].*?</\1\s*>", re.I | re.S
)
_REFRESH_URL = re.compile(r"url\s*=\s*['\"]?([^'\"]+)", re.I)


@pytest.fixture(scope="module")
def server() -> Iterator[DocServer]:
    with doc_server() as running:
        yield running


class DocSpider(Spider):
    """Follows what ``wget -r`` follows to reach pages: ``<a>``, ``<area>`` and
    ``<link>`` hrefs, frames, iframes and ``<meta http-equiv=refresh>``."""

    name = "docs"
    allowed_domains = ["127.0.0.1"]

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.pages: dict[str, int] = {}
        self.without_links: list[str] = []

    def parse(self, response: Response) -> Iterator[Request]:
        if document_type(response.headers.get("Content-Type", "")) != "html":
            return
        anchors = response.css("a::attr(href)").getall()
        self.pages[response.url] = len(anchors)
        if not anchors and _ANCHOR_WITH_HREF.search(_NO_ELEMENTS.sub(b"", response.body)):
            self.without_links.append(response.url)
        hrefs = [
            *anchors,
            *response.css("area::attr(href), link::attr(href)").getall(),
            *response.css("frame::attr(src), iframe::attr(src)").getall(),
        ]
        for refresh in response.xpath(
            "//meta[translate(@http-equiv, 'REFSH', 'refsh')='refresh']/@content"
        ).getall():
            match = _REFRESH_URL.search(refresh)
            if match:
                hrefs.append(match.group(1))
        for href in hrefs:
            url = response.urljoin(href)
            if url.startswith(("http://", "https://")):
                yield Request(url, self.parse)


async def pooledcrawl_pages(server: DocServer, generator: Generator) -> DocSpider:
    spider = DocSpider(start_urls=[server.url(generator)])
    settings = Settings(
        concurrency=8,
        autothrottle=False,
        user_agent=f"corpus-pooledcrawl-{generator.name}",
    )
    async with asyncio.timeout(240):
        await Engine(spider, settings).run()
    return spider


def wget_pages(server: DocServer, generator: Generator, tmp_path: Path) -> None:
    # -e robots=off: wget would also obey <meta name=robots content=nofollow>,
    # which is a politeness rule, not link finding
    subprocess.run(
        [
            *("wget", "-r", "-l", "inf", "-e", "robots=off", "-q", "-P", str(tmp_path)),
            f"--user-agent=corpus-wget-{generator.name}",
            server.url(generator),
        ],
        timeout=240,
        check=False,  # wget exits 8 when any link was a 404, as real sites have
    )


@pytest.mark.parametrize("generator", GENERATORS, ids=[g.name for g in GENERATORS])
async def test_crawl_finds_the_pages_wget_finds(
    server: DocServer, generator: Generator, tmp_path: Path
) -> None:
    require(f"{generator.package} ({generator.root})", generator.root.is_dir())
    require("wget", shutil.which("wget") is not None)
    wget_pages(server, generator, tmp_path)
    expected = server.html_pages(f"corpus-wget-{generator.name}")
    spider = await pooledcrawl_pages(server, generator)
    found = server.html_pages(f"corpus-pooledcrawl-{generator.name}")
    print(f"{generator.name} ({generator.package}): wget {len(expected)}, pooledcrawl {len(found)}")
    assert len(expected) > 3, f"wget found {len(expected)} pages: is the site served?"
    assert sorted(found - expected) == [] and sorted(expected - found) == []
    # every HTML page fetched reached the spider as HTML
    assert len(spider.pages) == len(found)
    assert spider.without_links == []
