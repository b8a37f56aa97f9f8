"""Where the PostgreSQL sink writes: ``postgresql://user@host/db?table=[schema.]name``
split into what asyncpg connects with and a checked, quotable table name."""

from __future__ import annotations

import re
from dataclasses import dataclass
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from pooledcrawl.errors import UsageError

__all__ = ["PgTarget", "parse_target", "quote"]

#: an unquoted PostgreSQL identifier: at most 63 bytes (NAMEDATALEN - 1)
_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,62}")


@dataclass(frozen=True, slots=True)
class PgTarget:
    dsn: str
    """What asyncpg connects with (may hold a password: never log it)."""
    schema: str | None
    table: str
    display: str
    """The target without password, for logs and stats."""

    @property
    def qualified(self) -> str:
        name = quote(self.table)
        return f"{quote(self.schema)}.{name}" if self.schema else name


def parse_target(target: str) -> PgTarget:
    """Split ``postgresql://...?table=[schema.]name`` into a DSN and a checked table name."""
    parts = urlsplit(target)
    if parts.scheme not in ("postgresql", "postgres"):
        raise UsageError(f"not a PostgreSQL URL: {parts.scheme}://...")
    query = parse_qsl(parts.query, keep_blank_values=True)
    tables = [value for key, value in query if key == "table"]
    rest = [(key, value) for key, value in query if key != "table"]
    table = tables[-1] if tables else "items"
    schema, _, name = table.rpartition(".")
    for part in (name, schema) if schema else (name,):
        if not _NAME.fullmatch(part):
            raise UsageError(
                f"table {table!r}: use letters, digits and _ (optionally schema.table)"
            )
    host = parts.hostname or ""
    netloc = (f"{parts.username}@" if parts.username else "") + (
        f"[{host}]" if ":" in host else host
    )
    if parts.port:
        netloc += f":{parts.port}"
    display = urlunsplit((parts.scheme, netloc, parts.path, urlencode({"table": table}), ""))
    dsn = urlunsplit((parts.scheme, parts.netloc, parts.path, urlencode(rest), ""))
    return PgTarget(dsn=dsn, schema=schema or None, table=name, display=display)


def quote(name: str | None) -> str:
    """``name`` as a quoted identifier (a ``"`` inside is doubled)."""
    return '"' + (name or "").replace('"', '""') + '"'
