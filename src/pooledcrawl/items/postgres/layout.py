"""The items table: its columns (a jsonb ``data`` column, or one typed column per field
of a dataclass model), the rows items become, and creating or checking the table."""

from __future__ import annotations

import dataclasses
import datetime
import functools
import os
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import asyncpg

from pooledcrawl.errors import UsageError
from pooledcrawl.items.base import Item, dumps_item
from pooledcrawl.items.models import dataclass_columns
from pooledcrawl.items.postgres.target import PgTarget, quote

__all__ = ["Row", "TableLayout", "prepare_table"]

Row = tuple[Any, ...]
_FIXED = ("id", "item_id", "url", "spider", "scraped_at")


@dataclass(frozen=True, slots=True)
class TableLayout:
    """The columns of the items table: a jsonb ``data`` column, or one typed column per
    field of a dataclass model."""

    fields: tuple[tuple[str, str], ...] = (("data", "jsonb"),)
    typed: bool = False

    @classmethod
    def for_model(cls, model: type | None) -> TableLayout:
        if model is None or not dataclasses.is_dataclass(model):
            return cls()
        fields = [(name, sql) for name, sql in dataclass_columns(model) if name != "url"]
        clash = [name for name, _ in fields if name in _FIXED]
        if clash:
            raise UsageError(
                f"item_model {model.__name__}: field {clash[0]!r} is a column pooledcrawl "
                "adds itself; rename it"
            )
        return cls(tuple(fields), typed=True)

    @property
    def columns(self) -> list[str]:
        """The columns a row fills, in row order."""
        return ["item_id", "url", "spider", "scraped_at", *(name for name, _ in self.fields)]

    def create_sql(self, qualified: str) -> str:
        not_null = "" if self.typed else " NOT NULL"
        typed = ",\n  ".join(f"{quote(name)} {sql}{not_null}" for name, sql in self.fields)
        return (
            f"CREATE TABLE IF NOT EXISTS {qualified} (\n"
            "  id bigserial PRIMARY KEY,\n"
            "  item_id uuid NOT NULL UNIQUE,\n"
            "  url text,\n"
            "  spider text,\n"
            "  scraped_at timestamptz NOT NULL DEFAULT now(),\n"
            f"  {typed}\n)"
        )

    def insert_sql(self, qualified: str) -> str:
        """The idempotent insert: a row whose item_id is already there is skipped."""
        names = ", ".join(quote(name) for name in self.columns)
        params = ", ".join(f"${i}" for i in range(1, len(self.columns) + 1))
        return (
            f"INSERT INTO {qualified} ({names}) VALUES ({params}) ON CONFLICT (item_id) DO NOTHING"
        )

    def rows(self, items: Sequence[Item], spider: str, now: datetime.datetime) -> list[Row]:
        """One row per item, each with a fresh random (version 4) uuid as its item_id."""
        ids = _uuid4_hex(len(items))
        return [
            self._row(item, item_id, spider, now) for item, item_id in zip(items, ids, strict=True)
        ]

    def _row(self, item: Item, item_id: str, spider: str, now: datetime.datetime) -> Row:
        get = item.get if isinstance(item, dict) else functools.partial(getattr, item)
        url = get("url", None)
        head = (item_id, url if url is None or isinstance(url, str) else str(url), spider, now)
        if not self.typed:
            # The same bytes as the JSON-lines feed, so both outputs agree.
            return (*head, dumps_item(item).decode())
        values = []
        for name, sql in self.fields:
            value = get(name, None)
            if sql == "jsonb" and value is not None:
                value = dumps_item(value).decode()
            values.append(value)
        return (*head, *values)


def _uuid4_hex(n: int) -> list[str]:
    """``n`` random version-4 uuids as 32 hex digits: one urandom call for the lot, and
    strings asyncpg encodes in C (uuid.uuid4() per row costs more than the rest of it)."""
    raw = os.urandom(16 * n).hex()
    ids = []
    for start in range(0, 32 * n, 32):
        h = raw[start : start + 32]
        ids.append(f"{h[:12]}4{h[13:16]}{'89ab'[int(h[16], 16) & 3]}{h[17:]}")
    return ids


async def prepare_table(conn: Any, layout: TableLayout, target: PgTarget) -> None:
    """Create the table if missing (serialised across workers), then check its shape: an
    existing table needs the layout's columns and a unique ``item_id``."""
    qualified = target.qualified
    try:
        async with conn.transaction():
            await conn.execute("SELECT pg_advisory_xact_lock(hashtext($1))", qualified)
            await conn.execute(layout.create_sql(qualified))
        existing = {
            r["attname"]
            for r in await conn.fetch(
                "SELECT attname FROM pg_attribute WHERE attrelid = $1::regclass "
                "AND attnum > 0 AND NOT attisdropped",
                qualified,
            )
        }
        unique = await conn.fetchval(
            "SELECT EXISTS (SELECT 1 FROM pg_index i JOIN pg_attribute a "
            "ON a.attrelid = i.indrelid AND a.attnum = i.indkey[0] "
            "WHERE i.indrelid = $1::regclass AND i.indisunique AND i.indnkeyatts = 1 "
            "AND a.attname = 'item_id')",
            qualified,
        )
    except asyncpg.PostgresError as exc:
        raise UsageError(f"{target.display}: cannot create or read the table: {exc}") from None
    missing = [name for name in layout.columns if name not in existing]
    if missing or not unique:
        what = f"no column {', '.join(missing)}" if missing else "no unique index on item_id"
        raise UsageError(
            f"{target.display}: the table exists with {what}; pick another ?table= or drop it"
        )
