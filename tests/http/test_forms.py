"""FormRequest and FormRequest.from_response: what a browser would submit."""

from __future__ import annotations

from urllib.parse import parse_qsl, urlsplit

import pytest
from multidict import CIMultiDict

from pooledcrawl import FormRequest, Request, Response

URL = "http://site.test/account/login.html"

FORMS = b"""<html><body>
<form id="search" action="/search?old=1" method="get">
  <input name="q" value="shoes">
  <input type="submit" name="go" value="Search">
</form>
<form name="login" id="login-form" action="do_login" method="POST">
  <input type="hidden" name="csrf" value="tok123">
  <input name="user" value="">
  <input type="password" name="pass">
  <input type="checkbox" name="remember" checked>
  <input type="checkbox" name="newsletter" value="yes">
  <input type="radio" name="plan" value="free">
  <input type="radio" name="plan" value="pro" checked>
  <select name="lang">
    <option value="en">English</option><option value="fr" selected>French</option>
  </select>
  <select name="tz"><option disabled>pick</option><option>UTC</option><option>CET</option></select>
  <select name="tags" multiple>
    <option selected>a</option><option>b</option><option selected value="c2">c</option>
  </select>
  <textarea name="note">
hello
world</textarea>
  <input name="off" value="x" disabled>
  <fieldset disabled><input name="in_disabled_fieldset" value="x"></fieldset>
  <input type="reset" name="reset" value="Reset">
  <input type="button" name="btn" value="Button">
  <input type="file" name="upload">
  <input value="no name">
  <input type="submit" name="action" value="login">
  <button name="action" value="register">Register</button>
  <button type="button" name="noop" value="1">noop</button>
</form>
<form action="https://other.test/x" method="dialog"><input name="a" value="1"></form>
</body></html>"""


def response(body: bytes = FORMS, url: str = URL, content_type: str = "text/html") -> Response:
    return Response(url, 200, CIMultiDict[str]({"Content-Type": content_type}), body, Request(url))


def body_pairs(request: Request) -> list[tuple[str, str]]:
    assert request.body is not None
    return parse_qsl(request.body.decode(), keep_blank_values=True)


def test_formrequest_post_encodes_body_and_header() -> None:
    request = FormRequest("http://site.test/post", formdata={"name": "Jo Doe", "tags": ["a", "b"]})
    assert request.method == "POST"
    assert request.headers == {"Content-Type": "application/x-www-form-urlencoded"}
    assert request.body == b"name=Jo+Doe&tags=a&tags=b"
    assert request.url == "http://site.test/post"


def test_formrequest_get_puts_data_in_query() -> None:
    request = FormRequest(
        "http://site.test/s?x=1#f", method="GET", formdata=[("q", "é"), ("p", "1")]
    )
    assert request.method == "GET" and request.body is None
    assert request.url == "http://site.test/s?q=%C3%A9&p=1#f"


def test_formrequest_without_data_is_a_plain_get() -> None:
    request = FormRequest("http://site.test/", callback=None)
    assert request.method == "GET" and request.body is None


def test_from_response_collects_fields_like_a_browser() -> None:
    request = FormRequest.from_response(response(), formname="login")
    assert request.method == "POST"
    assert request.url == "http://site.test/account/do_login"
    assert request.headers == {"Content-Type": "application/x-www-form-urlencoded"}
    assert body_pairs(request) == [
        ("csrf", "tok123"),
        ("user", ""),
        ("pass", ""),
        ("remember", "on"),
        ("plan", "pro"),
        ("lang", "fr"),
        ("tz", "UTC"),
        ("tags", "a"),
        ("tags", "c2"),
        ("note", "hello\nworld"),
        ("upload", ""),
        ("action", "login"),  # the first submit button is clicked
    ]


def test_from_response_formdata_overrides_and_none_removes() -> None:
    request = FormRequest.from_response(
        response(),
        formid="login-form",
        formdata={"user": "ann", "pass": "pw", "note": None, "extra": "1"},
    )
    pairs = dict(body_pairs(request))
    assert pairs["user"] == "ann" and pairs["pass"] == "pw" and pairs["extra"] == "1"
    assert "note" not in pairs and pairs["csrf"] == "tok123"


