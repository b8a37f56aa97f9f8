"""The PostgreSQL sink against the real server on 127.0.0.1:5432, database ``test``.

Every test writes to its own table (``unique_name``) and drops it at the end.
"""

from __future__ import annotations

import asyncio
import dataclasses
import datetime
import logging
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import asyncpg
import orjson
import pytest
from itemkit import GraphSpider
from sites import link_graph_app, serve

from pooledcrawl import Engine, Settings, Spider, UsageError
from pooledcrawl.items.jsonl import JsonLinesSink
from pooledcrawl.items.postgres import PostgresSink
from pooledcrawl.items.postgres.connections import Connections
from pooledcrawl.settings import PostgresSettings


@dataclasses.dataclass
class PgTable:
    dsn: str
    name: str

    @property
    def target(self) -> str:
        return f"{self.dsn}?table={self.name}"

    async def fetch(self, query: str, *args: Any) -> list[asyncpg.Record]:
        conn = await asyncpg.connect(self.dsn)
        try:
            return list(await conn.fetch(query.replace("{t}", f'"{self.name}"'), *args))
        finally:
            await conn.close()


@pytest.fixture
async def table(postgres_dsn: str, unique_name: str) -> AsyncIterator[PgTable]:
    pg = PgTable(postgres_dsn, unique_name)
    yield pg
    await pg.fetch("DROP TABLE IF EXISTS {t}")


async def open_sink(table: PgTable, spider: Spider | None = None, **settings: Any) -> PostgresSink:
    sink = PostgresSink(table.target, Settings.layered(("test", settings)))
    await sink.open(spider or Spider())
    return sink


def items(n: int, start: int = 0) -> list[dict[str, Any]]:
    return [{"url": f"http://127.0.0.1/{i}", "i": i, "tags": [i % 3]} for i in range(start, n)]


# ---- a whole crawl --------------------------------------------------------------------


async def test_a_1000_page_crawl_writes_1000_rows_equal_to_the_json_lines(
    table: PgTable, tmp_path: Path
) -> None:
    feed = tmp_path / "items.jsonl"
    settings = Settings(concurrency=16, postgres=PostgresSettings(batch_size=100))
    async with serve(link_graph_app(1000)) as base:
        spider = GraphSpider(start_urls=[f"{base}/p/0.html"])
        sinks = [JsonLinesSink(str(feed), overwrite=True), PostgresSink(table.target, settings)]
        stats = await Engine(spider, settings, sinks=sinks).run()

    lines = [orjson.loads(line) for line in feed.read_bytes().splitlines()]
    rows = await table.fetch("SELECT item_id, url, spider, scraped_at, data::text AS d FROM {t}")
    assert len(lines) == len(rows) == stats.items == 1000
    assert len({row["item_id"] for row in rows}) == 1000
    assert {row["spider"] for row in rows} == {"graph"}
    by_url = {row["url"]: orjson.loads(row["d"]) for row in rows}
    assert by_url == {line["url"]: line for line in lines}
    pg_stats = stats.to_dict()["sinks"][1]
    assert pg_stats["rows"] == 1000 and pg_stats["batches"] >= 10
    assert pg_stats["rows_failed"] == pg_stats["rows_spilled"] == pg_stats["pending"] == 0
    assert pg_stats["pool_size"] >= 1 and pg_stats["max_checked_out"] >= 1


async def test_a_backend_terminated_mid_crawl_loses_and_duplicates_nothing(
    table: PgTable,
) -> None:
    """The test locks the table so the sink's next COPY waits, kills the sink's
    backends (pg_terminate_backend) while that COPY is in flight, then lets go."""
    settings = Settings(
        concurrency=8, postgres=PostgresSettings(batch_size=50, flush_interval=0.05)
    )
    app_name = f"pooledcrawl:{table.name}"
    admin = await asyncpg.connect(table.dsn)
    locker = await asyncpg.connect(table.dsn)
    try:
        async with serve(link_graph_app(1000)) as base:
            spider = GraphSpider(start_urls=[f"{base}/p/0.html"])
            sink = PostgresSink(table.target, settings)
            crawl = asyncio.create_task(Engine(spider, settings, sinks=[sink]).run())
            for _ in range(1000):  # until the first rows are in
                if sink.rows >= 50:
                    break
                await asyncio.sleep(0.01)
            lock = locker.transaction()
            await lock.start()
            await locker.execute(f'LOCK TABLE "{table.name}" IN ACCESS EXCLUSIVE MODE')
            waiting = 0
            for _ in range(1000):  # until a write of the sink waits on the lock
                waiting = await admin.fetchval(
                    "SELECT count(*) FROM pg_stat_activity "
                    "WHERE application_name = $1 AND wait_event_type = 'Lock'",
                    app_name,
                )
                if waiting:
                    break
                await asyncio.sleep(0.01)
            assert waiting, "no write of the sink reached the lock"
            killed = await admin.fetch(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                "WHERE application_name = $1",
                app_name,
            )
            await lock.rollback()
            stats = await crawl
    finally:
        await admin.close()
        await locker.close()

    assert len(killed) >= 1
    counts = await table.fetch(
        "SELECT count(*) AS n, count(DISTINCT item_id) AS ids, count(DISTINCT url) AS urls FROM {t}"
    )
    assert dict(counts[0]) == {"n": 1000, "ids": 1000, "urls": 1000}
    assert stats.items == 1000
    assert sink.batches_retried >= 1
    assert sink.rows == 1000 and sink.rows_spilled == 0 and sink.rows_failed == 0


