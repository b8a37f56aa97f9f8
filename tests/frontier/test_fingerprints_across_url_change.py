"""Dedup fingerprints survive the switch to browser-resolved URLs (#16).

The ``--jobdir`` (SQLite) and Redis frontiers persist a fingerprint of each URL's
canonical form. Requests now carry the URL a browser sends, and dedup keys on the
canonical form of that URL; for every URL that was canonical before, that form is
the URL itself, so a job started before the change resumes without refetching.
(The memory frontier keeps nothing across runs.)
"""

from __future__ import annotations

import re
import string
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, quote, urlencode, urlsplit, urlunsplit

from aiohttp import web
from hypothesis import given, settings
from hypothesis import strategies as st
from sites import serve

from pooledcrawl import Engine, Request, Response, Settings, Spider
from pooledcrawl.frontier.sqlite import SQLiteFrontier
from pooledcrawl.frontier.sqlite_db import url_fingerprint
from pooledcrawl.http.url import canonical_or_raise, canonicalize_url, fingerprint

# ---- the canonical form as it was computed before #16 (frozen here as the reference) ----


def _before(url: str) -> str:
    parts = urlsplit(url.strip())
    scheme = parts.scheme.lower()
    host = (parts.hostname or "").rstrip(".")
    netloc = f"[{host}]" if ":" in host else host
    if parts.port is not None and str(parts.port) != {"http": "80", "https": "443"}[scheme]:
        netloc = f"{netloc}:{parts.port}"
    path = quote(_unquote_unreserved(parts.path), safe="/%:@!$&'()*+,;=-._~") or "/"
    query = ""
    if parts.query:
        pairs = parse_qsl(parts.query, keep_blank_values=True)
        query = urlencode(sorted(pairs), quote_via=quote, safe="/:@!$'()*,;-._~")
    return urlunsplit((scheme, netloc, path, query, ""))


def _unquote_unreserved(path: str) -> str:
    def decode(match: re.Match[str]) -> str:
        char = chr(int(match[1], 16))
        unreserved = (char.isalnum() and char.isascii()) or char in "-._~"
        return char if unreserved else "%" + match[1].upper()

    return re.sub("%([0-9A-Fa-f]{2})", decode, path)


_label = st.text(string.ascii_lowercase + string.digits + "-", min_size=1, max_size=6)
# (A host ending in a number is an IPv4 address to browsers, and an xn-- label must
# be valid punycode: hosts like these were never canonical URLs a crawl could fetch.)
hosts = (
    st.lists(_label, min_size=1, max_size=3)
    .map(".".join)
    .map(lambda h: h + ".test")
    .filter(lambda h: "xn--" not in h)
)
_path_chars = string.ascii_letters + string.digits + "-._~!$&'()*+,;=:@%/ \"<>{}|^`é中"
_query_chars = string.ascii_letters + string.digits + "-_.~%/é +'=&"


@settings(max_examples=1500, deadline=None)
@given(
    st.sampled_from(["http", "https", "HTTP"]),
    hosts,
    st.sampled_from(["", ":8080", ":80", ":443"]),
    st.text(_path_chars, max_size=24),
    st.text(_query_chars, max_size=16),
)
def test_urls_canonical_before_keep_their_fingerprint(
    scheme: str, host: str, port: str, path: str, query: str
) -> None:
    url = f"{scheme}://{host}{port}/{path}" + (f"?{query}" if query else "")
    old = _before(url)
    if re.search(r"(^|/)\.\.?(/|$)", urlsplit(old).path):
        return  # dot segments: browsers resolve them, and so does the crawler now
    assert canonicalize_url(old) == old
    assert canonical_or_raise(old) == old
    assert fingerprint(canonicalize_url(old)) == fingerprint(old)  # Redis
    assert url_fingerprint(canonical_or_raise(old)) == url_fingerprint(old)  # --jobdir


# ---- a job started before the change, resumed after it ------------------------------------


class Hub(Spider):
    name = "hub"

    def parse(self, response: Response) -> Iterator[Any]:
        yield from response.follow_all(css="a")


async def test_a_jobdir_from_before_resumes_without_refetching(tmp_path: Path) -> None:
    hits: list[str] = []

    async def page(request: web.Request) -> web.Response:
        hits.append(request.raw_path)
        if request.path == "/hub.html":
            host = request.host
            links = [
                "/p/%7Euser",  # was crawled as /p/~user
                "p/../p/1.html",  # a dot segment the old code never resolved in links
                f"HTTP://{host}/p/a?b=2&a=1#x",  # another spelling of /p/a?a=1&b=2
                "/p/my page.html",  # dropped as InvalidURL before; crawled as my%20page
                "/new.html",
            ]
            body = "".join(f'<a href="{href}">x</a>' for href in links)
            return web.Response(text=body, content_type="text/html")
        return web.Response(text="<p>leaf</p>", content_type="text/html")

    app = web.Application()
    app.router.add_get("/{tail:.*}", page)
    async with serve(app) as base:
        jobdir = tmp_path / "job"
        # the earlier run: these pages fetched, recorded under the old canonical form
        earlier = [f"{base}/p/~user", f"{base}/p/1.html", f"{base}/p/a?a=1&b=2"]
        frontier = SQLiteFrontier(jobdir, Hub())
        await frontier.open()
        for url in earlier:
            assert frontier.push(Request(url), _before(url))
        while (request := frontier.pop(0.0)) is not None:
            frontier.ack(request)
        await frontier.close()

        spider = Hub(start_urls=[f"{base}/hub.html"])
        frontier = SQLiteFrontier(jobdir, spider)
        engine = Engine(spider, Settings(concurrency=2), frontier=frontier)
        assert frontier.stats is engine.stats  # bound by the engine (ext.Bound)
        stats = await engine.run()

    assert sorted(hits) == ["/hub.html", "/new.html", "/p/my%20page.html"]
    assert stats.duplicates_filtered == 3
