"""Local sites for the spider toolkit's tests and examples: a small documentation
site for rules, a sitemap tree (index, gzipped children, robots.txt) and a login
form with a CSRF token and a session cookie. Each records what it was asked for.

Run one by hand to try an example against it::

    python tests/spiders/toolkit_sites.py crawl|sitemap|login
"""

from __future__ import annotations

import asyncio
import gzip
import html
import secrets
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from aiohttp import web

__all__ = [
    "CRAWL_ALLOWED",
    "CRAWL_SITE",
    "AccessLog",
    "LoginState",
    "crawl_app",
    "logged_app",
    "login_app",
    "sitemap_app",
    "sitemap_files",
]


@dataclass
class AccessLog:
    """(method, path with query, status) of every request, in arrival order."""

    entries: list[tuple[str, str, int]] = field(default_factory=list)

    def paths(self, method: str = "GET", status: int | None = None) -> list[str]:
        return [p for m, p, s in self.entries if m == method and (status is None or s == status)]


def logged_app(log: AccessLog) -> web.Application:
    """An application that records each response in ``log`` as it is sent: the
    status is read then, since a static file's is only decided at that point."""

    async def record(request: web.Request, response: web.StreamResponse) -> None:
        log.entries.append((request.method, request.path_qs, response.status))

    app = web.Application()
    app.on_response_prepare.append(record)
    return app


def _page(title: str, links: list[str]) -> str:
    anchors = "".join(
        f'<li><a href="{html.escape(h)}">link {i}</a></li>' for i, h in enumerate(links)
    )
    return (
        f"<!DOCTYPE html><html><head><title>{html.escape(title)}</title></head>"
        f"<body><h1>{html.escape(title)}</h1><ul>{anchors}</ul></body></html>"
    )


# ---- a site for CrawlSpider rules ---------------------------------------------------------

#: path -> links on it. The rules of examples/crawl_spider.py follow /docs/ but not
#: /docs/print/, parse /blog/N.html without following links from posts, and never
#: touch /private/ (matched by no rule) nor the PDF (an ignored extension).
CRAWL_SITE: dict[str, list[str]] = {
    "/": [
        "/docs/index.html",
        "/blog/1.html",
        "/blog/2.html",
        "/private/a.html",
        "/docs/manual.pdf",
        "mailto:someone@example.invalid",
        "http://elsewhere.invalid/docs/x.html",
    ],
    "/docs/index.html": ["ch1.html", "ch2.html", "print/ch1.html", "/", "../private/b.html"],
    "/docs/ch1.html": ["sec/1.1.html", "ch2.html#part-2", "index.html", "ch1.html"],
    "/docs/ch2.html": ["/docs/ch1.html", "/docs/print/ch2.html"],
    "/docs/sec/1.1.html": ["../ch1.html", "/private/c.html", "../../blog/2.html"],
    "/docs/print/ch1.html": ["/docs/print/ch2.html"],
    "/docs/print/ch2.html": [],
    "/blog/1.html": ["/blog/3.html", "/docs/ch2.html"],
    "/blog/2.html": ["/blog/1.html"],
    "/blog/3.html": [],
    "/private/a.html": [],
    "/private/b.html": [],
    "/private/c.html": [],
}
#: what a crawl with those rules must fetch, each exactly once
CRAWL_ALLOWED = {
    "/",
    "/docs/index.html",
    "/docs/ch1.html",
    "/docs/ch2.html",
    "/docs/sec/1.1.html",
    "/blog/1.html",
    "/blog/2.html",
}


def crawl_app(log: AccessLog) -> web.Application:
    async def page(request: web.Request) -> web.Response:
        if request.path == "/docs/manual.pdf":
            return web.Response(body=b"%PDF-1.4 not really", content_type="application/pdf")
        links = CRAWL_SITE.get(request.path)
        if links is None:
            raise web.HTTPNotFound()
        return web.Response(text=_page(request.path, links), content_type="text/html")

    app = logged_app(log)
    app.router.add_get("/{tail:.*}", page)
    return app