# ---- idempotence and failures -----------------------------------------------------------


async def test_a_batch_written_twice_leaves_no_duplicates(table: PgTable) -> None:
    sink = await open_sink(table, pg_batch_size=1000)
    try:
        await sink.write(items(10))
        rows = list(sink._pending)
        await sink.flush()
        await sink.write(items(15, start=10))
        again = rows[:5] + list(sink._pending)  # as if the first batch's commit went unseen
        sink._pending.clear()
        async with sink._conns.connection() as conn:
            await sink._insert(conn, again)  # COPY hits item_id; the insert skips the 5
    finally:
        await sink.close()
    got = await table.fetch("SELECT count(*) AS n, count(DISTINCT item_id) AS ids FROM {t}")
    assert dict(got[0]) == {"n": 15, "ids": 15}


async def test_rows_the_database_rejects_are_counted_failed_and_the_rest_written(
    table: PgTable, caplog: pytest.LogCaptureFixture
) -> None:
    batch = items(20)
    batch[3]["text"] = "nul \x00 byte"  # jsonb refuses \u0000
    batch[11]["text"] = "\x00"
    sink = await open_sink(table, pg_batch_size=20)
    try:
        await sink.write(batch)
    finally:
        await sink.close()
    rows = await table.fetch("SELECT (data->>'i')::int AS i FROM {t}")
    assert sorted(row["i"] for row in rows) == [i for i in range(20) if i not in (3, 11)]
    assert sink.rows == 18 and sink.rows_failed == 2 and sink.batches_retried == 0
    failures = [r for r in caplog.records if "writing a row" in r.getMessage()]
    assert len(failures) == 1  # logged once per kind


