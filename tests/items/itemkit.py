"""Shared bits for the items tests: a spider over the link graph, an in-memory sink,
and small pipelines that settings can name by dotted path (``itemkit.Upper``)."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator, Sequence
from typing import Any

from pooledcrawl import DropItem, Response, Spider


class GraphSpider(Spider):
    """One item per page of the link graph: its url, index, name and a nested value."""

    name = "graph"

    def parse(self, response: Response) -> Iterator[Any]:
        i = int(response.url.rsplit("/", 1)[1].split(".")[0])
        yield {
            "url": response.url,
            "i": i,
            "name": response.css("h1::text").get(),
            "price": float(response.css(".price::text").get() or 0),
            "tags": ["even" if i % 2 == 0 else "odd", {"mod7": i % 7}],
            "note": None,
        }
        yield from response.follow_all(css="a")


class ListSink:
    """Keeps items in memory; ``gate`` (when set) makes every write wait for it."""

    def __init__(self, gate: asyncio.Event | None = None) -> None:
        self.items: list[Any] = []
        self.gate = gate
        self.waiting = 0
        self.opened = self.closed = False

    async def open(self, spider: Spider) -> None:
        self.opened = True

    async def write(self, items: Sequence[Any]) -> None:
        if self.gate is not None:
            self.waiting += 1
            await self.gate.wait()
            self.waiting -= 1
        self.items.extend(items)

    async def flush(self) -> None:
        pass

    async def close(self) -> None:
        self.closed = True

    def emergency_flush(self) -> None:
        pass

    def stats(self) -> dict[str, Any]:
        return {"type": "list", "rows": len(self.items)}


class Upper:
    """Settings-loadable pipeline: upper-cases ``name``; records open/close."""

    events: list[str] = []

    def open(self, spider: Spider) -> None:
        Upper.events.append("open")

    def process_item(self, item: dict[str, Any], spider: Spider) -> dict[str, Any]:
        item["name"] = str(item.get("name", "")).upper()
        return item

    async def close(self, spider: Spider) -> None:
        Upper.events.append("close")


class DropOdd:
    """Drops items with an odd ``i``."""

    def process_item(self, item: dict[str, Any], spider: Spider) -> None:
        if item["i"] % 2:
            raise DropItem("odd")
