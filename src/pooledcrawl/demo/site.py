"""The bundled demo bookstore: about 1,000 books, pagination, categories and a few
broken links, generated in memory and served by aiohttp on 127.0.0.1."""

from __future__ import annotations

import random
from dataclasses import dataclass

from aiohttp import web

__all__ = ["Book", "build_app", "build_books"]

CATEGORIES = ["fiction", "history", "science", "poetry", "travel", "mystery", "art", "cooking"]
PER_PAGE = 20
_WORDS = [
    "amber",
    "night",
    "river",
    "stone",
    "garden",
    "silent",
    "crown",
    "iron",
    "letter",
    "winter",
    "harbor",
    "shadow",
]


@dataclass(frozen=True, slots=True)
class Book:
    id: int
    title: str
    price: str
    category: str


def build_books(count: int = 1000, seed: int = 7) -> list[Book]:
    rnd = random.Random(seed)
    return [
        Book(
            i,
            " ".join(rnd.choice(_WORDS).title() for _ in range(3)) + f" #{i}",
            f"£{rnd.randint(5, 60)}.{rnd.randint(0, 99):02d}",
            CATEGORIES[i % len(CATEGORIES)],
        )
        for i in range(count)
    ]


def _listing(books: list[Book], page: int, base: str, title: str) -> str:
    pages = max(1, -(-len(books) // PER_PAGE))
    chunk = books[(page - 1) * PER_PAGE : page * PER_PAGE]
    articles = "".join(
        f'<article class="product"><h3><a href="/book/{b.id}.html">{b.title}</a></h3>'
        f'<p class="price">{b.price}</p></article>'
        for b in chunk
    )
    nav = (
        f'<li class="next"><a href="{base}page-{page + 1}.html">next</a></li>'
        if page < pages
        else ""
    )
    cats = "".join(f'<li><a href="/category/{c}/page-1.html">{c}</a></li>' for c in CATEGORIES)
    return (
        f"<html><head><meta charset='utf-8'><title>{title}</title></head><body>"
        f"<h1>{title}</h1><ul class='categories'>{cats}</ul>{articles}"
        f"<ul class='pager'>{nav}</ul>"
        # two links that lead nowhere, as on any real site
        "<footer><a href='/missing.html'>about</a> <a href='/book/99999.html'>gone</a></footer>"
        "</body></html>"
    )


def build_app(books: list[Book] | None = None) -> web.Application:
    books = books if books is not None else build_books()
    by_id = {b.id: b for b in books}
    by_category = {c: [b for b in books if b.category == c] for c in CATEGORIES}

    async def index(request: web.Request) -> web.Response:
        return web.Response(
            text=_listing(books, 1, "/catalogue/", "All books"), content_type="text/html"
        )

    async def catalogue(request: web.Request) -> web.Response:
        page = int(request.match_info["page"])
        if page < 1 or (page - 1) * PER_PAGE >= len(books):
            raise web.HTTPNotFound()
        return web.Response(
            text=_listing(books, page, "/catalogue/", "All books"), content_type="text/html"
        )

    async def category(request: web.Request) -> web.Response:
        name = request.match_info["name"]
        page = int(request.match_info["page"])
        entries = by_category.get(name)
        if entries is None or page < 1 or (page - 1) * PER_PAGE >= len(entries):
            raise web.HTTPNotFound()
        return web.Response(
            text=_listing(entries, page, f"/category/{name}/", name.title()),
            content_type="text/html",
        )

    async def book(request: web.Request) -> web.Response:
        entry = by_id.get(int(request.match_info["id"]))
        if entry is None:
            raise web.HTTPNotFound()
        html = (
            f"<html><head><title>{entry.title}</title></head><body><h1>{entry.title}</h1>"
            f'<p class="price">{entry.price}</p><p class="category">{entry.category}</p>'
            f'<a href="/category/{entry.category}/page-1.html">more {entry.category}</a>'
            "</body></html>"
        )
        return web.Response(text=html, content_type="text/html")

    async def robots(request: web.Request) -> web.Response:
        return web.Response(text="User-agent: *\nAllow: /\n", content_type="text/plain")

    app = web.Application()
    app.router.add_get("/robots.txt", robots)
    app.router.add_get("/", index)
    app.router.add_get(r"/catalogue/page-{page:\d+}.html", catalogue)
    app.router.add_get(r"/category/{name}/page-{page:\d+}.html", category)
    app.router.add_get(r"/book/{id:\d+}.html", book)
    return app