async def test_when_the_server_stays_away_rows_go_to_a_local_file(
    table: PgTable, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    sink = await open_sink(table, pg_batch_size=5, pg_retry_timeout=0.05)
    real_pool = sink._conns.pool

    class DownPool:
        async def acquire(self, **_: Any) -> Any:
            raise ConnectionRefusedError("server down")

    sink._conns.pool = DownPool()
    try:
        await sink.write(items(7))  # one batch of 5 fails for good; 2 stay pending
    finally:
        sink._conns.pool = real_pool
        await sink.close()  # the 2 pending rows go to the (live) server
    spilled = [
        orjson.loads(line)
        for line in (tmp_path / sink.stats()["spill_file"]).read_bytes().splitlines()
    ]
    assert [row["data"] for row in spilled] == items(5)
    assert all(row["item_id"] and row["spider"] == "spider" for row in spilled)
    assert sink.rows_spilled == 5 and sink.batches_retried == 1 and sink.retries >= 1
    rows = await table.fetch("SELECT data->>'i' AS i FROM {t} ORDER BY 1")
    assert [row["i"] for row in rows] == ["5", "6"]


async def test_a_connection_that_fails_its_ping_after_idling_is_replaced() -> None:
    class Conn:
        def __init__(self, pid: int, alive: bool) -> None:
            self.pid, self.alive = pid, alive

        def get_server_pid(self) -> int:
            return self.pid

        async def execute(self, query: str, **_: Any) -> None:
            if not self.alive:
                raise ConnectionResetError("gone")

    class Pool:
        def __init__(self) -> None:
            self.free = [Conn(1, alive=False), Conn(2, alive=True)]
            self.released: list[int] = []

        async def acquire(self, **_: Any) -> Conn:
            return self.free.pop(0)

        async def release(self, conn: Conn) -> None:
            self.released.append(conn.pid)

    conns = Connections(idle_check=1.0, acquire_timeout=30.0)
    pool = Pool()
    conns.pool, conns.max_size = pool, 2
    conns._last_used = {1: -1e9, 2: -1e9}  # both idle for long: both get pinged
    async with conns.connection() as conn:
        assert conn.pid == 2
    assert conns.stale == 1 and pool.released == [1, 2]


# ---- lifecycle ----------------------------------------------------------------------------


async def test_emergency_flush_writes_pending_rows_before_exit(table: PgTable) -> None:
    sink = await open_sink(table, pg_batch_size=1000, pg_flush_interval=60)
    try:
        await sink.write(items(30))
        assert sink.stats()["pending"] == 30
        sink.emergency_flush()  # what the second Ctrl-C does, synchronously
        assert sink.stats()["pending"] == 0
    finally:
        await sink.close()
    got = await table.fetch("SELECT count(*) AS n FROM {t}")
    assert got[0]["n"] == 30 and sink.rows == 30


async def test_rows_are_flushed_on_time_not_only_on_size(table: PgTable) -> None:
    sink = await open_sink(table, pg_batch_size=1000, pg_flush_interval=0.05)
    try:
        await sink.write(items(3))
        assert f"postgresql {table.name}: pool 0/4 (+2)  rows 0 " in sink.status()
        assert "pending 3" in sink.status()
        for _ in range(500):
            if sink.rows == 3:
                break
            await asyncio.sleep(0.01)
        assert sink.rows == 3 and sink.stats()["pending"] == 0
        assert "rows 3 " in sink.status() and "pending 0" in sink.status()
    finally:
        await sink.close()


async def test_connections_carry_the_timeouts_and_application_name(table: PgTable) -> None:
    sink = await open_sink(table, pg_statement_timeout=2.5, pg_statement_cache_size=0)
    try:
        async with sink._conns.connection() as conn:
            assert await conn.fetchval("SHOW statement_timeout") == "2500ms"
            assert await conn.fetchval("SHOW application_name") == f"pooledcrawl:{table.name}"
            assert conn._con._config.command_timeout == 30.0
    finally:
        await sink.close()


@dataclasses.dataclass
class Product:
    url: str
    name: str
    price: float
    stock: int | None
    released: datetime.date
    specs: dict[str, Any]


async def test_a_dataclass_model_gives_a_typed_table(table: PgTable) -> None:
    spider = Spider()
    spider.item_model = Product  # type: ignore[attr-defined]
    sink = await open_sink(table, spider, pg_statement_cache_size=0)  # as behind PgBouncer
    try:
        await sink.write(
            [
                Product("http://127.0.0.1/1", "one", 9.5, 3, datetime.date(2024, 1, 2), {"a": 1}),
                Product("http://127.0.0.1/2", "two", 1.0, None, datetime.date(2024, 1, 3), {}),
            ]
        )
    finally:
        await sink.close()
    types = await table.fetch(
        "SELECT column_name AS c, data_type AS t FROM information_schema.columns "
        "WHERE table_name = $1",
        table.name,
    )
    assert {r["c"]: r["t"] for r in types} == {
        "id": "bigint",
        "item_id": "uuid",
        "url": "text",
        "spider": "text",
        "scraped_at": "timestamp with time zone",
        "name": "text",
        "price": "double precision",
        "stock": "bigint",
        "released": "date",
        "specs": "jsonb",
    }
    rows = await table.fetch(
        "SELECT url, name, price, stock, released, specs FROM {t} ORDER BY url"
    )
    assert [tuple(r) for r in rows] == [
        ("http://127.0.0.1/1", "one", 9.5, 3, datetime.date(2024, 1, 2), '{"a": 1}'),
        ("http://127.0.0.1/2", "two", 1.0, None, datetime.date(2024, 1, 3), "{}"),
    ]


async def test_an_existing_table_of_another_shape_is_refused(table: PgTable) -> None:
    await table.fetch("CREATE TABLE {t} (id serial, data jsonb)")
    with pytest.raises(UsageError, match="exists with no column item_id"):
        await open_sink(table)


async def test_an_impossible_pool_is_refused_against_the_real_server(table: PgTable) -> None:
    max_connections = int((await table.fetch("SHOW max_connections"))[0][0])
    with pytest.raises(UsageError) as info:
        await open_sink(table, pg_workers=max_connections)
    message = str(info.value)
    assert f"max_connections {max_connections}" in message and "\n" not in message


async def test_an_unreachable_server_is_a_usage_error_without_the_password() -> None:
    sink = PostgresSink("postgresql://u:hunter2@127.0.0.1:1/db?table=t", Settings())
    with pytest.raises(
        UsageError, match=r"cannot connect to postgresql://u@127\.0\.0\.1:1/db"
    ) as i:
        await sink.open(Spider())
    assert "hunter2" not in str(i.value)


# ---- the monitor ----------------------------------------------------------------------------


async def test_the_monitor_warns_about_a_transaction_left_idle(
    table: PgTable, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="pooledcrawl.items.postgres")
    sink = PostgresSink(
        table.target,
        Settings(postgres=PostgresSettings(monitor=True, monitor_interval=0.1)),
        idle_transaction_s=0.2,
    )
    await sink.open(Spider())
    idler = await asyncpg.connect(table.dsn)
    try:
        await idler.execute("BEGIN; SELECT 1")  # then sits idle in its transaction
        for _ in range(300):
            if sink.stats()["monitor"]["warnings"]:
                break
            await asyncio.sleep(0.02)
    finally:
        await idler.close()
        await sink.close()
    warned = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert any("idle for more than 0.2s" in message for message in warned)
    monitor = sink.stats()["monitor"]
    assert (
        monitor["warnings"] >= 1
        and monitor["samples"] >= 1
        and monitor["last"]["idle_in_transaction"] >= 0
    )
