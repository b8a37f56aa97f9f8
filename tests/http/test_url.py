"""URL canonicalization, validation and fingerprints: the dedup key of every link."""

from __future__ import annotations

import string

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from pooledcrawl.http.url import (
    MAX_URL_LENGTH,
    InvalidURL,
    Resolver,
    UnsupportedScheme,
    canonical_or_raise,
    canonicalize_url,
    fingerprint,
    join_url,
    prepare_url,
)

# ---- strategies: URLs built from parts, so "equivalent forms" can be generated ----------

_host_label = st.text(string.ascii_lowercase + string.digits, min_size=1, max_size=8)
hosts = st.lists(_host_label, min_size=1, max_size=3).map(".".join)
# Path characters include ones that need escaping, escapes themselves, and non-ASCII.
_path_chars = string.ascii_letters + string.digits + "-._~!$&'()*+,;=:@%/ \"<>{}|^`é中"
# (No trailing space: surrounding whitespace is not part of a URL and is stripped.)
paths = st.text(_path_chars, max_size=20).map(lambda p: "/" + p.rstrip())
_query_word = st.text(string.ascii_letters + string.digits + "-_.~%/é ", max_size=6).map(str.rstrip)
queries = st.lists(st.tuples(_query_word, _query_word), max_size=4)
fragments = st.text(string.ascii_letters + string.digits + "/?#=", max_size=8)


def _query_string(pairs: list[tuple[str, str]]) -> str:
    return "&".join(f"{k}={v}" for k, v in pairs)


@st.composite
def http_urls(draw: st.DrawFn) -> tuple[str, str, str, str, list[tuple[str, str]]]:
    scheme = draw(st.sampled_from(["http", "https"]))
    host = draw(hosts)
    port = draw(st.sampled_from(["", ":8080", ":1"]))
    path = draw(paths)
    query = draw(queries)
    return scheme, host, port, path, query


def _assemble(scheme: str, host: str, port: str, path: str, query: str, fragment: str = "") -> str:
    url = f"{scheme}://{host}{port}{path}"
    if query:
        url += "?" + query
    if fragment:
        url += "#" + fragment
    return url


# ---- canonicalize_url properties ---------------------------------------------------------


@given(st.text(max_size=200))
@example("http://a.com/\ud800")  # lone surrogate: cannot be UTF-8 encoded
@example("http://[::1")
@example("http://a.com:99999/")
@example("////x")
@settings(max_examples=300)
def test_canonicalize_never_raises_on_arbitrary_text(text: str) -> None:
    assert isinstance(canonicalize_url(text), str)


@given(st.text(alphabet=st.characters(codec="utf-8"), max_size=120))
@settings(max_examples=300)
def test_canonicalize_is_idempotent_on_arbitrary_http_text(tail: str) -> None:
    url = canonicalize_url("http://" + tail)
    assert canonicalize_url(url) == url


@given(
    st.sampled_from(["http://", "HTTPS://", "http:", ""]),
    st.text(alphabet="/:?#@[]%.=&;+aA1 \t", max_size=30),
)
@example("http:", "////x")  # no host, and a path that looks like an authority
@example("", "////x")
@settings(max_examples=300)
def test_canonicalize_is_idempotent_on_url_syntax_soup(prefix: str, tail: str) -> None:
    url = canonicalize_url(prefix + tail)
    assert canonicalize_url(url) == url


@given(http_urls(), fragments)
@example(("http", "a.com", "", '/a"b', []), "")  # a character the slow path escapes
@example(("http", "a.com", "", "/a%2fb%7e", []), "")
@settings(max_examples=300)
def test_canonicalize_is_idempotent(parts: tuple, fragment: str) -> None:  # type: ignore[type-arg]
    scheme, host, port, path, query = parts
    url = canonicalize_url(_assemble(scheme, host, port, path, _query_string(query), fragment))
    assert canonicalize_url(url) == url
    assert "#" not in url