# ---- a sitemap tree -----------------------------------------------------------------------

SITEMAP_NS = "http://www.sitemaps.org/schemas/sitemap/0.9"


def _urlset(base: str, paths: list[str], lastmod: str | None = None) -> bytes:
    rows = "".join(
        f"<url><loc>{base}{p}</loc>"
        + (f"<lastmod>{lastmod}</lastmod>" if lastmod else "")
        + "<changefreq>daily</changefreq></url>\n"
        for p in paths
    )
    return (
        f'<?xml version="1.0" encoding="UTF-8"?>\n<urlset xmlns="{SITEMAP_NS}">\n{rows}</urlset>\n'
    ).encode()


def _index(base: str, children: list[tuple[str, str]]) -> bytes:
    rows = "".join(
        f"<sitemap><loc>{base}{p}</loc><lastmod>{m}</lastmod></sitemap>\n" for p, m in children
    )
    return (
        f'<?xml version="1.0" encoding="UTF-8"?>\n'
        f'<sitemapindex xmlns="{SITEMAP_NS}">\n{rows}</sitemapindex>\n'
    ).encode()


def sitemap_files(base: str, products: int = 1200, posts: int = 150) -> dict[str, bytes]:
    """path -> body of a sitemap tree under ``base``: robots.txt names an index whose
    children are two gzipped product sitemaps (``.xml.gz`` files), a plain blog
    sitemap, and an old archive sitemap (lastmod 2019). Every listed page exists."""
    half = products // 2
    product_paths = [f"/product/{i}.html" for i in range(products)]
    post_paths = [f"/blog/{i}.html" for i in range(posts)]
    archive_paths = [f"/archive/{i}.html" for i in range(20)]
    files = {
        "/robots.txt": b"User-agent: *\nDisallow: /admin/\n\nSitemap: /sitemap_index.xml\n",
        "/sitemap_index.xml": _index(
            base,
            [
                ("/sitemaps/products-1.xml.gz", "2026-11-01"),
                ("/sitemaps/products-2.xml.gz", "2026-11-02T10:00:00+00:00"),
                ("/sitemaps/blog.xml", "2026-10-30"),
                ("/sitemaps/archive.xml", "2019-01-01"),
            ],
        ),
        "/sitemaps/products-1.xml.gz": gzip.compress(
            _urlset(base, product_paths[:half], "2026-11-01")
        ),
        "/sitemaps/products-2.xml.gz": gzip.compress(
            _urlset(base, product_paths[half:], "2026-11-02")
        ),
        "/sitemaps/blog.xml": _urlset(base, post_paths, "2026-10-30"),
        "/sitemaps/archive.xml": _urlset(base, archive_paths, "2019-01-01"),
    }
    for path in product_paths + post_paths + archive_paths:
        files[path] = _page(path, []).encode()
    return files


def sitemap_app(log: AccessLog, files_for: Callable[[str], dict[str, bytes]]) -> web.Application:
    """Serves ``files_for(base)``; gzip files as ``application/gzip`` (their bytes),
    and ``Accept-Encoding: gzip`` honoured on the rest (the client decodes those)."""
    cache: dict[str, dict[str, bytes]] = {}

    async def handle(request: web.Request) -> web.StreamResponse:
        base = f"{request.scheme}://{request.host}"
        files = cache.setdefault(base, files_for(base))
        body = files.get(request.path)
        if body is None:
            raise web.HTTPNotFound()
        if request.path.endswith(".gz"):
            return web.Response(body=body, content_type="application/gzip")
        if request.path.endswith(".txt"):
            return web.Response(body=body, content_type="text/plain")
        kind = "application/xml" if request.path.endswith(".xml") else "text/html"
        response = web.Response(body=body, content_type=kind)
        response.enable_compression()
        return response

    app = logged_app(log)
    app.router.add_get("/{tail:.*}", handle)
    return app