def test_from_response_clickdata_and_dont_click() -> None:
    register = FormRequest.from_response(
        response(), formname="login", clickdata={"value": "register"}
    )
    assert ("action", "register") in body_pairs(register)
    assert ("action", "login") not in body_pairs(register)
    second = FormRequest.from_response(response(), formname="login", clickdata={"nr": 1})
    assert ("action", "register") in body_pairs(second)
    none = FormRequest.from_response(response(), formname="login", dont_click=True)
    assert all(name != "action" for name, _ in body_pairs(none))
    with pytest.raises(ValueError, match="clickdata"):
        FormRequest.from_response(response(), formname="login", clickdata={"value": "nope"})


def test_from_response_get_form_replaces_query() -> None:
    request = FormRequest.from_response(response(), formnumber=0)
    assert request.method == "GET" and request.body is None
    parts = urlsplit(request.url)
    assert parts.path == "/search"
    assert parse_qsl(parts.query) == [("q", "shoes"), ("go", "Search")]


def test_from_response_selects_by_css_xpath_and_number() -> None:
    by_css = FormRequest.from_response(response(), formcss="input[name=csrf]")
    assert ("csrf", "tok123") in body_pairs(by_css)
    by_xpath = FormRequest.from_response(response(), formxpath="//input[@name='q']")
    assert by_xpath.url.startswith("http://site.test/search?q=shoes")
    dialog = FormRequest.from_response(response(), formnumber=2)
    assert dialog.method == "GET" and dialog.url == "https://other.test/x?a=1"
    with pytest.raises(IndexError):
        FormRequest.from_response(response(), formnumber=7)
    with pytest.raises(ValueError, match="no <form>"):
        FormRequest.from_response(response(b"<html><body>none</body></html>"))
    with pytest.raises(ValueError, match="no <form>"):
        FormRequest.from_response(response(), formxpath="//p")


def test_from_response_url_method_and_request_kwargs() -> None:
    request = FormRequest.from_response(
        response(), formname="login", url="/elsewhere", meta={"k": 1}, dont_filter=True
    )
    assert request.url == "http://site.test/elsewhere"
    assert request.meta == {"k": 1} and request.dont_filter
    as_get = FormRequest.from_response(response(), formname="login", method="get")
    assert as_get.method == "GET" and "csrf=tok123" in as_get.url


def test_from_response_encodes_in_the_page_charset() -> None:
    body = '<form action="/f" method="post"><input name="n" value="café"></form>'.encode("cp1252")
    request = FormRequest.from_response(
        response(body, content_type="text/html; charset=windows-1252")
    )
    assert request.body == b"n=caf%E9"


def test_from_response_matches_scrapy_where_scrapy_follows_browsers() -> None:
    """Scrapy's from_response on the same form, minus the disabled controls and the
    non-submit button it sends (browsers send neither), and with the newline after
    <textarea> dropped (the HTML parser drops it; lxml's keeps it)."""
    import warnings

    from scrapy.http import FormRequest as ScrapyFormRequest
    from scrapy.http import HtmlResponse

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        theirs = ScrapyFormRequest.from_response(
            HtmlResponse(URL, body=FORMS, encoding="utf-8"), formname="login"
        )
    their_pairs = parse_qsl(theirs.body.decode(), keep_blank_values=True)
    their_pairs = [
        (k, v.removeprefix("\n") if k == "note" else v)
        for k, v in their_pairs
        if k not in ("off", "in_disabled_fieldset", "btn")
    ]
    ours = FormRequest.from_response(response(), formname="login")
    assert body_pairs(ours) == their_pairs
    assert ours.url == theirs.url and ours.method == theirs.method


def test_from_response_honours_the_form_attribute() -> None:
    """HTML's ``form="id"``: a control outside the form that names it is submitted
    with it, in document order; one inside that names another form is not."""
    body = b"""<html><body>
    <input name="before" value="1" form="f">
    <form id="f" action="/go" method="post">
      <input name="inside" value="2">
      <input name="other" value="x" form="g">
    </form>
    <form id="g" action="/g"></form>
    <textarea name="after" form="f">3</textarea>
    <button name="send" value="yes" form="f">Send</button>
    </body></html>"""
    request = FormRequest.from_response(response(body), formid="f")
    assert body_pairs(request) == [
        ("before", "1"),
        ("inside", "2"),
        ("after", "3"),
        ("send", "yes"),
    ]
    other = FormRequest.from_response(response(body), formid="g")
    assert other.url == "http://site.test/g?other=x"
