"""One page at a time, fetched as a crawl would fetch it: for ``fetch``, ``parse``
and ``shell``.

The settings are layered as for ``crawl`` (defaults < profile < spider <
command line) and the page comes through the engine's own transport, so the
headers, proxy and HTTP version are the crawler's, not a second client's. The
default headers are what the ``middlewares`` setting's ``process_default_headers``
hooks make of them, as the engine sets them (``engine.wiring.apply_middleware_wiring``).
"""

from __future__ import annotations

import argparse
import asyncio
import mimetypes
from collections.abc import Coroutine
from pathlib import Path
from typing import Any, TypeVar

from pooledcrawl.cli.crawl import parse_pairs
from pooledcrawl.cli.options import HTTP_FLAGS, add_http_options
from pooledcrawl.cli.profiles import add_proxy_options, job_profile
from pooledcrawl.errors import UsageError
from pooledcrawl.http.request import Request
from pooledcrawl.http.response import Response
from pooledcrawl.http.url import InvalidURL, canonical_or_raise
from pooledcrawl.middleware.chain import MiddlewareChain
from pooledcrawl.proxy.endpoint import Proxy
from pooledcrawl.proxy.masking import SecretMasker
from pooledcrawl.runner import build_settings
from pooledcrawl.settings import Settings
from pooledcrawl.signals import SignalBus
from pooledcrawl.spider import Spider
from pooledcrawl.stats import Stats
from pooledcrawl.transport.base import Transport, TransportError
from pooledcrawl.transport.factory import make_transport

T = TypeVar("T")

__all__ = [
    "PageFetcher",
    "add_fetch_options",
    "check_url",
    "local_page",
    "page_headers",
    "page_settings",
    "use_page_headers",
]


def add_fetch_options(parser: argparse.ArgumentParser) -> None:
    """What decides how a page is fetched: the options ``crawl`` has for it."""
    group = parser.add_argument_group("fetching")
    group.add_argument(
        "-s",
        dest="settings",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="setting (repeatable), e.g. -s user_agent=...; wins over profile and spider",
    )
    add_http_options(group)
    group.add_argument("--log-level", default="WARNING", help="default WARNING")
    add_proxy_options(parser)


def page_settings(
    args: argparse.Namespace, spider_cls: type[Spider] = Spider
) -> tuple[Settings, Proxy | None, SecretMasker]:
    """The settings, the proxy a crawl of ``spider_cls`` would use first, and a
    masker for its credentials (they must not reach an error line)."""
    profile_settings, proxies = job_profile(args, spider_cls)
    cli: dict[str, Any] = parse_pairs(args.settings, "-s")
    cli.update({k: getattr(args, k) for k in HTTP_FLAGS if getattr(args, k) is not None})
    settings = build_settings(spider_cls, cli, profile_settings)
    proxy = proxies.proxies[0] if proxies is not None and proxies.proxies else None
    return settings, proxy, SecretMasker(proxies.secrets if proxies is not None else ())


class _PageCrawler:
    """What a middleware's ``from_crawler`` may read when no engine runs: the
    settings, the spider, and a stats and signal bus of their own."""

    def __init__(self, settings: Settings, spider: Spider) -> None:
        self.settings = settings
        self.spider = spider
        self.stats = Stats()
        self.signals = SignalBus()


def page_headers(settings: Settings, spider: Spider | None = None) -> dict[str, str]:
    """The default headers a crawl of ``spider`` with ``settings`` sends: so
    ``{"UserAgent": None}`` or a replacement UserAgent middleware acts on a page
    command as it does on a crawl."""
    spider = spider if spider is not None else Spider()
    chain = MiddlewareChain.for_default_headers(_PageCrawler(settings, spider))
    return chain.default_headers(settings, spider)


def use_page_headers(transport: Transport, headers: dict[str, str]) -> Transport:
    """``transport``, sending ``headers`` by default (as the engine sets them)."""
    use = getattr(transport, "use_default_headers", None)
    if use is not None:
        use(headers)
    return transport


def check_url(url: str, command: str) -> str:
    try:
        return canonical_or_raise(url)
    except InvalidURL as exc:
        raise UsageError(f"{command}: {url!r}: {exc}") from None


def local_page(path: Path) -> Response:
    """A saved page as a Response (``shell page.html``): its type guessed from the
    file name, as a static server would."""
    try:
        body = path.read_bytes()
    except OSError as exc:
        raise UsageError(f"cannot read {path}: {exc.strerror}") from None
    url = path.resolve().as_uri()
    content_type = mimetypes.guess_type(path.name)[0] or "text/html"
    return Response(url, 200, {"Content-Type": content_type}, body, Request(url))


class PageFetcher:
    """Fetches pages one at a time through one transport (one long-lived session),
    on an event loop of its own, so a REPL can call it between prompts."""

    def __init__(
        self,
        settings: Settings,
        proxy: Proxy | None,
        masker: SecretMasker,
        spider: Spider | None = None,
    ) -> None:
        self.settings = settings
        self.proxy = proxy
        #: what every request sends by default (what a crawl's transport would)
        self.headers = page_headers(settings, spider)
        self._masker = masker
        self._loop = asyncio.new_event_loop()
        self._transport: Transport | None = None

    def fetch(self, request: Request) -> Response:
        """The final response (after redirects); a failure is a one-line UsageError."""
        return self._loop.run_until_complete(self._fetch(request))

    def run(self, coroutine: Coroutine[Any, Any, T]) -> T:
        """Run ``coroutine`` on this fetcher's loop (a spider's async callback)."""
        return self._loop.run_until_complete(coroutine)

    async def _fetch(self, request: Request) -> Response:
        if self._transport is None:
            self._transport = use_page_headers(make_transport(self.settings), self.headers)
        try:
            return await self._transport.fetch(request, self.proxy.url if self.proxy else None)
        except TransportError as exc:
            raise UsageError(self._masker.mask(f"{request.url}: {exc}")) from None

    def close(self) -> None:
        if self._transport is not None:
            self._loop.run_until_complete(self._transport.close())
            self._transport = None
        self._loop.close()

    def __enter__(self) -> PageFetcher:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
