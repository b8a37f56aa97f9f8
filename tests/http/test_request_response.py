"""Request and Response: the objects spiders handle."""

from __future__ import annotations

import pytest
from multidict import CIMultiDict

from pooledcrawl import Request, Response

PAGE = b"""<html><head><title>T</title></head><body>
<ul class="links">
  <li><a href="b.html">relative</a></li>
  <li><a href="https://other.test/abs">absolute</a></li>
  <li><a href="/root.html">root-relative</a></li>
  <li><a href="../up.html">parent</a></li>
  <li><a name="no-href">anchor without href</a></li>
</ul>
<li class="next"><a href="?page=2">next</a></li>
<p class="price">12.50</p>
</body></html>"""


def make_response(
    body: bytes,
    content_type: str | None = "text/html; charset=utf-8",
    url: str = "http://h.test/dir/a.html",
    status: int = 200,
) -> Response:
    headers = CIMultiDict[str]()
    if content_type is not None:
        headers["Content-Type"] = content_type
    return Response(url, status, headers, body, Request(url))


# ---- Request -----------------------------------------------------------------------------


def test_request_meta_and_cb_kwargs_are_created_lazily() -> None:
    request = Request("http://h.test/")
    assert request.get_meta("x", 5) == 5
    assert request._meta is None  # get_meta must not allocate
    assert request._cb_kwargs is None
    request.meta["x"] = 1
    assert request.get_meta("x") == 1
    assert request.cb_kwargs == {}
    assert request._cb_kwargs == {}


def test_request_defaults_and_body_encoding() -> None:
    request = Request("http://h.test/", method="post", body="é")
    assert request.method == "POST"
    assert request.body == "é".encode()
    assert request.priority == 0 and not request.dont_filter
    assert request.callback is None and request.errback is None
    with pytest.raises(TypeError):
        Request(b"http://h.test/")  # type: ignore[arg-type]


def test_request_replace_copies_and_changes() -> None:
    def cb(response: Response) -> None:
        return None

    original = Request(
        "http://h.test/a",
        cb,
        headers={"X": "1"},
        meta={"k": "v"},
        cb_kwargs={"n": 1},
        priority=3,
        dont_filter=True,
    )
    original.depth = 4
    copy = original.replace(url="http://h.test/b", priority=7)
    assert copy.url == "http://h.test/b" and copy.priority == 7
    assert copy.callback is cb and copy.dont_filter and copy.depth == 4
    assert copy.meta == {"k": "v"} and copy.cb_kwargs == {"n": 1}
    # The copy's dicts are its own.
    copy.meta["k"] = "changed"
    copy.headers["X"] = "2"  # type: ignore[index]
    assert original.meta["k"] == "v" and original.headers == {"X": "1"}
    # An unset meta stays unset in the copy.
    assert Request("http://h.test/").replace()._meta is None


# ---- Response: text decoding -------------------------------------------------------------


def test_text_uses_the_header_charset() -> None:
    text = "Привет, мир"
    response = make_response(text.encode("cp1251"), "text/html; charset=windows-1251")
    assert response.text == text


def test_text_uses_a_meta_charset_when_the_header_has_none() -> None:
    text = "日本語のページ"
    body = (
        b'<html><head><meta charset="shift_jis"></head><body><p>'
        + text.encode("shift_jis")
        + b"</p></body></html>"
    )
    response = make_response(body, "text/html")
    assert response.css("p::text").get() == text


def test_text_uses_a_meta_http_equiv_charset() -> None:
    text = "Ça coûte 5 €"
    body = (
        b'<html><head><meta http-equiv="Content-Type" content="text/html; charset=cp1252">'
        b"</head><body><p>" + text.encode("cp1252") + b"</p></body></html>"
    )
    assert make_response(body, None).css("p::text").get() == text


def test_a_bom_wins_over_a_wrong_header() -> None:
    text = "naïve café"
    response = make_response(b"\xef\xbb\xbf" + text.encode("utf-8"), "text/html; charset=latin-1")
    assert response.text == text
    utf16 = make_response("\ufeff".encode("utf-16-le") + text.encode("utf-16-le"), "text/html")
    assert utf16.text == text


def test_cp1251_body_starting_with_0xff_still_uses_the_header() -> None:
    # "я" is 0xFF in cp1251: it must not be mistaken for a UTF-16 BOM.
    text = "яблоко"
    response = make_response(text.encode("cp1251"), "text/html; charset=windows-1251")
    assert response.text == text


