"""What an item is, and the sink interface every output implements."""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, Protocol

import orjson

if TYPE_CHECKING:
    from pooledcrawl.spider import Spider

__all__ = [
    "Item",
    "Sink",
    "dumps_item",
    "is_item",
    "item_to_dict",
    "json_default",
    "write_all",
]

#: A scraped item: a dict or a dataclass instance.
Item = Any


def is_item(obj: object) -> bool:
    return isinstance(obj, dict) or (dataclasses.is_dataclass(obj) and not isinstance(obj, type))


def item_to_dict(item: Item) -> dict[str, Any]:
    if isinstance(item, dict):
        return item
    return dataclasses.asdict(item)


def json_default(obj: Any) -> Any:
    """What orjson cannot encode natively: sets become lists, the rest their ``str``."""
    if isinstance(obj, set | frozenset | tuple):
        return list(obj)
    return str(obj)


def dumps_item(item: Item, option: int = orjson.OPT_NON_STR_KEYS) -> bytes:
    """An item as JSON, the same bytes for every sink (JSON lines, jsonb, CSV cells)."""
    return orjson.dumps(item, default=json_default, option=option)


def write_all(fd: int, data: bytes | bytearray) -> None:
    """Write all of ``data`` to ``fd``: ``os.write`` may take less than it is given, and
    a file sink writes whole rows so that the file ends on a row boundary."""
    view = memoryview(data)
    while view:
        written = os.write(fd, view)
        view = view[written:]
    view.release()  # a bytearray cannot be resized while a view holds it


class Sink(Protocol):
    """Where items go. ``write`` awaits when the sink is behind: that is back-pressure."""

    async def open(self, spider: Spider) -> None: ...

    async def write(self, items: Sequence[Item]) -> None: ...

    async def flush(self) -> None:
        """Make everything written so far durable (called before a frontier acks)."""
        ...

    async def close(self) -> None: ...

    def emergency_flush(self) -> None:
        """Synchronously push out what is buffered; the process is about to exit."""
        ...

    def stats(self) -> dict[str, Any]: ...
