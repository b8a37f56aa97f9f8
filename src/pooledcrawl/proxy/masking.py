"""Scrubbing proxy credentials out of text: messages, log records, tracebacks.

The engine never puts credentials into what it writes, but libraries may: an
exception's message or a connection key in an asyncio warning can hold a proxy
URL. These helpers are the last line: whatever text leaves the process while a
job with credentials runs goes through :class:`SecretMasker`.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterable, Iterator

__all__ = ["MASK", "SecretFilter", "SecretMasker", "masking_logs"]

MASK = "***"
#: shorter secrets are not scrubbed: masking every "ab" in every log line would garble it
MIN_SECRET_LENGTH = 3


class SecretMasker:
    """Replaces each known secret string with ``***``, longest first."""

    def __init__(self, secrets: Iterable[str]) -> None:
        unique = {s for s in secrets if len(s) >= MIN_SECRET_LENGTH}
        self._secrets = tuple(sorted(unique, key=len, reverse=True))

    def __bool__(self) -> bool:
        return bool(self._secrets)

    def __repr__(self) -> str:
        return f"SecretMasker({len(self._secrets)} secrets)"

    def mask(self, text: str) -> str:
        for secret in self._secrets:
            if secret in text:
                text = text.replace(secret, MASK)
        return text

    def contains_secret(self, text: str) -> bool:
        return any(secret in text for secret in self._secrets)


class SecretFilter(logging.Filter):
    """A handler filter that masks secrets in the message and the formatted traceback."""

    def __init__(self, masker: SecretMasker) -> None:
        super().__init__()
        self._masker = masker

    def filter(self, record: logging.LogRecord) -> bool:
        masker = self._masker
        try:
            message = record.getMessage()
        except Exception:  # a bad format string is the logger's problem, not ours
            return True
        if masker.contains_secret(message):
            record.msg, record.args = masker.mask(message), None
        if record.exc_info and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        if record.exc_text and masker.contains_secret(record.exc_text):
            record.exc_text = masker.mask(record.exc_text)
        if record.stack_info and masker.contains_secret(record.stack_info):
            record.stack_info = masker.mask(record.stack_info)
        return True


@contextlib.contextmanager
def masking_logs(secrets: Iterable[str]) -> Iterator[SecretMasker]:
    """Mask ``secrets`` in every record that reaches the root logger's handlers."""
    masker = SecretMasker(secrets)
    if not masker:
        yield masker
        return
    log_filter = SecretFilter(masker)
    handlers = list(logging.getLogger().handlers)
    for handler in handlers:
        handler.addFilter(log_filter)
    try:
        yield masker
    finally:
        for handler in handlers:
            handler.removeFilter(log_filter)