# ---- a login form -------------------------------------------------------------------------

USERNAME, PASSWORD = "alice", "wonderland"


@dataclass
class LoginState:
    #: session id -> CSRF token handed out with the form
    tokens: dict[str, str] = field(default_factory=dict)
    #: session ids that logged in
    logged_in: set[str] = field(default_factory=set)
    #: why login attempts were refused, in order
    refusals: list[str] = field(default_factory=list)


def login_app(log: AccessLog, state: LoginState) -> web.Application:
    """``/login`` sets a session cookie and serves a form with a per-session CSRF
    token; a POST needs that cookie, that token and the right password, then
    redirects to ``/members``; ``/members`` pages need a logged-in session."""

    async def login_form(request: web.Request) -> web.Response:
        sid = request.cookies.get("sid")
        if sid is None or sid not in state.tokens:
            sid = secrets.token_hex(8)
        token = state.tokens.setdefault(sid, secrets.token_hex(16))
        body = (
            "<!DOCTYPE html><html><head><title>Sign in</title></head><body>"
            '<form id="search" action="/search"><input name="q"></form>'
            '<form id="login" action="/login" method="post">'
            f'<input type="hidden" name="csrf_token" value="{token}">'
            '<input name="username"><input type="password" name="password">'
            '<input type="checkbox" name="remember" value="1" checked>'
            '<button type="submit" name="action" value="login">Sign in</button>'
            "</form></body></html>"
        )
        response = web.Response(text=body, content_type="text/html")
        response.set_cookie("sid", sid, httponly=True, path="/")
        return response

    async def login_post(request: web.Request) -> web.Response:
        form = await request.post()
        sid = request.cookies.get("sid")
        if sid is None or sid not in state.tokens:
            state.refusals.append("no session cookie")
            raise web.HTTPForbidden(text="no session")
        if form.get("csrf_token") != state.tokens[sid]:
            state.refusals.append("bad csrf token")
            raise web.HTTPForbidden(text="bad token")
        if form.get("username") != USERNAME or form.get("password") != PASSWORD:
            state.refusals.append("bad credentials")
            raise web.HTTPForbidden(text="bad credentials")
        if form.get("action") != "login" or form.get("remember") != "1":
            state.refusals.append("form fields missing")
            raise web.HTTPBadRequest(text="form fields missing")
        state.logged_in.add(sid)
        raise web.HTTPFound("/members")

    async def members(request: web.Request) -> web.Response:
        sid = request.cookies.get("sid")
        if sid not in state.logged_in:
            raise web.HTTPFound("/login")
        page = int(request.query.get("page", "1"))
        rows = "".join(f'<li class="secret">secret {page}-{i}</li>' for i in range(5))
        more = f'<a class="next" href="/members?page={page + 1}">next</a>' if page < 3 else ""
        body = (
            f"<html><head><title>Members</title></head><body><p>Welcome, {USERNAME}</p>"
            f"<ul>{rows}</ul>{more}</body></html>"
        )
        return web.Response(text=body, content_type="text/html")

    app = logged_app(log)
    app.router.add_get("/login", login_form)
    app.router.add_post("/login", login_post)
    app.router.add_get("/members", members)
    return app


async def _serve_forever(name: str) -> None:
    from sites import serve  # tests/sites.py

    log = AccessLog()
    apps = {
        "crawl": lambda: crawl_app(log),
        "sitemap": lambda: sitemap_app(log, sitemap_files),
        "login": lambda: login_app(log, LoginState()),
    }
    async with serve(apps[name]()) as base:
        print(base, flush=True)
        await asyncio.Event().wait()


if __name__ == "__main__":
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
    asyncio.run(_serve_forever(sys.argv[1] if len(sys.argv) > 1 else "crawl"))
