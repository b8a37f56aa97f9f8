"""The canonical-URL fast path answers exactly as the full canonicalization would."""

from __future__ import annotations

from hypothesis import example, given, settings
from hypothesis import strategies as st

from pooledcrawl.http.url import InvalidURL, _fast_canonical, canonicalize_url, validate_url

PIECES = st.sampled_from(
    [
        "http://", "https://", "HTTP://", "ftp://", "h.test", "H.test", "h.test.", "127.0.0.1",
        ":80", ":443", ":8080", ":0", ":080", ":99999", ":", "/", "//", "p", "/p/1.html",
        "?", "#", "%7E", "%2f", "@", "[", "]", " ", "\t", "\x00", "é", "~", "-", ".", "..",
        "!$&'()*+,;=", "\\", "a=1&b=2",
    ]
)  # fmt: skip


@settings(max_examples=2000, deadline=None)
@given(st.lists(PIECES, min_size=1, max_size=8).map("".join))
@example("http://h.test/p/1.html")
@example("https://h.test:443/")
@example("http://h.test:8080/")
@example("http://H.test/")
def test_fast_path_agrees_with_canonicalize(url: str) -> None:
    if not _fast_canonical(url):
        return
    try:
        slow = canonicalize_url(validate_url(url))
    except InvalidURL:
        raise AssertionError(f"fast path accepted an invalid URL {url!r}") from None
    assert slow == url


def test_fast_path_takes_the_common_case() -> None:
    assert _fast_canonical("http://127.0.0.1:8080/p/12.html")
    assert _fast_canonical("https://books.example.com/catalogue/a-b_c~d/index.html")
    assert not _fast_canonical("https://example.com:443/")
    assert not _fast_canonical("http://Example.com/")
    assert not _fast_canonical("http://example.com")
    assert not _fast_canonical("http://example.com/a?b=1")
