"""``pooledcrawl parse URL --spider FILE``: run one callback on one page."""

from __future__ import annotations

import argparse
import logging
import sys
import traceback
from collections.abc import Callable
from typing import Any

import orjson

from pooledcrawl.cli.crawl import parse_pairs
from pooledcrawl.cli.pages import PageFetcher, add_fetch_options, check_url, page_settings
from pooledcrawl.engine.callbacks import iterate_callback
from pooledcrawl.errors import UsageError
from pooledcrawl.http.request import Request
from pooledcrawl.http.response import Response
from pooledcrawl.items.base import is_item, item_to_dict, json_default
from pooledcrawl.spider import load_spider_class

__all__ = ["add_parser", "describe", "run"]

log = logging.getLogger("pooledcrawl")


def add_parser(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "parse",
        help="run one spider callback on one page; print the items and requests it yields",
        description="Fetch URL as a crawl of the spider would (its settings and profile), "
        "run one callback on the response and print what it yields, one JSON object "
        'a line: {"item": {...}} or {"request": {...}}.',
    )
    parser.add_argument("url", help="an http(s) URL")
    parser.add_argument(
        "--spider",
        required=True,
        metavar="TARGET",
        help="path/to/file.py, file.py:ClassName or package.module:ClassName",
    )
    parser.add_argument(
        "-c", "--callback", default="parse", metavar="NAME", help="method name (default parse)"
    )
    parser.add_argument(
        "-a",
        dest="spider_args",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="spider argument (repeatable)",
    )
    add_fetch_options(parser)
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    url = check_url(args.url, "parse")
    spider_cls = load_spider_class(args.spider)
    try:
        spider = spider_cls(**parse_pairs(args.spider_args, "-a"))
    except TypeError as exc:  # an -a the spider's __init__ does not take
        raise UsageError(f"{spider_cls.__name__}: bad spider arguments: {exc}") from None
    callback = getattr(spider, args.callback, None)
    if not callable(callback):
        raise UsageError(f"{spider_cls.__name__} has no method {args.callback!r}")
    settings, proxy, masker = page_settings(args, spider_cls)
    with PageFetcher(settings, proxy, masker, spider) as fetcher:
        response = fetcher.fetch(Request(url, callback, dont_filter=True))
        if response.status >= 400:
            log.warning("%s answered %d: the callback runs on it anyway", url, response.status)
        outputs, error = fetcher.run(_collect(callback, response))
    for output in outputs:
        sys.stdout.buffer.write(orjson.dumps(describe(output), default=json_default) + b"\n")
    sys.stdout.buffer.flush()
    if error is not None:
        # a debugging tool: the whole traceback is what the spider's author needs
        print("".join(traceback.format_exception(error)), end="", file=sys.stderr)
        return 1
    return 0


async def _collect(
    callback: Callable[..., Any], response: Response
) -> tuple[list[Any], BaseException | None]:
    """What the callback yields, up to an exception it raises (returned, not raised)."""
    outputs: list[Any] = []
    try:
        async for output in iterate_callback(callback, response):
            outputs.append(output)
    except Exception as exc:
        return outputs, exc
    return outputs, None


def describe(output: Any) -> dict[str, Any]:
    """One line of output: an item, a request (with its callback's name), or
    something a crawl would count as an UnsupportedOutput error."""
    if isinstance(output, Request):
        # no callback means the spider's parse, as in a crawl
        callback = getattr(output.callback, "__name__", None) or "parse"
        request: dict[str, Any] = {"url": output.url, "method": output.method, "callback": callback}
        if output.priority:
            request["priority"] = output.priority
        if output._meta:
            request["meta"] = output._meta
        if output._cb_kwargs:
            request["cb_kwargs"] = output._cb_kwargs
        return {"request": request}
    if is_item(output):
        return {"item": item_to_dict(output)}
    return {"unsupported": repr(output)}