@given(http_urls(), fragments, st.randoms(use_true_random=False))
@example(("http", "a.com", "", '/a"b', []), "", None)
@example(("http", "a.com", "", "/x", []), "", None)
@settings(max_examples=300)
def test_equivalent_forms_share_one_canonical_url(parts: tuple, fragment: str, rnd) -> None:  # type: ignore[no-untyped-def, type-arg]
    scheme, host, port, path, query = parts
    plain = canonicalize_url(_assemble(scheme, host, port, path, _query_string(query)))
    default_port = ":80" if scheme == "http" else ":443"
    shuffled = list(query)
    if rnd is not None:
        rnd.shuffle(shuffled)
    variants = [
        _assemble(scheme.upper(), host, port, path, _query_string(query)),
        _assemble(scheme, host.upper(), port, path, _query_string(query)),
        _assemble(scheme, host, port, path, _query_string(query), fragment or "frag"),
        _assemble(scheme, host + ".", port, path, _query_string(query)),
    ]
    if not port:
        variants.append(_assemble(scheme, host, default_port, path, _query_string(query)))
    # Reordering the query only changes nothing when no key repeats with another value.
    if len({k for k, _ in query}) == len(query):
        variants.append(_assemble(scheme, host, port, path, _query_string(shuffled)))
    for variant in variants:
        assert canonicalize_url(variant) == plain, variant


@pytest.mark.parametrize(
    ("given_url", "expected"),
    [
        ("HTTP://Example.COM/a", "http://example.com/a"),
        ("http://example.com:80/a", "http://example.com/a"),
        ("https://example.com:443/a", "https://example.com/a"),
        ("https://example.com:8443/a", "https://example.com:8443/a"),
        ("http://example.com", "http://example.com/"),
        ("http://example.com/a#top", "http://example.com/a"),
        ("http://example.com/?b=2&a=1", "http://example.com/?a=1&b=2"),
        ("http://example.com/%7euser/%41", "http://example.com/~user/A"),
        ("http://example.com/a%2fb", "http://example.com/a%2Fb"),
        ("http://example.com/caf\u00e9", "http://example.com/caf%C3%A9"),
        ("http://[::1]:8080/x", "http://[::1]:8080/x"),
        ("http://example.com./x", "http://example.com/x"),
    ],
)
def test_canonical_forms(given_url: str, expected: str) -> None:
    assert canonicalize_url(given_url) == expected
    assert canonical_or_raise(given_url) == expected


@pytest.mark.parametrize(
    ("given_url", "sent"),
    [
        # what a browser requests for these (WHATWG URL Standard), not an error
        ("http://example.com/a b", "http://example.com/a%20b"),
        ("http://example.com/a\x00b", "http://example.com/a%00b"),
        ("http://example.com/a\nb", "http://example.com/ab"),
        ("http://example.com/a\x7fb", "http://example.com/a%7Fb"),
        ("http://example.com/\ud800", "http://example.com/%EF%BF%BD"),
        ("http:///path-only", "http://path-only/"),
        ("http://example.com/sp%41ce?%zz&a=%7e", "http://example.com/sp%41ce?%zz&a=%7e"),
    ],
    ids=repr,
)
def test_urls_browsers_accept_are_sent_as_browsers_send_them(given_url: str, sent: str) -> None:
    url, canonical = prepare_url(given_url)
    assert url == sent
    assert canonical == canonicalize_url(sent) == canonical_or_raise(given_url)


def test_request_url_and_canonical_form_differ() -> None:
    url, canonical = prepare_url("http://example.com/sp%41ce.html?b=%7e&a=%zz")
    assert url == "http://example.com/sp%41ce.html?b=%7e&a=%zz"  # as written
    assert canonical == "http://example.com/spAce.html?a=%25zz&b=~"  # for dedup only


@pytest.mark.parametrize("url", ["mailto:a@b.c", "tel:+1555", "javascript:void(0)", "data:,x"])
def test_unfetchable_schemes_are_their_own_kind_of_invalid(url: str) -> None:
    with pytest.raises(UnsupportedScheme):
        prepare_url(url)


