"""The coordinator's store on PostgreSQL (asyncpg): a pool, numbered migrations of its own, serialised writes.

A coordinator that serves many periods and participants, or runs as more than one replica for availability,
keeps its tables in PostgreSQL instead of its SQLite file. The store's statements are the SQLite store's own
(written with ``?`` placeholders, numbered here), so this module only carries connections and transactions.

Every write transaction first takes one transaction-scoped advisory lock: writers are serialised across every
process that shares the database, exactly as the SQLite store's single writer is, so the folding of records
(first report wins, an answer pairs with its reply whichever arrives first, a thread's first message counted
once) keeps its guarantees under concurrent ingest by several replicas. Reads run beside the writers and see
committed data only.
"""

from __future__ import annotations

import functools
import re
from collections.abc import AsyncIterator, Iterable, Sequence
from contextlib import asynccontextmanager
from importlib import resources
from typing import Any

import asyncpg
from asyncpg.pool import PoolConnectionProxy

WRITE_LOCK = 0x6E637078
"""The advisory lock every write transaction holds (and migrations too): "ncpx" in ASCII."""

_MIGRATIONS = "migrations_postgres"


@functools.lru_cache(maxsize=512)
def numbered(sql: str) -> str:
    """``?`` placeholders as PostgreSQL's ``$1, $2, ...`` (the store's statements have no ``?`` in literals)."""
    counter = iter(range(1, sql.count("?") + 1))
    return re.sub(r"\?", lambda _: f"${next(counter)}", sql)


def _migrations() -> list[tuple[int, str]]:
    folder = resources.files("node.storage") / _MIGRATIONS
    found = [
        (int(entry.name.split("_", 1)[0]), entry.read_text(encoding="utf-8"))
        for entry in folder.iterdir()
        if entry.name.endswith(".sql")
    ]
    return sorted(found)


class PostgresWriter:
    """One write transaction's connection, with the calls the store makes on SQLite's."""

    def __init__(self, conn: PoolConnectionProxy[asyncpg.Record]) -> None:
        self.conn = conn

    async def execute(self, sql: str, params: Iterable[Any] = ()) -> None:
        """Run one statement."""
        await self.conn.execute(numbered(sql), *params)

    async def executemany(self, sql: str, rows: Iterable[Sequence[Any]]) -> None:
        """Run one statement once per parameter row, pipelined (one round trip for the batch)."""
        batch = list(rows)
        if batch:
            await self.conn.executemany(numbered(sql), batch)

    async def inserted(self, sql: str, rows: Iterable[Sequence[Any]]) -> int:
        """Run an ``INSERT ... ON CONFLICT DO NOTHING`` once per row; how many rows it inserted."""
        batch = list(rows)
        if not batch:
            return 0
        return len(await self.conn.fetchmany(numbered(sql) + " RETURNING 1", batch))


class PostgresDatabase:
    """A pool of connections to the coordinator's PostgreSQL database."""

    def __init__(self, pool: asyncpg.Pool) -> None:
        self.pool = pool

    @classmethod
    async def open(cls, dsn: str) -> PostgresDatabase:
        """Connect to ``dsn`` and bring its schema up to date (replicas starting together migrate once)."""
        pool = await asyncpg.create_pool(dsn, min_size=1, max_size=8)
        db = cls(pool)
        try:
            await db._migrate()
        except BaseException:
            await pool.close()
            raise
        return db

    async def _migrate(self) -> None:
        async with self.pool.acquire() as conn, conn.transaction():
            await conn.execute("SELECT pg_advisory_xact_lock($1)", WRITE_LOCK)
            await conn.execute("CREATE TABLE IF NOT EXISTS schema_version (version integer NOT NULL)")
            current = await conn.fetchval("SELECT coalesce(max(version), 0) FROM schema_version")
            for number, script in _migrations():
                if number > current:
                    await conn.execute(script)
                    await conn.execute("INSERT INTO schema_version VALUES ($1)", number)

    async def close(self) -> None:
        """Close the pool's connections."""
        await self.pool.close()

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[PostgresWriter]:
        """A write transaction, serialised with every other writer of the database; commits on success, rolls
        back on any exception."""
        async with self.pool.acquire() as conn, conn.transaction():
            await conn.execute("SELECT pg_advisory_xact_lock($1)", WRITE_LOCK)
            yield PostgresWriter(conn)

    async def fetchone(self, sql: str, params: Iterable[Any] = ()) -> asyncpg.Record | None:
        """One row of a read query (committed data only)."""
        return await self.pool.fetchrow(numbered(sql), *params)

    async def fetchall(self, sql: str, params: Iterable[Any] = ()) -> list[asyncpg.Record]:
        """All rows of a read query (committed data only)."""
        return await self.pool.fetch(numbered(sql), *params)

    async def ping(self) -> None:
        """Raise unless the database answers a query (readiness)."""
        await self.pool.fetchval("SELECT 1")
