"""Rule-driven crawling: Scrapy's ``CrawlSpider`` and ``Rule``, with their names
and meaning, on this engine's callbacks.

Requests built from rules name the spider's own methods as callback and errback
(``_rule_callback`` / ``_rule_errback``) and carry the rule's index in
``meta["rule"]``, so a persistent frontier (``--jobdir``, Redis) can store them
like any other request.
"""

from __future__ import annotations

import copy
import inspect
from collections.abc import AsyncIterator, Callable, Iterable, Iterator, Sequence
from typing import Any, ClassVar

from pooledcrawl.engine.callbacks import outputs_of
from pooledcrawl.http.request import Request
from pooledcrawl.http.response import Response
from pooledcrawl.spider import Spider
from pooledcrawl.spiders.links import Link, LinkExtractor

__all__ = ["CrawlSpider", "Rule"]

CallbackRef = str | Callable[..., Any] | None


def _identity(value: Any, *args: Any) -> Any:
    return value


class Rule:
    """How a :class:`CrawlSpider` treats the links one :class:`LinkExtractor` finds.

    ``callback`` (a method or its name) parses each page the rule reaches; its
    output goes through ``process_results``. ``follow`` says whether the pages
    reached are searched for more links with every rule; it defaults to True when
    there is no callback, as in Scrapy. ``process_links(links)`` may filter or
    rewrite the links, ``process_request(request, response)`` each request
    (returning None drops it), and ``errback`` receives a failed request's Failure.
    """

    def __init__(
        self,
        link_extractor: LinkExtractor | None = None,
        callback: CallbackRef = None,
        cb_kwargs: dict[str, Any] | None = None,
        follow: bool | None = None,
        process_links: CallbackRef = None,
        process_request: CallbackRef = None,
        errback: CallbackRef = None,
    ) -> None:
        self.link_extractor = link_extractor if link_extractor is not None else LinkExtractor()
        self.callback = callback
        self.errback = errback
        self.cb_kwargs = cb_kwargs or {}
        # names (str) until _compile resolves them against the spider
        self.process_links: Any = process_links or _identity
        self.process_request: Any = process_request or _identity
        self.follow = follow if follow is not None else not callback

    def _compile(self, spider: Spider) -> None:
        """Resolve names given as strings to the spider's methods."""
        self.callback = _resolve(spider, self.callback)
        self.errback = _resolve(spider, self.errback)
        self.process_links = _resolve(spider, self.process_links)
        self.process_request = _resolve(spider, self.process_request)

    def __repr__(self) -> str:
        callback = getattr(self.callback, "__name__", self.callback)
        return f"Rule({self.link_extractor!r}, callback={callback!r}, follow={self.follow})"


def _resolve(spider: Spider, ref: Any) -> Any:
    if not isinstance(ref, str):
        return ref
    method = getattr(spider, ref, None)
    if not callable(method):
        raise AttributeError(f"{type(spider).__name__} has no method {ref!r} named in a Rule")
    return method


class CrawlSpider(Spider):
    """A spider that follows links by :class:`Rule`\\ s.

    The start URLs' responses go to ``parse`` (don't override it, as in Scrapy):
    it calls ``parse_start_url`` and follows the rules. Each page a rule reaches
    goes to that rule's callback and, if the rule follows, through the rules again.
    On one page, a link that several rules match is requested once, by the first.
    """

    rules: ClassVar[Sequence[Rule]] = ()
    #: set False to stop following links from any page (Scrapy's
    #: CRAWLSPIDER_FOLLOW_LINKS setting)
    follow_links: ClassVar[bool] = True

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._compile_rules()

    def _compile_rules(self) -> None:
        # per-instance copies: a rule resolves method names against this spider
        self._rules: list[Rule] = []
        for rule in self.rules:
            compiled = copy.copy(rule)
            compiled._compile(self)
            self._rules.append(compiled)

    def parse(self, response: Response, **kwargs: Any) -> Iterator[Any] | AsyncIterator[Any]:
        return self._parse_response(response, self.parse_start_url, kwargs, follow=True)

    def parse_start_url(self, response: Response, **kwargs: Any) -> Any:
        """Items and requests from a start URL's page; none by default."""
        return []

    def process_results(self, response: Response, results: list[Any]) -> Iterable[Any]:
        """A hook over each rule callback's output (a list); returns what to keep."""
        return results

    def _rule_callback(
        self, response: Response, **cb_kwargs: Any
    ) -> Iterator[Any] | AsyncIterator[Any]:
        rule = self._rules[response.meta["rule"]]
        kwargs = {**rule.cb_kwargs, **cb_kwargs}
        return self._parse_response(response, rule.callback, kwargs, rule.follow)

    async def _rule_errback(self, failure: Any) -> AsyncIterator[Any]:
        rule = self._rules[failure.request.meta["rule"]]
        if rule.errback is not None:
            async for output in outputs_of(rule.errback(failure)):
                yield output

    def _parse_response(
        self,
        response: Response,
        callback: Callable[..., Any] | None,
        cb_kwargs: dict[str, Any],
        follow: bool,
    ) -> Iterator[Any] | AsyncIterator[Any]:
        """The callback's output (through ``process_results``), then the rules'
        requests. A plain generator when the callback is synchronous, the usual
        case, which the engine iterates without an async wrapper per page."""
        result = callback(response, **cb_kwargs) if callback is not None else None
        if inspect.isawaitable(result) or hasattr(result, "__anext__"):
            return self._parse_async(response, result, follow)
        return self._parse_sync(response, result, callback is not None, follow)

    def _parse_sync(
        self, response: Response, result: Any, called: bool, follow: bool
    ) -> Iterator[Any]:
        if called:
            if result is None:
                results = []
            elif isinstance(result, dict | str | bytes) or not hasattr(result, "__iter__"):
                results = [result]  # one item returned, as outputs_of treats it
            else:
                results = list(result)
            yield from self.process_results(response, results) or ()
        if follow and self.follow_links:
            yield from self._requests_to_follow(response)

    async def _parse_async(
        self, response: Response, result: Any, follow: bool
    ) -> AsyncIterator[Any]:
        results = [output async for output in outputs_of(result)]
        for output in self.process_results(response, results) or ():
            yield output
        if follow and self.follow_links:
            for request in self._requests_to_follow(response):
                yield request

    def _requests_to_follow(self, response: Response) -> Iterable[Request]:
        if not _is_markup(response):
            return
        seen: set[str] = set()  # URLs requested from this page, by any rule
        for index, rule in enumerate(self._rules):
            links = [
                link for link in rule.link_extractor.extract_links(response) if link.url not in seen
            ]
            for link in rule.process_links(links) or ():
                if link.url in seen:
                    continue  # process_links may rewrite a link into another's URL
                seen.add(link.url)
                request = self._build_request(index, link, rule)
                processed = rule.process_request(request, response)
                if processed is not None:
                    yield processed

    def _build_request(self, index: int, link: Link, rule: Rule) -> Request:
        return Request(
            link.url,
            self._rule_callback,
            meta={"rule": index, "link_text": link.text},
            errback=self._rule_errback if rule.errback is not None else None,
        )


def _is_markup(response: Response) -> bool:
    """Whether links can be looked for in a response (Scrapy follows only from
    HTML responses): HTML or XML by Content-Type, or by its first bytes if none."""
    content_type = (response.headers.get("Content-Type") or "").lower()
    if content_type:
        return "html" in content_type or "xml" in content_type
    return response.body[:512].lstrip().startswith(b"<")