def test_drop_tracking_removes_utm_parameters_only() -> None:
    url = "http://example.com/p?utm_source=x&id=3&UTM_medium=y"
    assert canonicalize_url(url, drop_tracking=True) == "http://example.com/p?id=3"
    assert "utm_source" in canonicalize_url(url)
    assert canonical_or_raise("http://example.com/p?utm_source=x", drop_tracking=True) == (
        "http://example.com/p"
    )


# ---- canonical_or_raise: what may not be fetched ------------------------------------------


@pytest.mark.parametrize(
    ("bad", "reason"),
    [
        ("example.com/page", "no scheme"),
        ("/relative/path", "no scheme"),
        ("javascript:alert(1)", "javascript"),
        ("JavaScript:void(0)", "javascript"),
        ("file:///etc/passwd", "file"),
        ("ftp://example.com/f.txt", "ftp"),
        ("mailto:someone@example.com", "mailto"),
        ("http://example.com:99999/", "port"),
        ("http://example.com:abc/", "port"),
        ("http://example.com:0/", "port 0"),
        ("http://exa mple.com/", "bad host"),
        ("http://[::1/", "bad host"),
        ("http://a.b.c.xn--pokxncvks/", "bad host"),
        ("http://example.com/" + "a" * 10_000, "longer"),
        ("http://example.com/?q=" + "a" * MAX_URL_LENGTH, "longer"),
    ],
    ids=lambda v: v[:40] if isinstance(v, str) else None,
)
def test_canonical_or_raise_rejects(bad: str, reason: str) -> None:
    with pytest.raises(InvalidURL, match="(?i)" + reason):
        canonical_or_raise(bad)


@given(st.text(max_size=200))
@settings(max_examples=300)
def test_canonical_or_raise_raises_only_invalid_url(text: str) -> None:
    try:
        result = canonical_or_raise(text)
    except InvalidURL:
        return
    assert result.startswith(("http://", "https://"))
    assert canonicalize_url(result) == result


# ---- fingerprints --------------------------------------------------------------------------


def test_fingerprint_is_stable_and_64_bit() -> None:
    fp = fingerprint("http://example.com/")
    assert fp == fingerprint("http://example.com/")
    assert 0 <= fp < 2**64
    # Stable across processes (persisted by disk/Redis frontiers): a fixed known value.
    assert fp == int.from_bytes(
        __import__("hashlib").blake2b(b"http://example.com/", digest_size=8).digest(), "big"
    )


def test_fingerprint_separates_method_and_body() -> None:
    url = "http://example.com/search"
    get = fingerprint(url)
    assert fingerprint(url, "GET", None) == get
    assert fingerprint(url, "POST") != get
    assert fingerprint(url, "POST", b"q=1") != fingerprint(url, "POST", b"q=2")
    assert fingerprint(url + "?a=1") != get


def test_equivalent_urls_share_a_fingerprint() -> None:
    a = canonicalize_url("HTTP://Example.com:80/x?b=1&a=2#frag")
    b = canonicalize_url("http://example.com/x?a=2&b=1")
    assert fingerprint(a) == fingerprint(b)


# ---- join_url -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("href", "expected"),
    [
        ("c.html", "http://h.test:8080/a/c.html"),
        ("../c.html", "http://h.test:8080/c.html"),
        ("/root.html", "http://h.test:8080/root.html"),
        ("//other.test/x", "http://other.test/x"),
        ("https://abs.test/y", "https://abs.test/y"),
        ("?page=2", "http://h.test:8080/a/b.html?page=2"),
        ("  /spaced.html\n", "http://h.test:8080/spaced.html"),
        ("  c.html ", "http://h.test:8080/a/c.html"),
        ("/trailing.html\n", "http://h.test:8080/trailing.html"),
        ("https://abs.test/z \t", "https://abs.test/z"),
    ],
)
def test_join_url(href: str, expected: str) -> None:
    base = "http://h.test:8080/a/b.html"
    assert Resolver(base).join(href) == expected  # the fast paths, where they apply
    assert join_url(base, href) == expected
