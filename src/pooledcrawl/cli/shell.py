"""``pooledcrawl shell URL|FILE``: a Python shell around one fetched (or saved) page."""

from __future__ import annotations

import argparse
import code
import html
import importlib
import os
import re
import sys
import tempfile
import webbrowser
from pathlib import Path
from typing import Any

from pooledcrawl.cli.pages import (
    PageFetcher,
    add_fetch_options,
    check_url,
    local_page,
    page_settings,
)
from pooledcrawl.errors import UsageError
from pooledcrawl.http.request import Request
from pooledcrawl.http.response import Response

__all__ = ["Shell", "add_parser", "run"]

_HEAD = re.compile(rb"<head(?:\s[^>]*)?>", re.I)

BANNER = """pooledcrawl shell: {where}
  response     the page ({status}, {url})
  request      the Request that fetched it
  fetch(url)   fetch another page (or open a saved one): sets response and request
  view(resp)   write the page to a temporary file (opened in a browser when there is one)
  settings     the settings pages are fetched with"""


def add_parser(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "shell",
        help="open a Python shell with a fetched page as `response`",
        description="Fetch URL as the crawler would (or read a saved FILE.html) and open "
        "IPython, if installed, else the standard Python REPL, with `response`, "
        "`request`, `fetch(url)` and `view(response)`.",
    )
    parser.add_argument("target", metavar="URL|FILE", help="an http(s) URL or a saved page")
    parser.add_argument(
        "--shell",
        dest="repl",
        choices=("auto", "ipython", "python"),
        default="auto",
        help="auto (default): IPython when installed, else the standard REPL",
    )
    add_fetch_options(parser)
    parser.set_defaults(run=run)


class Shell:
    """The shell's namespace and the helpers in it, over one PageFetcher."""

    def __init__(self, fetcher: PageFetcher) -> None:
        self._fetcher = fetcher
        self.namespace: dict[str, Any] = {
            "fetch": self.fetch,
            "view": self.view,
            "settings": fetcher.settings,
            "Request": Request,
            "response": None,
            "request": None,
        }

    def load(self, target: str) -> Response:
        """A URL is fetched; anything else must be a saved page."""
        if target.startswith(("http://", "https://")):
            url = check_url(target, "shell")
            response = self._fetcher.fetch(Request(url, dont_filter=True))
        else:
            path = Path(target.removeprefix("file://")).expanduser()
            if not path.is_file():
                raise UsageError(f"shell: {target!r} is neither an http(s) URL nor a file")
            response = local_page(path)
        self.namespace.update(response=response, request=response.request)
        return response

    def fetch(self, target: str | Request) -> Response | None:
        """Fetch a URL or Request (or open a saved page) and make it ``response``."""
        try:
            if isinstance(target, Request):
                response = self._fetcher.fetch(target)
                self.namespace.update(response=response, request=target)
                return response
            return self.load(target)
        except UsageError as exc:
            print(f"fetch failed: {exc}", file=sys.stderr)
            return None

    def view(self, response: Response | None = None) -> str:
        """Write the page to a temporary .html file and return its path; a browser
        opens it only where one can show it (a desktop session)."""
        response = response if response is not None else self.namespace["response"]
        if response is None:
            raise ValueError("no response to view")
        body = response.body
        if response.base_url == response.url:
            # no <base> of its own: the copy loads the page's images and styles from
            # the site (after <head>, so a doctype before it keeps standards mode)
            tag = f'<base href="{html.escape(response.url)}">'.encode()
            head = _HEAD.search(body)
            cut = head.end() if head is not None else 0
            body = body[:cut] + tag + body[cut:]
        fd, path = tempfile.mkstemp(prefix="pooledcrawl-", suffix=".html")
        with os.fdopen(fd, "wb") as file:
            file.write(body)
        print(path)
        if _has_display():
            webbrowser.open(Path(path).as_uri())
        return path

    def banner(self, where: str) -> str:
        response = self.namespace["response"]
        return BANNER.format(where=where, status=response.status, url=response.url)

    def interact(self, repl: str, where: str) -> None:
        banner = self.banner(where)
        if repl in ("auto", "ipython"):
            try:
                ipython = importlib.import_module("IPython")
            except ImportError:
                if repl == "ipython":
                    raise UsageError("--shell ipython: IPython is not installed") from None
            else:
                print(banner)
                ipython.start_ipython(argv=[], user_ns=self.namespace)
                return
        if sys.stdin.isatty():
            try:
                import readline
                import rlcompleter

                readline.set_completer(rlcompleter.Completer(self.namespace).complete)
                readline.parse_and_bind("tab: complete")
            except ImportError:  # no readline on this platform
                pass
        code.interact(banner=banner, local=self.namespace, exitmsg="")


def _has_display() -> bool:
    if sys.platform.startswith("linux") or "bsd" in sys.platform:
        return bool(os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY"))
    return True  # macOS and Windows always have one


def run(args: argparse.Namespace) -> int:
    settings, proxy, masker = page_settings(args)
    with PageFetcher(settings, proxy, masker) as fetcher:
        shell = Shell(fetcher)
        response = shell.load(args.target)
        via = f" via {proxy.masked}" if proxy is not None else ""
        shell.interact(args.repl, f"{response.url}{via}")
    return 0
