"""The CSV feed round-trips through the csv module."""

from __future__ import annotations

import csv
import dataclasses
import datetime
from pathlib import Path
from typing import Any

import orjson
import pytest

from pooledcrawl import Settings, Spider, UsageError
from pooledcrawl.items.csv import CsvSink, csv_cell
from pooledcrawl.items.outputs import sink_for

ITEMS: list[dict[str, Any]] = [
    {
        "url": "http://127.0.0.1/a",
        "title": 'Comma, "quotes" and\na newline',
        "price": 12.5,
        "stock": 3,
        "tags": ["x", {"y": [1, None]}],
        "meta": {"ok": True, "ünï": "çødé"},
        "available": True,
        "note": None,
    },
    {"url": "http://127.0.0.1/b", "title": "no price", "available": False},
    {"url": "http://127.0.0.1/c", "title": "∑ unicode ✓", "price": 0.1, "extra": "left out"},
]


def read(path: Path) -> list[dict[str, str]]:
    with path.open(newline="", encoding="utf-8") as handle:
        return list(csv.DictReader(handle))


async def write(path: Path, items: list[Any], **options: Any) -> CsvSink:
    sink = CsvSink(str(path), **options)
    await sink.open(Spider())
    await sink.write(items[:1])
    await sink.write(items[1:])
    await sink.close()
    return sink


async def test_round_trip_through_the_csv_module(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    path = tmp_path / "items.csv"
    sink = await write(path, ITEMS)
    rows = read(path)
    columns = ["url", "title", "price", "stock", "tags", "meta", "available", "note"]
    assert list(rows[0]) == columns  # from the first item
    first = rows[0]
    assert first["title"] == ITEMS[0]["title"]  # commas, quotes, newline survive
    assert float(first["price"]) == 12.5 and int(first["stock"]) == 3
    assert orjson.loads(first["tags"]) == ITEMS[0]["tags"]  # nested values: JSON
    assert orjson.loads(first["meta"]) == ITEMS[0]["meta"]
    assert first["available"] == "true" and first["note"] == ""
    assert rows[1]["price"] == "" and rows[1]["available"] == "false"  # missing: empty
    assert rows[2]["title"] == "∑ unicode ✓" and float(rows[2]["price"]) == 0.1
    assert "extra" not in rows[2]
    assert sink.stats()["fields_left_out"] == ["extra"]
    assert sum("left out: extra" in r.getMessage() for r in caplog.records) == 1


async def test_fields_choose_and_order_the_columns(tmp_path: Path) -> None:
    path = tmp_path / "items.csv"
    sink = sink_for(str(path), True, Settings(csv_fields=["price", "url", "missing"]))
    await sink.open(Spider())
    await sink.write(ITEMS)
    await sink.close()
    rows = read(path)
    assert [list(row.items()) for row in rows] == [
        [("price", "12.5"), ("url", "http://127.0.0.1/a"), ("missing", "")],
        [("price", ""), ("url", "http://127.0.0.1/b"), ("missing", "")],
        [("price", "0.1"), ("url", "http://127.0.0.1/c"), ("missing", "")],
    ]


async def test_appending_keeps_the_existing_header_and_overwrite_replaces(
    tmp_path: Path,
) -> None:
    path = tmp_path / "items.csv"
    await write(path, [{"a": 1, "b": 2}])
    await write(path, [{"b": 4, "a": 3}])  # -o appends: the file's columns, no 2nd header
    assert read(path) == [{"a": "1", "b": "2"}, {"a": "3", "b": "4"}]
    with pytest.raises(UsageError, match="has columns a,b"):
        await write(path, [{"a": 5}], fields=["b"])
    await write(path, [{"z": 9}], overwrite=True)
    assert read(path) == [{"z": "9"}]


async def test_dataclass_items_and_odd_values(tmp_path: Path) -> None:
    @dataclasses.dataclass
    class Row:
        when: datetime.date
        values: tuple[int, ...]
        flag: bool

    path = tmp_path / "items.csv"
    await write(path, [Row(datetime.date(2024, 5, 1), (1, 2), False)])
    assert read(path) == [{"when": "2024-05-01", "values": "[1,2]", "flag": "false"}]
    assert csv_cell(frozenset([3])) == "[3]" and csv_cell(None) == "" and csv_cell(7) == "7"


async def test_an_unwritable_path_is_a_usage_error(tmp_path: Path) -> None:
    sink = CsvSink(str(tmp_path / "no" / "such" / "dir.csv"))
    with pytest.raises(UsageError, match="cannot open output"):
        await sink.open(Spider())


def test_outputs_are_chosen_by_extension_or_scheme() -> None:
    settings = Settings()
    assert type(sink_for("x.CSV", False, settings)).__name__ == "CsvSink"
    for target in ("-", "a.jsonl", "a.jl", "a.ndjson"):
        assert type(sink_for(target, False, settings)).__name__ == "JsonLinesSink"
    pg = sink_for("postgresql://u:secret@127.0.0.1/db?table=t", False, settings)
    assert type(pg).__name__ == "PostgresSink"
    assert "secret" not in str(pg.stats())
    with pytest.raises(UsageError, match=r"unsupported output .a\.xml."):
        sink_for("a.xml", False, settings)
    with pytest.raises(UsageError, match="-O cannot overwrite"):
        sink_for("postgres://127.0.0.1/db", True, settings)
