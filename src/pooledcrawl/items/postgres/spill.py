"""The last resort for rows PostgreSQL would not take: a write through a fresh
connection from a helper thread (when the event loop cannot run: the second Ctrl-C),
and a local JSON-lines file, so that no row is lost."""

from __future__ import annotations

import asyncio
import logging
import threading
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import asyncpg
import orjson

from pooledcrawl.items.base import json_default
from pooledcrawl.items.postgres.layout import Row, TableLayout

__all__ = ["spill_rows", "write_in_thread"]

log = logging.getLogger("pooledcrawl.items.postgres")


def spill_rows(path: Path, rows: list[Row], layout: TableLayout) -> None:
    """Append ``rows`` to ``path``, one JSON object a line, each with its ``item_id``
    (loading the file with ``ON CONFLICT DO NOTHING`` is then safe)."""
    columns = layout.columns
    lines = bytearray()
    for row in rows:
        record = dict(zip(columns, row, strict=True))
        if not layout.typed:
            record["data"] = orjson.loads(record["data"])
        lines += orjson.dumps(record, default=json_default, option=orjson.OPT_APPEND_NEWLINE)
    with path.open("ab") as handle:
        handle.write(lines)


def write_in_thread(
    dsn: str,
    connect_args: Mapping[str, Any],
    insert_sql: str,
    rows: list[Row],
    *,
    display: str,
    timeout: float,
) -> bool:
    """Insert ``rows`` through a fresh connection, in a helper thread with its own event
    loop; True when they were written within ``timeout`` seconds."""
    done: list[bool] = []

    async def write() -> None:
        args = {**connect_args, "command_timeout": timeout}
        conn = await asyncpg.connect(dsn, timeout=timeout, **args)
        try:
            await conn.executemany(insert_sql, rows)
        finally:
            await conn.close()

    def run() -> None:
        try:
            asyncio.run(write())
            done.append(True)
        except Exception as exc:
            log.error("emergency write to %s failed: %s", display, exc)

    thread = threading.Thread(target=run, name="pg-emergency", daemon=True)
    thread.start()
    thread.join(timeout)
    return bool(done)
