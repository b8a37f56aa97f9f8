"""The CSV feed: one row per item, read back with any CSV reader."""

from __future__ import annotations

import csv
import io
import logging
import os
import time
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pooledcrawl.errors import UsageError
from pooledcrawl.items.base import Item, dumps_item, item_to_dict, write_all

if TYPE_CHECKING:
    from pooledcrawl.spider import Spider

__all__ = ["CsvSink", "csv_cell"]

log = logging.getLogger("pooledcrawl.items")

_FLUSH_BYTES = 256 * 1024
_FLUSH_SECONDS = 1.0


def csv_cell(value: Any) -> str:
    """One cell: None is empty, booleans are true/false, nested values are JSON."""
    if value is None:
        return ""
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    if isinstance(value, dict | list | tuple | set | frozenset):
        return dumps_item(value).decode()
    isoformat = getattr(value, "isoformat", None)
    if callable(isoformat):
        return str(isoformat())
    return str(value)


class CsvSink:
    """Writes items as CSV rows (RFC 4180 quoting, UTF-8).

    The columns are ``fields`` if given, else the keys of the first item; when
    appending to a file that has a header, its header. A missing field is an empty
    cell; a field outside the columns is left out (and logged once). Like the
    JSON-lines feed, only whole rows are written, so the file parses after any exit.
    """

    def __init__(self, target: str, *, overwrite: bool = False, fields: Sequence[str] = ()) -> None:
        self.target = target
        self._overwrite = overwrite
        self._columns: list[str] | None = list(fields) or None
        self._fd: int | None = None
        self._text = io.StringIO()
        self._writer = csv.writer(self._text)
        self._last_flush = time.monotonic()
        self._column_set: set[Any] = set()
        self._left_out: set[str] = set()
        self.rows = 0

    async def open(self, spider: Spider) -> None:
        path = Path(self.target)
        flags = os.O_WRONLY | os.O_CREAT | (os.O_TRUNC if self._overwrite else os.O_APPEND)
        header = None if self._overwrite else _existing_header(path)
        if header is not None:
            if self._columns is not None and self._columns != header:
                raise UsageError(
                    f"{self.target} has columns {','.join(header)}; --fields asks for "
                    f"{','.join(self._columns)} (use -O to overwrite)"
                )
            self._columns = header
        self._column_set = set(self._columns or ())
        try:
            self._fd = os.open(path, flags, 0o644)
        except OSError as exc:
            raise UsageError(f"cannot open output {self.target}: {exc.strerror}") from None
        if header is None and self._columns is not None:
            self._writer.writerow(self._columns)

    async def write(self, items: Sequence[Item]) -> None:
        writer = self._writer
        for item in items:
            row = item_to_dict(item)
            columns = self._columns
            if columns is None:
                columns = self._columns = [str(key) for key in row]
                self._column_set = set(columns)
                writer.writerow(columns)
            writer.writerow([csv_cell(row.get(column)) for column in columns])
            if not self._column_set.issuperset(row):
                self._note_left_out(row)
        self.rows += len(items)
        if self._text.tell() >= _FLUSH_BYTES or (
            time.monotonic() - self._last_flush >= _FLUSH_SECONDS
        ):
            self._write_out()

    def _note_left_out(self, row: dict[str, Any]) -> None:
        extra = {str(key) for key in row} - self._column_set - self._left_out
        if extra:
            self._left_out |= extra
            log.warning(
                "%s: fields not in the CSV columns are left out: %s (set --fields to choose)",
                self.target,
                ", ".join(sorted(extra)),
            )

    def _write_out(self) -> None:
        self._last_flush = time.monotonic()
        if self._fd is None:
            return
        text = self._text.getvalue()
        if not text:
            return
        self._text.seek(0)
        self._text.truncate()
        write_all(self._fd, text.encode("utf-8"))

    async def flush(self) -> None:
        self._write_out()

    def emergency_flush(self) -> None:
        self._write_out()

    async def close(self) -> None:
        self._write_out()
        if self._fd is not None:
            os.close(self._fd)
        self._fd = None

    def stats(self) -> dict[str, Any]:
        return {
            "type": "csv",
            "target": self.target,
            "rows": self.rows,
            "columns": self._columns or [],
            "fields_left_out": sorted(self._left_out),
        }


def _existing_header(path: Path) -> list[str] | None:
    """The header row of a non-empty CSV file we are about to append to."""
    try:
        with path.open(newline="", encoding="utf-8") as handle:
            return next(csv.reader(handle), None)
    except FileNotFoundError:
        return None
    except (OSError, UnicodeDecodeError, csv.Error) as exc:
        raise UsageError(f"cannot read the header of {path}: {exc}") from None
