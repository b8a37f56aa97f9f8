"""What sites really serve: the Content-Type picks the parser, and the charsets and
markup found in the wild decode and yield their links as browsers see them."""

from __future__ import annotations

import pytest
from multidict import CIMultiDict

from pooledcrawl import Request, Response
from pooledcrawl.http.response import document_type

URL = "http://h.test/docs/guide/page.html"

# what DocBook XSL, older XHTML sites and many generators write, served as text/html
XHTML = b"""<?xml version="1.0" encoding="UTF-8" standalone="no"?>
<!DOCTYPE html PUBLIC "-//W3C//DTD XHTML 1.0 Transitional//EN"
  "http://www.w3.org/TR/xhtml1/DTD/xhtml1-transitional.dtd">
<html xmlns="http://www.w3.org/1999/xhtml"><head>
<meta http-equiv="Content-Type" content="text/html; charset=UTF-8" />
<title>Chapter 1. Caf\xc3\xa9</title></head>
<body><div class="toc"><a href="ch01s01.html">1.1</a><a href="../index.html">up</a></div>
</body></html>"""


def response(body: bytes, content_type: str | None = "text/html", url: str = URL) -> Response:
    headers = CIMultiDict[str]()
    if content_type is not None:
        headers["Content-Type"] = content_type
    return Response(url, 200, headers, body, Request(url))


@pytest.mark.parametrize(
    ("content_type", "expected"),
    [
        ("text/html", "html"),
        ("TEXT/HTML; charset=ISO-8859-1", "html"),
        ("application/xhtml+xml", "html"),
        ("text/xml", "xml"),
        ("application/xml; charset=utf-8", "xml"),
        ("application/rss+xml", "xml"),
        ("application/atom+xml", "xml"),
        ("application/json", "json"),
        ("application/ld+json", "json"),
        ("", None),
        ("application/octet-stream", None),
        ("text/plain", None),
    ],
)
def test_document_type_follows_the_content_type(content_type: str, expected: str | None) -> None:
    assert document_type(content_type) == expected


@pytest.mark.parametrize("content_type", ["text/html", "text/html; charset=utf-8"])
def test_xhtml_with_an_xml_declaration_served_as_html_parses_as_html(content_type: str) -> None:
    page = response(XHTML, content_type)
    assert page.selector.type == "html"
    assert page.css("a::attr(href)").getall() == ["ch01s01.html", "../index.html"]
    assert [r.url for r in page.follow_all(css="a")] == [
        "http://h.test/docs/guide/ch01s01.html",
        "http://h.test/docs/index.html",
    ]
    assert page.css("title::text").get() == "Chapter 1. Café"


def test_xhtml_after_text_was_read_parses_as_html_too() -> None:
    page = response(XHTML)
    _ = page.text  # the selector then comes from the decoded text, not the bytes
    assert page.css("a::attr(href)").getall() == ["ch01s01.html", "../index.html"]


def test_xhtml_served_as_application_xhtml_xml_parses_as_html() -> None:
    page = response(XHTML, "application/xhtml+xml")
    assert page.css("a::attr(href)").getall() == ["ch01s01.html", "../index.html"]


@pytest.mark.parametrize("content_type", [None, "application/octet-stream", "text/plain"])
def test_without_a_useful_content_type_xhtml_is_sniffed_as_html(content_type: str | None) -> None:
    page = response(XHTML, content_type)
    assert page.selector.type == "html"
    assert page.css("a::attr(href)").getall() == ["ch01s01.html", "../index.html"]


FEED = b"""<?xml version="1.0" encoding="utf-8"?>
<rss version="2.0"><channel><item><link>http://h.test/a</link></item>
<item><link>http://h.test/b</link></item></channel></rss>"""


@pytest.mark.parametrize("content_type", ["application/rss+xml", "text/xml", None])
def test_xml_parses_as_xml(content_type: str | None) -> None:
    page = response(FEED, content_type)
    assert page.selector.type == "xml"
    assert page.xpath("//item/link/text()").getall() == ["http://h.test/a", "http://h.test/b"]


