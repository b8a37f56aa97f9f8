"""LinkExtractor: Scrapy's filters and fields, checked against Scrapy's own extractor."""

from __future__ import annotations

import re

import pytest
from multidict import CIMultiDict

from pooledcrawl import LinkExtractor, Request, Response
from pooledcrawl.spiders.links import IGNORED_EXTENSIONS, Link

PAGE = b"""<html><head><title>T</title></head><body>
<div id="nav">
  <a href="/docs/intro.html">Intro</a>
  <a href="/docs/api/index.html#top">API <b>reference</b></a>
  <a href="guide.html" rel="nofollow">Guide</a>
  <a href="/blog/2024/post.html">Post</a>
</div>
<div class="content">
  <a href="  /docs/intro.html  ">Intro again</a>
  <a href="https://sub.other.test/x.html">Other sub</a>
  <a href="https://other.test/y.html">Other</a>
  <a href="https://evil.test/z.html">Evil</a>
  <a href="/files/manual.PDF">PDF</a>
  <a href="/img/logo.png?v=2">Logo</a>
  <a href="mailto:a@b.test">Mail</a>
  <a href="javascript:void(0)">JS</a>
  <a>no href</a>
  <map><area href="/area.html" alt="area"></map>
  <img src="/img/pic.jpg" data-href="/data.html">
  <A HREF="/upper.html">Upper</A>
</div>
</body></html>"""

URL = "http://site.test/dir/page.html"


def response(body: bytes = PAGE, url: str = URL, content_type: str = "text/html") -> Response:
    headers = CIMultiDict[str]({"Content-Type": content_type})
    return Response(url, 200, headers, body, Request(url))


def urls(extractor: LinkExtractor, body: bytes = PAGE, url: str = URL) -> list[str]:
    return [link.url for link in extractor.extract_links(response(body, url))]


def test_defaults_find_a_and_area_links_absolute_unique_in_order() -> None:
    assert urls(LinkExtractor()) == [
        "http://site.test/docs/intro.html",
        "http://site.test/docs/api/index.html",
        "http://site.test/dir/guide.html",
        "http://site.test/blog/2024/post.html",
        "https://sub.other.test/x.html",
        "https://other.test/y.html",
        "https://evil.test/z.html",
        "http://site.test/area.html",
        "http://site.test/upper.html",
    ]


def test_link_fields_text_fragment_nofollow() -> None:
    links = {link.url: link for link in LinkExtractor().extract_links(response())}
    api = links["http://site.test/docs/api/index.html"]
    assert api == Link("http://site.test/docs/api/index.html", "API reference", "top", False)
    assert links["http://site.test/dir/guide.html"].nofollow is True
    assert links["http://site.test/docs/intro.html"].text == "Intro"  # the first one kept


def test_unique_false_keeps_duplicates() -> None:
    found = urls(LinkExtractor(unique=False))
    assert found.count("http://site.test/docs/intro.html") == 2


def test_allow_and_deny_regexes_deny_wins() -> None:
    assert urls(LinkExtractor(allow=r"/docs/")) == [
        "http://site.test/docs/intro.html",
        "http://site.test/docs/api/index.html",
    ]
    assert urls(LinkExtractor(allow=(r"/docs/", re.compile(r"/blog/")), deny=r"/api/")) == [
        "http://site.test/docs/intro.html",
        "http://site.test/blog/2024/post.html",
    ]


def test_allow_and_deny_domains_match_subdomains() -> None:
    assert urls(LinkExtractor(allow_domains="other.test")) == [
        "https://sub.other.test/x.html",
        "https://other.test/y.html",
    ]
    found = urls(LinkExtractor(deny_domains=["other.test", "site.test"]))
    assert found == ["https://evil.test/z.html"]


def test_deny_extensions_default_and_custom() -> None:
    every = LinkExtractor(deny_extensions=[], tags=("a", "img"), attrs=("href", "src"))
    assert "http://site.test/files/manual.PDF" in urls(every)
    assert "http://site.test/img/pic.jpg" in urls(every)
    # the default list, case-insensitively, ignoring the query
    default = LinkExtractor(tags=("a", "img"), attrs=("href", "src"))
    found = urls(default)
    assert "http://site.test/files/manual.PDF" not in found
    assert "http://site.test/img/logo.png?v=2" not in found
    assert "http://site.test/img/pic.jpg" not in found
    assert "pdf" in IGNORED_EXTENSIONS and "tar.gz" in IGNORED_EXTENSIONS
    assert "http://site.test/files/manual.PDF" not in urls(LinkExtractor(deny_extensions=["pdf"]))


def test_extension_is_read_from_the_last_path_segment_only() -> None:
    body = (
        b'<a href="http://example.ai">host, no path</a><a href="http://example.ai/x.ai">ai</a>'
        b'<a href="/a.tar.gz">tarball</a><a href="/dir.pdf/page">dir</a>'
        b'<a href="/page?file=x.pdf">query</a><a href="/b.JPG#frag">upper</a>'
    )
    assert urls(LinkExtractor(), body) == [
        "http://example.ai/",  # a browser adds the empty path's "/"
        "http://site.test/dir.pdf/page",
        "http://site.test/page?file=x.pdf",
    ]


