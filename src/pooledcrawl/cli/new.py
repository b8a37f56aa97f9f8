"""``pooledcrawl new NAME DOMAIN``: write a spider file to start from."""

from __future__ import annotations

import argparse
import re
from pathlib import Path
from string import Template
from typing import Any
from urllib.parse import urlsplit

from pooledcrawl.cli.pages import check_url
from pooledcrawl.errors import UsageError

__all__ = ["TEMPLATES", "add_parser", "render", "run"]

TEMPLATES = ("basic", "crawl", "sitemap")
_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*\Z")
_TEMPLATE_DIR = Path(__file__).parent / "templates"


def add_parser(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "new",
        help="write a spider file to start from",
        description="Write NAME.py: a spider for DOMAIN (example.com, or a start URL such "
        "as http://127.0.0.1:8000/docs/) from a template. An existing file is never "
        "overwritten.",
    )
    parser.add_argument("name", help="the spider's name, also its file name (a Python name)")
    parser.add_argument("domain", help="the site: a domain, or the URL to start from")
    parser.add_argument(
        "-t",
        "--template",
        choices=TEMPLATES,
        default="basic",
        help="basic: follow every link (default); crawl: CrawlSpider rules; "
        "sitemap: SitemapSpider from robots.txt",
    )
    parser.add_argument(
        "--dir", default=".", metavar="DIR", help="where to write NAME.py (default: here)"
    )
    parser.set_defaults(run=run)


def render(name: str, domain: str, template: str) -> str:
    """The spider file's text. ``domain`` may be a bare host (``https://`` is
    assumed) or a URL, whose scheme, port and path the start URL keeps."""
    if not _NAME.match(name):
        raise UsageError(f"new: spider name {name!r} must be a Python name (letters, digits, _)")
    if template not in TEMPLATES:
        raise UsageError(f"new: unknown template {template!r}: use {', '.join(TEMPLATES)}")
    url = domain if "://" in domain else f"https://{domain.strip('/')}/"
    url = check_url(url, "new")
    parts = urlsplit(url)
    parts_name = [p for p in name.split("_") if p]
    classname = "".join(p[:1].upper() + p[1:] for p in parts_name) or "My"
    if not classname.lower().endswith("spider"):
        classname += "Spider"
    text = (_TEMPLATE_DIR / f"{template}.py.tmpl").read_text(encoding="utf-8")
    return Template(text).substitute(
        name=name,
        classname=classname,
        host=parts.hostname or "",
        url=url,
        origin=f"{parts.scheme}://{parts.netloc}",
    )


def run(args: argparse.Namespace) -> int:
    text = render(args.name, args.domain, args.template)
    folder = Path(args.dir)
    if not folder.is_dir():
        raise UsageError(f"new: {folder} is not a directory")
    path = folder / f"{args.name}.py"
    try:
        with path.open("x", encoding="utf-8") as file:  # "x": never overwrite
            file.write(text)
    except FileExistsError:
        raise UsageError(f"new: {path} already exists; not overwritten") from None
    except OSError as exc:
        raise UsageError(f"new: cannot write {path}: {exc.strerror}") from None
    print(f"wrote {path} ({args.template} template); run it: pooledcrawl crawl {path}")
    return 0
