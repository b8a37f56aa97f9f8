"""Exceptions users see."""

from __future__ import annotations

__all__ = ["CloseSpider", "DropItem", "UsageError"]


class UsageError(Exception):
    """A mistake in what the user asked for: a bad flag, setting, profile or spider file.

    The CLI prints its message on one line and exits 2, with no traceback.
    """


class DropItem(Exception):
    """Raised by a pipeline to drop an item; the message is counted as the reason."""


class CloseSpider(Exception):
    """Raised by a callback to stop the crawl cleanly."""

    def __init__(self, reason: str = "cancelled") -> None:
        super().__init__(reason)
        self.reason = reason