def test_html_served_as_xml_parses_as_xml() -> None:
    # the header decides, as in browsers: an XML parser keeps the XHTML namespace
    page = response(XHTML, "application/xml")
    assert page.selector.type == "xml"
    assert page.css("a::attr(href)").getall() == []
    assert page.xpath("//x:a/@href", namespaces={"x": "http://www.w3.org/1999/xhtml"}).getall()


def test_json_stays_json() -> None:
    page = response(b'{"links": ["/a", "/b"]}', "application/json")
    assert page.selector.type == "json"
    assert page.json() == {"links": ["/a", "/b"]}
    assert page.selector.jmespath("links[1]").get() == "/b"


def test_markup_served_as_html_is_html_even_if_it_looks_like_json() -> None:
    page = response(b'["<a href=\\"/x\\">x</a>"]', "text/html")
    assert page.selector.type == "html"


# ---- charsets -----------------------------------------------------------------------------
def test_meta_charset_after_the_first_kilobyte() -> None:
    script = b"<script>var x = '" + b"x" * 1500 + b"';</script>"
    body = (
        b"<html><head>"
        + script
        + b'<meta charset="koi8-r"><title>\xf0\xd2\xc9\xd7\xc5\xd4</title></head>'
        + b'<body><a href="a.html">a</a></body></html>'
    )
    page = response(body)
    assert page.css("title::text").get() == "Привет"


def test_meta_charset_far_into_a_long_head() -> None:
    # past the 4 KB w3lib scans; browsers still honour a meta in the head
    script = b"<script>var x = '" + b"x" * 9000 + b"';</script>"
    body = (
        b"<html><head>"
        + script
        + b'<meta http-equiv="Content-Type" content="text/html; charset=windows-1251">'
        + b"<title>\xcf\xf0\xe8\xe2\xe5\xf2</title></head><body><p>x</p></body></html>"
    )
    page = response(body)
    assert page.css("title::text").get() == "Привет"
    assert page.text.count("Привет") == 1


def test_meta_charset_in_the_body_past_4kb_is_not_a_declaration() -> None:
    body = (
        b"<html><head><title>caf\xc3\xa9</title></head><body>"
        + b"<p>x</p>" * 1000
        + b'<meta charset="koi8-r"></body></html>'
    )
    assert response(body).css("title::text").get() == "café"


@pytest.mark.parametrize("encoding", ["utf-16", "utf-16-le", "utf-16-be"])
@pytest.mark.parametrize("content_type", ["text/html", "text/html; charset=utf-8", None])
def test_utf16_with_a_bom(encoding: str, content_type: str | None) -> None:
    text = '<html><body><a href="/été.html">Été</a></body></html>'
    body = text.encode(encoding)
    if encoding != "utf-16":  # the plain codec writes its own BOM
        body = "\ufeff".encode(encoding) + body
    page = response(body, content_type)  # the BOM wins over the header, as in browsers
    assert page.css("a::text").get() == "Été"
    assert page.css("a::attr(href)").get() == "/été.html"


@pytest.mark.parametrize(
    ("content_type", "meta"),
    [
        ("text/html; charset=ISO-8859-1", b""),
        ("text/html; charset=latin1", b""),
        ("text/html; charset=us-ascii", b""),
        ("text/html", b'<meta charset="iso-8859-1">'),
        ("text/html", b'<meta http-equiv="Content-Type" content="text/html; charset=latin-1">'),
    ],
)
def test_windows_1252_declared_as_latin1_decodes_as_windows_1252(
    content_type: str, meta: bytes
) -> None:
    # WHATWG Encoding Standard: the labels latin1, iso-8859-1 and us-ascii all
    # mean windows-1252, so 0x80-0x9f are curly quotes, the euro sign, dashes
    body = b"<html><head>" + meta + b"</head><body><p>\x93Price\x94 \x80 5 \x96 caf\xe9</p>"
    assert response(body, content_type).css("p::text").get() == "\u201cPrice\u201d € 5 \u2013 café"