def test_restrict_css_and_xpaths() -> None:
    assert urls(LinkExtractor(restrict_css="#nav")) == [
        "http://site.test/docs/intro.html",
        "http://site.test/docs/api/index.html",
        "http://site.test/dir/guide.html",
        "http://site.test/blog/2024/post.html",
    ]
    assert urls(LinkExtractor(restrict_xpaths="//map")) == ["http://site.test/area.html"]
    # an element selected itself is searched too (Scrapy iterates the element and below)
    assert urls(LinkExtractor(restrict_xpaths="//div[@id='nav']/a[1]")) == [
        "http://site.test/docs/intro.html"
    ]


def test_tags_and_attrs() -> None:
    assert urls(LinkExtractor(tags="img", attrs="data-href")) == ["http://site.test/data.html"]
    found = urls(LinkExtractor(tags="*", attrs="*", deny_extensions=[]))
    assert "http://site.test/data.html" in found and "http://site.test/img/pic.jpg" in found


def test_process_value_rewrites_or_drops() -> None:
    def only_docs(value: str) -> str | None:
        return value.replace("/docs/", "/v2/docs/") if "/docs/" in value else None

    assert urls(LinkExtractor(process_value=only_docs)) == [
        "http://site.test/v2/docs/intro.html",
        "http://site.test/v2/docs/api/index.html",
    ]
    # a relative value returned is resolved against the page
    js = b"""<a href="javascript:goToPage('../other/page.html')">x</a>"""

    def from_js(value: str) -> str | None:
        match = re.search(r"goToPage\('(.*?)'", value)
        return match.group(1) if match else None

    assert urls(LinkExtractor(process_value=from_js), js) == ["http://site.test/other/page.html"]


def test_restrict_text_and_canonicalize() -> None:
    assert urls(LinkExtractor(restrict_text="^Other")) == [
        "https://sub.other.test/x.html",
        "https://other.test/y.html",
    ]
    # the text filter comes before dedup: the second link to a URL may be the match
    twice = b'<a href="/a.html">menu</a><a href="/a.html">Other A</a>'
    assert [
        (lk.url, lk.text)
        for lk in LinkExtractor(restrict_text="^Other").extract_links(response(twice))
    ] == [("http://site.test/a.html", "Other A")]
    body = b'<a href="/p?b=2&a=1">x</a><a href="/p?a=1&b=2">y</a>'
    assert urls(LinkExtractor(canonicalize=True), body) == ["http://site.test/p?a=1&b=2"]
    assert len(urls(LinkExtractor(), body)) == 2


def test_matches() -> None:
    extractor = LinkExtractor(allow=r"/docs/", deny=r"/api/", allow_domains="site.test")
    assert extractor.matches("http://site.test/docs/a.html")
    assert not extractor.matches("http://site.test/docs/api/a.html")
    assert not extractor.matches("http://other.test/docs/a.html")


def test_xhtml_parsed_as_xml_still_yields_links() -> None:
    body = (
        b'<?xml version="1.0" encoding="utf-8"?>\n'
        b'<html xmlns="http://www.w3.org/1999/xhtml"><body>'
        b'<a href="ch01.html">One</a><a href="ch02.html">Two</a></body></html>'
    )
    found = LinkExtractor().extract_links(response(body, content_type="application/xml"))
    assert [(link.url, link.text) for link in found] == [
        ("http://site.test/dir/ch01.html", "One"),
        ("http://site.test/dir/ch02.html", "Two"),
    ]


@pytest.mark.parametrize(
    "kwargs",
    [
        {},
        {"allow": r"/docs/"},
        {"deny": r"\.html$"},
        {"allow_domains": ["other.test"]},
        {"deny_domains": ["other.test"]},
        {"restrict_css": ".content"},
        {"restrict_xpaths": "//div[@id='nav']"},
        {"tags": ("a", "img"), "attrs": ("href", "src")},
        {"unique": False},
    ],
)
def test_same_links_as_scrapy(kwargs: dict[str, object]) -> None:
    from scrapy.http import HtmlResponse
    from scrapy.linkextractors import LinkExtractor as ScrapyLinkExtractor

    theirs = ScrapyLinkExtractor(**kwargs).extract_links(  # type: ignore[arg-type]
        HtmlResponse(URL, body=PAGE, encoding="utf-8")
    )
    ours = LinkExtractor(**kwargs).extract_links(response())  # type: ignore[arg-type]
    # Scrapy keeps the fragment in url; it is never sent, so ours drops it to `fragment`
    assert [(lk.url, lk.text, lk.nofollow) for lk in ours] == [
        (lk.url.partition("#")[0], lk.text, lk.nofollow) for lk in theirs
    ]
