"""Choosing the sink for an ``-o``/``-O`` target, by URL scheme or file extension."""

from __future__ import annotations

from pooledcrawl.errors import UsageError
from pooledcrawl.items.base import Sink
from pooledcrawl.items.csv import CsvSink
from pooledcrawl.items.jsonl import JsonLinesSink
from pooledcrawl.settings import Settings

__all__ = ["sink_for"]

_JSONL = (".jsonl", ".jl", ".ndjson", ".json")


def sink_for(target: str, overwrite: bool, settings: Settings) -> Sink:
    """``-`` and .jsonl/.jl/.ndjson/.json: JSON lines; .csv: CSV; postgresql://: a table."""
    lowered = target.lower()
    if lowered.startswith(("postgresql://", "postgres://")):
        try:
            from pooledcrawl.items.postgres import PostgresSink
        except ImportError:
            raise UsageError(
                "the PostgreSQL output needs asyncpg: pip install 'pooledcrawl[postgres]'"
            ) from None
        return PostgresSink(target, settings, overwrite=overwrite)
    if target == "-" or lowered.endswith(_JSONL):
        return JsonLinesSink(target, overwrite=overwrite)
    if lowered.endswith(".csv"):
        return CsvSink(target, overwrite=overwrite, fields=settings.csv_fields)
    raise UsageError(
        f"unsupported output {target!r}: use a .jsonl or .csv file, - (stdout), "
        "or postgresql://user@host/db?table=NAME"
    )
