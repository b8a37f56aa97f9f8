"""pooledcrawl: a concurrent web-crawling framework.

The public API is what this module exports; everything else is internal.
"""

from pooledcrawl._version import __version__
from pooledcrawl.engine import Engine, Failure, Stats
from pooledcrawl.errors import CloseSpider, DropItem, UsageError
from pooledcrawl.http import Request, Response
from pooledcrawl.http.forms import FormRequest
from pooledcrawl.runner import run, run_async
from pooledcrawl.settings import Settings
from pooledcrawl.spider import Spider
from pooledcrawl.spiders import CrawlSpider, LinkExtractor, Rule, SitemapSpider

__all__ = [
    "CloseSpider",
    "CrawlSpider",
    "DropItem",
    "Engine",
    "Failure",
    "FormRequest",
    "LinkExtractor",
    "Request",
    "Response",
    "Rule",
    "Settings",
    "SitemapSpider",
    "Spider",
    "Stats",
    "UsageError",
    "__version__",
    "run",
    "run_async",
]