@pytest.mark.parametrize(
    "content_type", ["text/html; charset=no-such-charset", "text/html; charset=", "text/html"]
)
def test_unknown_or_missing_charset_falls_back_without_raising(content_type: str) -> None:
    response = make_response("héllo".encode(), content_type)
    assert "llo" in response.text
    assert response.text == "héllo"


def test_undecodable_bytes_are_replaced_not_raised() -> None:
    response = make_response(b"ok \xff\xfe\xfa end", "text/html; charset=utf-8")
    assert response.text.startswith("ok ") and response.text.endswith(" end")


def test_text_and_selector_are_built_once_and_lazily() -> None:
    response = make_response(PAGE)
    assert response._text is None and response._selector is None
    assert response.text is response.text
    assert response._selector is None
    assert response.selector is response.selector


# ---- Response: json, selectors -----------------------------------------------------------


def test_json() -> None:
    response = make_response(b'{"a": [1, 2], "b": "\xc3\xa9"}', "application/json")
    assert response.json() == {"a": [1, 2], "b": "é"}


def test_css_and_xpath() -> None:
    response = make_response(PAGE)
    assert response.css("p.price::text").get() == "12.50"
    assert response.xpath("//title/text()").get() == "T"
    assert response.xpath("//p[@class=$c]/text()", c="price").get() == "12.50"
    assert len(response.css("ul.links a")) == 5


def test_meta_is_the_requests_meta() -> None:
    response = make_response(PAGE)
    response.meta["depth_seen"] = 2
    assert response.request.meta == {"depth_seen": 2}


# ---- Response: follow --------------------------------------------------------------------


@pytest.mark.parametrize(
    ("href", "expected"),
    [
        ("b.html", "http://h.test/dir/b.html"),
        ("https://other.test/abs", "https://other.test/abs"),
        ("/root.html", "http://h.test/root.html"),
        ("../up.html", "http://h.test/up.html"),
        ("?page=2", "http://h.test/dir/a.html?page=2"),
        ("//cdn.test/x", "http://cdn.test/x"),
    ],
)
def test_follow_resolves_links(href: str, expected: str) -> None:
    def cb(response: Response) -> None:
        return None

    request = make_response(PAGE).follow(href, cb, priority=2, meta={"m": 1})
    assert isinstance(request, Request)
    assert request.url == expected
    assert request.callback is cb and request.priority == 2 and request.meta == {"m": 1}


def test_follow_resolves_against_the_final_url_with_a_port() -> None:
    response = make_response(PAGE, url="http://h.test:8080/dir/a.html")
    assert response.follow("/x").url == "http://h.test:8080/x"
    assert response.follow("y").url == "http://h.test:8080/dir/y"


def test_follow_accepts_selectors() -> None:
    response = make_response(PAGE)
    anchor = response.css("ul.links a")[0]
    assert response.follow(anchor).url == "http://h.test/dir/b.html"
    attribute = response.css("ul.links a::attr(href)")[2]
    assert response.follow(attribute).url == "http://h.test/root.html"
    with pytest.raises(ValueError, match="no href"):
        response.follow(response.css("ul.links a[name]")[0])


def test_follow_all_css_skips_elements_without_href() -> None:
    response = make_response(PAGE)
    urls = [r.url for r in response.follow_all(css="ul.links a")]
    assert urls == [
        "http://h.test/dir/b.html",
        "https://other.test/abs",
        "http://h.test/root.html",
        "http://h.test/up.html",
    ]
    assert [r.url for r in response.follow_all(css="li.next a")] == [
        "http://h.test/dir/a.html?page=2"
    ]
    assert [r.url for r in response.follow_all(css="ul.links a::attr(href)")] == urls


def test_follow_all_with_urls_xpath_and_kwargs() -> None:
    response = make_response(PAGE)

    def cb(response: Response) -> None:
        return None

    got = list(response.follow_all(["b.html", "/c"], cb, dont_filter=True))
    assert [r.url for r in got] == ["http://h.test/dir/b.html", "http://h.test/c"]
    assert all(r.callback is cb and r.dont_filter for r in got)
    assert len(list(response.follow_all(xpath="//ul//a"))) == 4
    with pytest.raises(ValueError):
        list(response.follow_all())
