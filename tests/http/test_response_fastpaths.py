"""Response's fast paths (parsing bytes as HTML, links read straight off the tree)
give exactly what the plain parsel calls give."""

from __future__ import annotations

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st
from multidict import CIMultiDict
from parsel import Selector

from pooledcrawl import Request, Response
from pooledcrawl.http.encoding import declared as _declared
from pooledcrawl.http.markup import document_type
from pooledcrawl.http.markup import sniff as _sniff

URL = "http://h.test/dir/a.html"


def make_response(body: bytes, content_type: str | None) -> Response:
    headers = CIMultiDict[str]()
    if content_type is not None:
        headers["Content-Type"] = content_type
    return Response(URL, 200, headers, body, Request(URL))


def reference_selector(response: Response) -> Selector:
    """What Response.selector is without the fast path: parsel on the decoded text,
    with the type the Content-Type decides (or the sniffed one)."""
    content_type = response.headers.get("Content-Type")
    fresh = make_response(response.body, content_type)
    text = fresh.text
    return Selector(text=text, type=document_type(content_type or "") or _sniff(text))


def dump(selector: Selector) -> tuple[str, list[str], list[str]]:
    if selector.type == "json":
        return ("json", [repr(selector.root)], [])
    return (
        selector.type,
        selector.xpath("//text()").getall(),
        selector.xpath("//@*").getall(),
    )


FRAGMENTS = [
    b"<html>",
    b"<head>",
    b"<body>",
    b"</body></html>",
    b'<meta charset="latin-1">',
    b'<meta charset="utf-8">',
    b'<meta http-equiv="Content-Type" content="text/html; charset=cp1252">',
    b'<?xml version="1.0" encoding="utf-8"?>',
    b'<a href="/x.html">x</a>',
    b"<a href='y.html'>y</a>",
    b'<a name="n">no href</a>',
    b'<h1 class="name">Item \xc3\xa9</h1>',
    b"caf\xe9",
    b"\xff\xfe",
    b"\xef\xbb\xbf",
    b"\x00",
    b"\x1c",
    b" \t\n",
    b"\xc2\xa0",
    b'{"a": 1}',
    b"[1, 2]",
    b"plain text",
    b"<!-- <meta charset=koi8-r> -->",
]
HEAD_PARTS = [
    b"<body>",
    b"<BODY>",
    b"< body>",
    b"<html>",
    b"<head>",
    b"<!--",
    b"-->",
    b'<meta charset="koi8-r">',
    b'<META CHARSET="latin-1">',
    b'<meta http-equiv="content-type" content="text/html; charset=cp1251">',
    b'<?xml version="1.0" encoding="utf-16"?>',
    b'<?XML version="1.0" encoding="latin-1"?>',
    b"<p>text</p>",
    b" " * 2000,
]


@settings(max_examples=400, deadline=None)
@given(st.lists(st.sampled_from(HEAD_PARTS), max_size=10))
@example([b"<!--", b"<body>", b"-->", b'<meta charset="koi8-r">', b"<body>"])
@example([b"<BODY>", b'<meta charset="koi8-r">', b"<body>"])
@example([b" " * 2000, b" " * 2000, b'<meta charset="koi8-r">', b"<body>"])
def test_declared_encoding_shortcut_agrees_with_w3lib(parts: list[bytes]) -> None:
    from w3lib.encoding import html_body_declared_encoding

    body = b"".join(parts)
    assert _declared(body) == html_body_declared_encoding(body)


CONTENT_TYPES = [
    None,
    "text/html",
    "text/html; charset=utf-8",
    "text/html; charset=cp1252",
    "application/xhtml+xml",
    "application/octet-stream",
    "text/xml",
    "application/json",
]


@settings(max_examples=300, deadline=None)
@given(
    parts=st.lists(st.sampled_from(FRAGMENTS), max_size=8),
    content_type=st.sampled_from(CONTENT_TYPES),
)
def test_selector_parses_like_parsel_on_the_text(
    parts: list[bytes], content_type: str | None
) -> None:
    response = make_response(b"".join(parts), content_type)
    assert dump(response.selector) == dump(reference_selector(response))


@pytest.mark.parametrize(
    "body",
    [
        b'<html><body><a href="/a.html">a</a><a href="b.html">b</a></body></html>',
        b'<html><meta charset="latin-1"><body><a href="/caf\xe9.html">c</a></body></html>',
        b'\xef\xbb\xbf<html><a href="/bom.html">b</a></html>',
        b'<?xml version="1.0"?><root><a href="/x.html">x</a></root>',
    ],
)
@pytest.mark.parametrize("content_type", CONTENT_TYPES)
def test_selector_same_whether_text_was_read_first(body: bytes, content_type: str | None) -> None:
    fast = make_response(body, content_type)
    slow = make_response(body, content_type)
    _ = slow.text  # the selector then parses the decoded text
    assert dump(fast.selector) == dump(slow.selector)


LINKS = b"""<html><body><ul>
<li><a href="/a.html">a</a></li><li><a href="b.html">b</a></li>
<li><a name="x">none</a></li><li><a href="https://o.test/c">c</a></li>
</ul><p class="next"><a href="?p=2">next</a></p></body></html>"""


@pytest.mark.parametrize(
    ("css", "xpath"),
    [
        ("ul a", None),
        ("a", None),
        ("ul a::attr(href)", None),
        ("p.next a", None),
        ("nothing here", None),
        (None, "//a"),
        (None, "//a/@href"),
        (None, "count(//a)"),
        (None, "//a[re:test(@href, 'b')]"),
    ],
)
def test_follow_all_finds_the_links_parsel_finds(css: str | None, xpath: str | None) -> None:
    response = make_response(LINKS, "text/html")
    got = [r.url for r in response.follow_all(css=css, xpath=xpath)]
    found = response.css(css) if css is not None else response.xpath(xpath or "")
    hrefs = [
        s.root if isinstance(s.root, str) else getattr(s.root, "get", dict().get)("href")
        for s in found
    ]
    expected = [response.urljoin(h) for h in hrefs if isinstance(h, str)]
    assert got == expected


def test_follow_all_reports_a_bad_query_as_parsel_does() -> None:
    response = make_response(LINKS, "text/html")
    with pytest.raises(ValueError, match="XPath error"):
        list(response.follow_all(xpath="//a[@"))


@pytest.mark.parametrize(
    "query",
    ["ul a", "a::attr(href)", "p.next a::text", "li:nth-child(2) a", "*", "h1.missing::text"],
)
def test_css_selects_what_parsel_selects(query: str) -> None:
    response = make_response(LINKS, "text/html")
    got = response.css(query)
    expected = Selector(text=LINKS.decode()).css(query)
    assert got.getall() == expected.getall()
    assert [s.type for s in got] == [s.type for s in expected]
    assert [s._expr for s in got] == [s._expr for s in expected]
    assert [s.css("::text").getall() for s in got] == [s.css("::text").getall() for s in expected]


def test_css_with_a_namespace_prefix_goes_through_parsel() -> None:
    response = make_response(LINKS, "text/html")
    response.selector.register_namespace("h", "http://h.test/ns")
    assert response.xpath("//a[re:test(@href, '^/')]/@href").getall() == ["/a.html"]
    assert response.css("ul a").getall() == Selector(text=LINKS.decode()).css("ul a").getall()
