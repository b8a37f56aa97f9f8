"""The PostgreSQL sink: ``-o postgresql://user@host/db?table=items`` through asyncpg.

One job a module: :mod:`.target` (the URL and table name), :mod:`.pool` (how many
connections fit), :mod:`.layout` (the table and its rows), :mod:`.sink` (batches,
retries, the pool's connections), :mod:`.spill` (the last resort: a fresh connection
from a thread, a local file) and :mod:`.monitor` (sampling ``pg_stat_activity``).
"""

from pooledcrawl.items.postgres.layout import TableLayout
from pooledcrawl.items.postgres.pool import DEFAULT_POOL_CAP, plan_pool
from pooledcrawl.items.postgres.sink import IDLE_TRANSACTION_S, PostgresSink
from pooledcrawl.items.postgres.target import PgTarget, parse_target

__all__ = [
    "DEFAULT_POOL_CAP",
    "IDLE_TRANSACTION_S",
    "PgTarget",
    "PostgresSink",
    "TableLayout",
    "parse_target",
    "plan_pool",
]
