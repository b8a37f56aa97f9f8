"""The JSON-lines feed (orjson): the core output, kept fast."""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import orjson

from pooledcrawl.errors import UsageError
from pooledcrawl.items.base import Item, json_default, write_all

if TYPE_CHECKING:
    from pooledcrawl.spider import Spider

__all__ = ["JsonLinesSink"]

_OPTIONS = orjson.OPT_APPEND_NEWLINE | orjson.OPT_NON_STR_KEYS
_FLUSH_BYTES = 256 * 1024
_FLUSH_SECONDS = 1.0


class JsonLinesSink:
    """Appends one JSON object per line.

    Buffers in memory and writes whole lines with ``os.write``, so however the
    process dies, the file ends on a line boundary and parses line by line.
    """

    def __init__(self, target: str, *, overwrite: bool = False) -> None:
        self.target = target
        self._overwrite = overwrite
        self._fd: int | None = None
        self._buffer = bytearray()
        self._last_flush = time.monotonic()
        self.rows = 0

    async def open(self, spider: Spider) -> None:
        if self.target == "-":
            self._fd = sys.stdout.fileno()
            return
        path = Path(self.target)
        flags = os.O_WRONLY | os.O_CREAT | (os.O_TRUNC if self._overwrite else os.O_APPEND)
        try:
            self._fd = os.open(path, flags, 0o644)
        except OSError as exc:
            raise UsageError(f"cannot open output {self.target}: {exc.strerror}") from None

    async def write(self, items: Sequence[Item]) -> None:
        buffer = self._buffer
        for item in items:
            buffer += orjson.dumps(item, default=json_default, option=_OPTIONS)
        self.rows += len(items)
        if len(buffer) >= _FLUSH_BYTES or time.monotonic() - self._last_flush >= _FLUSH_SECONDS:
            self._write_out()

    def _write_out(self) -> None:
        self._last_flush = time.monotonic()
        if self._fd is None or not self._buffer:
            return
        write_all(self._fd, self._buffer)
        self._buffer.clear()

    async def flush(self) -> None:
        self._write_out()

    def emergency_flush(self) -> None:
        self._write_out()

    async def close(self) -> None:
        self._write_out()
        if self._fd is not None and self.target != "-":
            os.close(self._fd)
        self._fd = None

    def stats(self) -> dict[str, Any]:
        return {"type": "jsonl", "target": self.target, "rows": self.rows}
