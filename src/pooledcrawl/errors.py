"""Exceptions users see."""

from __future__ import annotations

from typing import Any

__all__ = ["CloseSpider", "DropItem", "IgnoreRequest", "UsageError"]


class UsageError(Exception):
    """A mistake in what the user asked for: a bad flag, setting, profile or spider file.

    The CLI prints its message on one line and exits 2, with no traceback.
    """


class DropItem(Exception):
    """Raised by a pipeline to drop an item; the message is counted as the reason."""


class IgnoreRequest(Exception):
    """Raised by a middleware to give a request up: its errback gets a Failure, and
    ``stats.failed`` and ``stats.errors[reason]`` count it (as Scrapy's IgnoreRequest).
    ``response``, when given, is the answer that made the request fail."""

    def __init__(self, reason: str = "ignored", *, response: Any = None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.response = response


class CloseSpider(Exception):
    """Raised by a callback to stop the crawl cleanly."""

    def __init__(self, reason: str = "cancelled") -> None:
        super().__init__(reason)
        self.reason = reason
