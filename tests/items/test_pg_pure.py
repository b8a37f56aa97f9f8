"""The PostgreSQL sink's pure parts: target parsing, pool plan, table layout, monitor."""

from __future__ import annotations

import dataclasses
import datetime
import uuid

import orjson
import pytest

from pooledcrawl import Settings, UsageError
from pooledcrawl.items.pgmonitor import Activity, PoolUsage, monitor_warnings
from pooledcrawl.items.postgres import TableLayout, parse_target, plan_pool
from pooledcrawl.settings import PostgresSettings


def test_the_target_loses_its_table_parameter_and_its_password_in_display() -> None:
    target = parse_target(
        "postgresql://bob:s3cret@db.local:5433/shop?sslmode=disable&table=raw.pages"
    )
    assert target.schema == "raw" and target.table == "pages"
    assert target.qualified == '"raw"."pages"'
    assert target.dsn == "postgresql://bob:s3cret@db.local:5433/shop?sslmode=disable"
    assert target.display == "postgresql://bob@db.local:5433/shop?table=raw.pages"
    assert parse_target("postgres://127.0.0.1/db").table == "items"


@pytest.mark.parametrize("table", ["a;drop", "1abc", "a.b.c", "x" * 64, ""])
def test_unsafe_table_names_are_refused(table: str) -> None:
    with pytest.raises(UsageError, match="use letters, digits and _"):
        parse_target(f"postgresql://127.0.0.1/db?table={table}")


def test_pool_plan_follows_the_seed_formula() -> None:
    # a worked example: floor((200 - 10) / 4) - 5 = 42
    settings = Settings(
        postgres=PostgresSettings(workers=4, reserved=10, max_overflow=5, pool_size=42)
    )
    assert plan_pool(200, settings) == (42, 47)
    # unset: the formula's value, capped for a crawler's few batch writers
    assert plan_pool(200, Settings(postgres=PostgresSettings(workers=4, max_overflow=5))) == (4, 9)
    assert plan_pool(
        20, Settings(postgres=PostgresSettings(workers=3, reserved=10, max_overflow=1))
    ) == (2, 3)


@pytest.mark.parametrize(
    ("max_connections", "options", "message"),
    [
        (100, {"pg_workers": 100}, "100 workers x"),
        (100, {"pg_workers": 31, "pg_max_overflow": 2}, "cannot fit in max_connections 100"),
        (12, {"pg_reserved": 12}, "max_connections 12 - 12 reserved"),
        (200, {"pg_workers": 4, "pg_max_overflow": 5, "pg_pool_size": 43}, "at most 42 fits"),
    ],
)
def test_impossible_pools_are_refused_in_one_line(
    max_connections: int, options: dict[str, int], message: str
) -> None:
    with pytest.raises(UsageError, match=message) as info:
        plan_pool(max_connections, Settings.layered(("test", options)))
    assert "\n" not in str(info.value)


def test_bad_pool_settings_are_refused_by_settings() -> None:
    for key, value in [("pg_workers", 0), ("pg_max_overflow", -1), ("pg_pool_size", 0)]:
        with pytest.raises(UsageError, match=key):
            Settings.layered(("command line", {key: value}))


@dataclasses.dataclass
class Product:
    url: str
    name: str
    price: float
    stock: int | None
    seen: datetime.datetime
    specs: dict[str, str]


def test_a_dataclass_gives_typed_columns() -> None:
    layout = TableLayout.for_model(Product)
    assert layout.typed and layout.columns == [
        *("item_id", "url", "spider", "scraped_at"),
        *("name", "price", "stock", "seen", "specs"),
    ]
    sql = layout.create_sql('"p"')
    for column in ('"price" double precision', '"stock" bigint', '"seen" timestamptz'):
        assert column in sql
    assert '"specs" jsonb' in sql and "item_id uuid NOT NULL UNIQUE" in sql
    now = datetime.datetime.now(datetime.UTC)
    (row,) = layout.rows([Product("u", "n", 1.0, None, now, {"a": "b"})], "sp", now)
    assert uuid.UUID(row[0]).version == 4
    assert row[1:] == ("u", "sp", now, "n", 1.0, None, now, '{"a":"b"}')


def test_model_fields_may_not_shadow_the_added_columns() -> None:
    @dataclasses.dataclass
    class Bad:
        id: int

    with pytest.raises(UsageError, match="field 'id' is a column pooledcrawl adds"):
        TableLayout.for_model(Bad)


def test_item_ids_are_distinct_version_4_uuids() -> None:
    ids = [uuid.UUID(row[0]) for row in TableLayout().rows([{}] * 2000, "sp", None)]  # type: ignore[arg-type]
    assert len(set(ids)) == 2000
    assert {u.version for u in ids} == {4} and {u.variant for u in ids} == {uuid.RFC_4122}


def test_the_jsonb_row_holds_the_json_lines_encoding() -> None:
    layout = TableLayout()
    now = datetime.datetime.now(datetime.UTC)
    item = {"url": "u", "set": {1}, "when": now}
    row, other = layout.rows([item, {"url": 5}], "sp", now)
    assert orjson.loads(row[4]) == {"url": "u", "set": [1], "when": now.isoformat()}
    assert other[1] == "5" and row[0] != other[0]
    assert "ON CONFLICT (item_id) DO NOTHING" in layout.insert_sql('"t"')


def test_pool_usage_is_time_weighted() -> None:
    usage = PoolUsage(now=0.0)
    usage.set(0.0, 4)  # all 4 busy for 10 s
    usage.set(10.0, 0)  # then idle for 10 s
    assert usage.take(20.0, capacity=4) == pytest.approx(0.5)
    usage.set(20.0, 4)
    assert usage.take(30.0, capacity=4) == pytest.approx(1.0)  # a new window
    assert usage.take(30.0, capacity=4) == 0.0  # an empty window


def test_monitor_warnings() -> None:
    options = {"pool_size": 4, "window_s": 30.0, "idle_threshold_s": 5.0}
    assert monitor_warnings(0.85, Activity(active=3), **options) == []
    busy = monitor_warnings(0.9, Activity(), **options)
    assert len(busy) == 1 and "90% of 4 connections" in busy[0]
    stale = monitor_warnings(0.1, Activity(stale_transactions=2), **options)
    assert len(stale) == 1 and "idle for more than 5s" in stale[0]
    assert len(monitor_warnings(0.0, Activity(lock_waits=3), **options)) == 1
