"""Links on a page resolved as a browser resolves them: ``<base href>``, the page's
encoding for queries, awkward hrefs, and links to schemes the crawler skips."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from aiohttp import web
from multidict import CIMultiDict
from sites import serve

from pooledcrawl import Engine, Request, Response, Settings, Spider


def page(
    body: str | bytes, url: str = "http://h.test/dir/a.html", charset: str = "utf-8"
) -> Response:
    headers = CIMultiDict[str]({"Content-Type": f"text/html; charset={charset}"})
    data = body.encode(charset) if isinstance(body, str) else body
    return Response(url, 200, headers, data, Request(url))


# ---- <base href> ---------------------------------------------------------------------------

BASED = """<html><head><title>t</title><base href="https://cdn.test/root/sub/"></head>
<body><a href="x.html">x</a> <a href="/abs">abs</a> <a href="../up?q=1">up</a>
<a href="#frag">frag</a></body></html>"""


def test_base_href_is_what_links_resolve_against() -> None:
    response = page(BASED)
    assert response.base_url == "https://cdn.test/root/sub/"
    assert response.urljoin("x.html") == "https://cdn.test/root/sub/x.html"
    assert response.follow("/abs").url == "https://cdn.test/abs"
    assert [r.url for r in response.follow_all(css="a")] == [
        "https://cdn.test/root/sub/x.html",
        "https://cdn.test/abs",
        "https://cdn.test/root/up?q=1",
        "https://cdn.test/root/sub/#frag",
    ]
    assert [r.url for r in response.follow_all(["x.html"])] == ["https://cdn.test/root/sub/x.html"]


@pytest.mark.parametrize(
    ("head", "base"),
    [
        ('<base href="../other/">', "http://h.test/other/"),  # relative to the page URL
        ('<BASE HREF="/Up/">', "http://h.test/Up/"),
        ('<base target="_top"><base href="/second/">', "http://h.test/second/"),  # first with href
        ('<base href="http://[bad">', "http://h.test/dir/a.html"),  # unparsable: ignored
        ("<!-- no base here -->", "http://h.test/dir/a.html"),
    ],
)
def test_the_first_base_with_an_href_counts(head: str, base: str) -> None:
    response = page(f"<html><head>{head}</head><body><a href='l'>l</a></body></html>")
    assert response.base_url == base
    assert [r.url for r in response.follow_all(css="a")] == [base.rsplit("/", 1)[0] + "/l"]


# ---- the page's encoding ---------------------------------------------------------------------


def test_a_non_utf8_page_encodes_its_link_queries_in_its_own_encoding() -> None:
    latin = page(
        '<a href="café.html?q=café">x</a> <a href="?q=&#26085;">y</a>', charset="windows-1252"
    )
    # the path is always UTF-8; the query in the page's encoding, &#N; for what it lacks
    assert [r.url for r in latin.follow_all(css="a")] == [
        "http://h.test/dir/caf%C3%A9.html?q=caf%E9",
        "http://h.test/dir/a.html?q=%26%2326085%3B",
    ]
    utf8 = page('<a href="café.html?q=café">x</a>')
    assert [r.url for r in utf8.follow_all(css="a")] == [
        "http://h.test/dir/caf%C3%A9.html?q=caf%C3%A9"
    ]


# ---- awkward hrefs ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("href", "url"),
    [
        ("my page.html", "http://h.test/dir/my%20page.html"),
        ("l.html?x=a b", "http://h.test/dir/l.html?x=a%20b"),
        ("\\d\\e.html", "http://h.test/d/e.html"),
        ("?%zz", "http://h.test/dir/a.html?%zz"),
        ("sp%41ce.html", "http://h.test/dir/sp%41ce.html"),
        ("?a=%7e", "http://h.test/dir/a.html?a=%7e"),
        ("nbsp.html\u00a0", "http://h.test/dir/nbsp.html%C2%A0"),
        ("  \n/spaced.html\t ", "http://h.test/spaced.html"),
        ("/t\ta\nb.html", "http://h.test/tab.html"),
        ("../../../up.html", "http://h.test/up.html"),
        ("//Bücher.example/x", "http://xn--bcher-kva.example/x"),
        ("mailto:a@b.test", "mailto:a@b.test"),
        ("http://a b/", "http://a b/"),  # rejected by browsers: left as written, for the engine
    ],
    ids=repr,
)
def test_awkward_hrefs(href: str, url: str) -> None:
    response = page(f'<a href="{href}">l</a>'.replace("\n", "&#10;").replace("\t", "&#9;"))
    assert response.urljoin(href) == url
    assert [r.url for r in response.follow_all(css="a")] == [url]


# ---- links the crawler does not fetch --------------------------------------------------------

SKIPPED = [
    "mailto:someone@h.test",
    "tel:+15550100",
    "javascript:void(0)",
    "data:text/plain,hi",
    "ftp://h.test/file",
]


class Links(Spider):
    name = "links"

    def parse(self, response: Response) -> Iterator[Any]:
        yield from response.follow_all(css="a")


async def test_unfetchable_links_are_skipped_and_counted_not_errors() -> None:
    hits: list[str] = []

    async def handler(request: web.Request) -> web.Response:
        hits.append(request.raw_path)
        links = "".join(f'<a href="{href}">x</a>' for href in SKIPPED)
        body = links * 3 + '<a href="/b.html">b</a> <a href="http://bad host/">bad</a>'
        return web.Response(text=body if request.path == "/" else "leaf", content_type="text/html")

    app = web.Application()
    app.router.add_get("/{tail:.*}", handler)
    async with serve(app) as base:
        # one real error allowed: 15 skipped links must not count towards it
        engine = Engine(Links(start_urls=[f"{base}/"]), Settings(close_on_errors=2))
        stats = await engine.run()
    assert sorted(hits) == ["/", "/b.html"]
    assert stats.links_skipped == stats.to_dict()["links_skipped"] == 15
    assert dict(stats.errors) == {"InvalidURL": 1}  # only what a browser rejects too
    assert "close_on_errors" not in stats.finish_reason
