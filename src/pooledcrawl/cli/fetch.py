"""``pooledcrawl fetch URL``: print a page as the crawler gets it."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Iterable, Mapping
from typing import Any

from pooledcrawl.cli.pages import PageFetcher, add_fetch_options, check_url, page_settings
from pooledcrawl.http.request import Request

__all__ = ["add_parser", "render_headers", "run"]


def add_parser(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "fetch",
        help="print a page's body (or headers) as the crawler gets it",
        description="Fetch URL through the crawler's transport, with its headers, profile, "
        "proxy and HTTP version, and print the body after redirects (or, with "
        "--headers, the request and response headers).",
    )
    parser.add_argument("url", help="an http(s) URL")
    parser.add_argument(
        "--headers", action="store_true", help="print the headers sent and received, not the body"
    )
    add_fetch_options(parser)
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    url = check_url(args.url, "fetch")
    settings, proxy, masker = page_settings(args)
    with PageFetcher(settings, proxy, masker) as fetcher:
        response = fetcher.fetch(Request(url, dont_filter=True))
    if args.headers:
        lines = render_headers(
            fetcher.headers.items(), response.http_version, response.status, response.headers
        )
        print("\n".join(lines))
        if proxy is not None:
            print(f"(through proxy {proxy.masked})", file=sys.stderr)
    else:
        sys.stdout.buffer.write(response.body)
        sys.stdout.buffer.flush()
    if response.url != url:
        print(f"(redirected to {response.url})", file=sys.stderr)
    return 0


def render_headers(
    sent: Iterable[tuple[str, str]], version: str, status: int, received: Mapping[str, str]
) -> list[str]:
    """curl -v's convention: ``>`` what was sent, ``<`` what came back."""
    lines = [f"> {name}: {value}" for name, value in sent]
    lines.append(f"< {version} {status}")
    lines += [f"< {name}: {value}" for name, value in received.items()]
    return lines
