"""The string fast paths answer exactly as the URL Standard (ada) and the full
canonicalization would: for absolute URLs the engine schedules, and for the plain
root- and path-relative links ``Response.follow`` resolves."""

from __future__ import annotations

import ada_url
from hypothesis import example, given, settings
from hypothesis import strategies as st

from pooledcrawl.http.url import Resolver, _canonical, _fast_canonical, prepare_url

PIECES = st.sampled_from(
    [
        "http://", "https://", "HTTP://", "ftp://", "h.test", "H.test", "h.test.", "127.0.0.1",
        "127.1", "0x7f.1", "xn--pokxncvks", "xn--fa-hia", ":80", ":443", ":8080", ":0", ":080",
        ":99999", ":", "/", "//", "p", "/p/1.html", "?", "#", "%7E", "%2f", "%2e", "@", "[",
        "]", " ", "\t", "\x00", "é", "~", "-", ".", "..", "/.", "/..", "!$&'()*+,;=", "\\",
        "a=1&b=2", "'", "|", "{",
    ]
)  # fmt: skip


def _ada(href: str, base: str | None = None) -> str | None:
    try:
        return str(ada_url.join_url(base, href) if base else ada_url.normalize_url(href))
    except ValueError:
        return None


@settings(max_examples=3000, deadline=None)
@given(st.lists(PIECES, min_size=1, max_size=8).map("".join))
@example("http://h.test/p/1.html")
@example("https://h.test:443/")
@example("http://h.test:8080/")
@example("http://H.test/")
@example("http://h.test/a/./b")
@example("http://127.1/")
def test_absolute_fast_path_agrees_with_the_standard(url: str) -> None:
    if not _fast_canonical(url):
        return
    assert _ada(url) == url  # the request URL a browser sends is the URL itself
    # and so is the canonical form (the "?" walks past the fast check inside)
    assert _canonical(url + "?", drop_tracking=False) == url
    assert prepare_url(url) == (url, url)


def test_absolute_fast_path_takes_the_common_case() -> None:
    assert _fast_canonical("http://127.0.0.1:8080/p/12.html")
    assert _fast_canonical("https://books.example.com/catalogue/a-b_c~d/index.html")
    assert not _fast_canonical("https://example.com:443/")
    assert not _fast_canonical("http://Example.com/")
    assert not _fast_canonical("http://example.com")
    assert not _fast_canonical("http://example.com/a?b=1")
    assert not _fast_canonical("http://example.com/a/../b")


BASES = st.sampled_from(
    [
        "http://h.test/dir/page.html",
        "http://h.test:8080/dir/sub/?q=1#frag",
        "https://h.test/",
        "http://127.0.0.1:8080/a/b",
        "http://H.TEST:80/x/y",  # not plain: everything goes to ada
        "http://h.test/dir/page.html?next=/a/b#c/d",
    ]
)
HREF_PIECES = st.sampled_from(
    [
        "/", "//", "p", "page-2.html", "a/", ".", "..", "./", "../", "/.", "?", "?a=1&b=2",
        "#", "#top", "%20", "%2e", "%2E%2e", "%zz", " ", "\t", "\n", "é", "'", '"', "<", "\\",
        ":", "mailto:", "http:", "x:y", "@", "~", "!$&()*+,;=", "|", "^", "`", "{",
    ]
)  # fmt: skip


@settings(max_examples=4000, deadline=None)
@given(BASES, st.lists(HREF_PIECES, min_size=1, max_size=6).map("".join))
@example("http://h.test/dir/page.html", "/p/1.html")
@example("http://h.test/dir/page.html", "p.html?x=1")
@example("http://h.test/dir/page.html", "p.html?x='")
@example("http://h.test/dir/page.html", "/a/./b")
@example("http://h.test/dir/page.html?next=/a/b#c/d", "x")
def test_relative_fast_paths_agree_with_the_standard(base: str, href: str) -> None:
    expected = _ada(href, base)
    joined = Resolver(base).join(href)
    if expected is None:
        assert joined == href.strip()  # left for the engine to reject
    else:
        assert joined == expected
