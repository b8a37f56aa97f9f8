"""Middlewares: the seams around each download and each callback.

Downloader hooks (``process_request``, ``process_response``, ``process_exception``)
wrap the fetch; spider hooks (``process_start``, ``process_spider_output``) wrap the
start requests and each callback's outputs. One class may implement any of them; the
chain calls only the hooks a class defines.
"""

from pooledcrawl.middleware.base import (
    DownloaderMiddleware,
    SpiderMiddleware,
)
from pooledcrawl.middleware.chain import MiddlewareChain

__all__ = ["DownloaderMiddleware", "MiddlewareChain", "SpiderMiddleware"]
