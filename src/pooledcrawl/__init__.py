"""pooledcrawl: a concurrent web-crawling framework.

The public API is what this module exports; everything else is internal.
"""

from pooledcrawl._version import __version__
from pooledcrawl.engine import Engine, Failure, Stats
from pooledcrawl.errors import CloseSpider, DropItem, UsageError
from pooledcrawl.http import Request, Response
from pooledcrawl.runner import run, run_async
from pooledcrawl.settings import Settings
from pooledcrawl.spider import Spider

__all__ = [
    "CloseSpider",
    "DropItem",
    "Engine",
    "Failure",
    "Request",
    "Response",
    "Settings",
    "Spider",
    "Stats",
    "UsageError",
    "__version__",
    "run",
    "run_async",
]
