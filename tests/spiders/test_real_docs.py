"""A CrawlSpider on real third-party HTML: documentation sites Debian ships (Sphinx,
DocBook, asciidoc XHTML), served locally, with a Rule restricted to part of the site.
``wget -r`` on the same server, limited by the same regex and tags, says which pages
that must reach."""

from __future__ import annotations

import asyncio
import os
import re
import shutil
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from lxml import html as lxml_html
from sites import serve
from spider_helpers import read_items
from toolkit_sites import AccessLog, logged_app

from pooledcrawl import CrawlSpider, Engine, LinkExtractor, Response, Rule, Settings
from pooledcrawl.items.jsonl import JsonLinesSink

pytestmark = pytest.mark.timeout(180)

#: generator -> (Debian package, its site's folder, the start page, the regex the
#: rule allows, on the path; written so POSIX ERE (wget) and Python read it alike)
SITES = {
    "sphinx": ("python-requests-doc", "html", "index.html", r"/user/[^?#]*\.html$"),
    "docbook-html-latin1": (
        "docbook-xsl-doc-html",
        "doc",
        "manpages/index.html",
        r"/manpages/[^?#]*\.html$",
    ),
    # XHTML with an XML declaration, served as text/html (asciidoc)
    "asciidoc-xhtml": ("git-doc", "", "git.html", r"/git-[a-z0-9-]+\.html$"),
}


def _site_or_skip(package: str, folder: str) -> Path:
    root = Path("/usr/share/doc") / package / folder
    if root.is_dir() and shutil.which("wget"):
        return root
    message = f"{package} (or wget) is not installed"
    if os.environ.get("PCRAWL_REQUIRE_SERVICES"):
        pytest.fail(message + " and PCRAWL_REQUIRE_SERVICES is set")
    pytest.skip(message)


def static_app(root: Path, log: AccessLog) -> web.Application:
    app = logged_app(log)
    app.router.add_static("/", root, follow_symlinks=True)
    return app


async def wget_pages(base: str, start: str, allow: str, into: Path) -> set[str]:
    """The .html paths ``wget -r`` fetches from ``start`` following <a>/<area> to
    URLs that ``allow`` matches (the start page itself included)."""
    proc = await asyncio.create_subprocess_exec(
        *("wget", "-r", "-l", "inf", "-nv", "-nH", "--no-config", "-e", "robots=off"),
        *("--follow-tags=a,area", f"--accept-regex=^{re.escape(base)}{allow}"),
        *("-P", str(into), f"{base}/{start}"),
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.DEVNULL,
    )
    async with asyncio.timeout(120):
        await proc.wait()
    return _html_under(into)


def _html_under(folder: Path) -> set[str]:
    return {"/" + str(p.relative_to(folder)) for p in folder.rglob("*.html")}


class SubtreeSpider(CrawlSpider):
    allow = ""
    base = ""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        pattern = f"^{re.escape(self.base)}{self.allow}"
        self.rules = (Rule(LinkExtractor(allow=pattern), callback="parse_page", follow=True),)
        self._compile_rules()

    def parse_page(self, response: Response) -> Iterator[dict[str, Any]]:
        # local-name(): XHTML may be parsed as XML, its elements in a namespace
        title = response.xpath("//*[local-name()='title']/text()").get()
        yield {"url": response.url, "title": title}


@pytest.mark.parametrize("name", sorted(SITES))
async def test_crawl_spider_reaches_what_wget_reaches_in_a_subtree(
    name: str, tmp_path: Path
) -> None:
    package, folder, start, allow = SITES[name]
    root = _site_or_skip(package, folder)
    log = AccessLog()
    async with serve(static_app(root, log)) as base:
        expected = await wget_pages(base, start, allow, tmp_path / "wget")
        log.entries.clear()
        out = tmp_path / "items.jsonl"
        spider = SubtreeSpider(base=base, allow=allow, start_urls=[f"{base}/{start}"])
        engine = Engine(
            spider, Settings(concurrency=8), sinks=[JsonLinesSink(str(out), overwrite=True)]
        )
        await engine.run()
    in_subtree = {p for p in expected if re.search(allow, p)}
    assert len(in_subtree) >= 4, "wget found too little to compare with"
    # the start page, then each page of the subtree once, and nothing else; links
    # to pages the package lacks (git-doc links to git-p4.html) are 404s for both
    assert Counter(log.paths(status=200)) == Counter({f"/{start}", *in_subtree})
    assert max(Counter(log.paths()).values()) == 1
    assert all(re.search(allow, p) for p in log.paths(status=404))
    items = read_items(out)
    # the start page goes to parse_start_url, every other page to the rule's callback
    assert {i["url"] for i in items} == {base + p for p in in_subtree - {f"/{start}"}}
    # the title each item has is the page's own (lxml on the file, independently)
    for item in items:
        path = root / item["url"][len(base) + 1 :]
        title = lxml_html.fromstring(path.read_bytes()).findtext(".//title")
        assert item["title"] == title


@pytest.mark.parametrize("name", sorted(SITES))
def test_link_extractor_matches_scrapy_on_every_page(name: str) -> None:
    """Every HTML page of the package: the same links, in the same order, as Scrapy's
    LinkExtractor (whose URLs keep the fragment; ours moves it to Link.fragment, so
    "page#a" and "page#b" are one link here)."""
    from multidict import CIMultiDict
    from scrapy.http import HtmlResponse
    from scrapy.linkextractors import LinkExtractor as ScrapyLinkExtractor
    from w3lib.url import safe_url_string

    from pooledcrawl import Request

    package, folder, _, _ = SITES[name]
    root = _site_or_skip(package, folder)
    ours, theirs = LinkExtractor(), ScrapyLinkExtractor()
    pages = sorted(root.rglob("*.html"))
    assert len(pages) >= 20
    total = 0
    for path in pages:
        url = f"http://docs.test/{path.relative_to(root)}"
        body = path.read_bytes()
        response = Response(
            url, 200, CIMultiDict({"Content-Type": "text/html"}), body, Request(url)
        )
        # Scrapy percent-encodes what a URL may not hold; that is the resolver's
        # business (response.urljoin, shared with follow), not the extractor's
        found = [safe_url_string(link.url) for link in ours.extract_links(response)]
        expected: list[str] = []
        for link in theirs.extract_links(HtmlResponse(url, body=body)):
            bare = _whatwg_path(link.url.partition("#")[0])
            if bare not in expected:
                expected.append(bare)
        assert found == expected, path
        total += len(found)
    assert total > len(pages)  # real links, not empty lists


def _whatwg_path(url: str) -> str:
    """Scrapy keeps ``http://host`` as written; a browser (the WHATWG serializer, which
    our resolver follows) always gives an http(s) URL a path, so it is ``http://host/``."""
    scheme, sep, rest = url.partition("://")
    if sep and "/" not in rest.split("?", 1)[0]:
        host, q, query = rest.partition("?")
        return f"{scheme}://{host}/{q}{query}"
    return url