# ---- markup ---------------------------------------------------------------------------------
def test_base_href_is_honoured_by_follow_and_follow_all() -> None:
    body = b"""<html><head><base href="/static/v2/"></head><body>
    <a href="guide.html">g</a><a href="../img/x.html">x</a><a href="/abs.html">a</a>
    </body></html>"""
    page = response(body, url="http://h.test/docs/page.html")
    assert page.base_url == "http://h.test/static/v2/"
    assert page.follow("guide.html").url == "http://h.test/static/v2/guide.html"
    assert page.follow(page.css("a")[1]).url == "http://h.test/static/img/x.html"
    assert [r.url for r in page.follow_all(css="a")] == [
        "http://h.test/static/v2/guide.html",
        "http://h.test/static/img/x.html",
        "http://h.test/abs.html",
    ]


def test_the_first_base_with_an_href_wins() -> None:
    body = (
        b"<html><head><base target=_top><base href='/one/'></head>"
        b"<body><div><base href='/two/'></div><a href='a'>a</a></body></html>"
    )
    assert response(body).follow("a").url == "http://h.test/one/a"


def test_base_href_on_another_host_and_in_uppercase() -> None:
    body = b"<HTML><HEAD><BASE HREF='https://cdn.test/site/'></HEAD><BODY><A HREF='p'>p</A>"
    page = response(body)
    assert [r.url for r in page.follow_all(css="a")] == ["https://cdn.test/site/p"]
    assert page.urljoin("/q") == "https://cdn.test/q"


@pytest.mark.parametrize(
    "base", [b'<base target="_blank">', b'<base href="">', b'<base href="javascript:x">', b""]
)
def test_no_usable_base_href_means_the_page_url(base: bytes) -> None:
    page = response(b"<html><head>" + base + b"</head><body><a href='a.html'>a</a></body>")
    assert page.base_url == URL
    assert page.follow("a.html").url == "http://h.test/docs/guide/a.html"


def test_relative_links_with_dot_dot() -> None:
    body = b"""<html><body><a href="../../index.html">i</a><a href="./x/../y.html">y</a>
    <a href="../../../../too-far.html">t</a><a href="..">up</a></body></html>"""
    page = response(body)
    assert [r.url for r in page.follow_all(css="a")] == [
        "http://h.test/index.html",
        "http://h.test/docs/guide/y.html",
        "http://h.test/too-far.html",
        "http://h.test/docs/",
    ]


def test_uppercase_tags_and_attributes() -> None:
    body = b"<HTML><BODY><A HREF='A.HTML'>A</A><P><A Href=\"b.html\">B</A></BODY></HTML>"
    page = response(body)
    assert page.css("a::attr(href)").getall() == ["A.HTML", "b.html"]
    assert page.xpath("//a/text()").getall() == ["A", "B"]


def test_unclosed_tags() -> None:
    body = (
        b"<html><body><ul><li><a href=1.html>one<li><a href=2.html>two<p>text<div><a href=3.html>"
    )
    page = response(body)
    assert page.css("a::attr(href)").getall() == ["1.html", "2.html", "3.html"]
    paragraphs = response(b"<body><p>one<p>two<ul><li>a<li>b</ul>")
    assert paragraphs.css("p::text").getall() == ["one", "two"]  # a <p> closes the open one
    assert paragraphs.css("ul > li::text").getall() == ["a", "b"]


def test_a_nul_byte_in_the_body() -> None:
    body = b"<html><body><a href='one.html'>1</a>\x00<a href='two.html'>2</a></body></html>"
    page = response(body)
    assert page.css("a::attr(href)").getall() == ["one.html", "two.html"]
    assert [r.url for r in page.follow_all(css="a")][-1] == "http://h.test/docs/guide/two.html"
