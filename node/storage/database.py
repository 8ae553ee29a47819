"""The node's SQLite file: WAL, full sync, numbered migrations, one writer at a time.

Every write happens inside :meth:`Database.transaction`, which takes an asyncio lock and a ``BEGIN IMMEDIATE``
so that a response or a receipt is only ever sent after the ``COMMIT`` that makes it true. With
``synchronous=FULL`` the commit has reached the disk when it returns: a message acknowledged survives a crash.
"""

from __future__ import annotations

import asyncio
import contextlib
import sqlite3
from collections.abc import AsyncIterator, Iterable, Sequence
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from importlib import resources
from pathlib import Path
from typing import Any, Protocol

import aiosqlite

from protocol.errors import SchemaTooNew, StorageFull
from protocol.lifecycle import Folder, State
from protocol.matching import Role as MatchRole
from protocol.matching import State as MatchState

Row = aiosqlite.Row
Statement = tuple[str, tuple[Any, ...]]
"""One SQL statement with its parameters, to be run inside a caller's transaction."""


class SqlDatabase(Protocol):
    """What a repository shared by SQLite and PostgreSQL (the coordinator's) needs of its database: statements
    written with ``?`` placeholders, rows indexed by position."""

    def transaction(self) -> AbstractAsyncContextManager[Any]:
        """A write transaction whose connection has ``execute(sql, params)`` and ``executemany(sql, rows)``."""
        ...

    async def fetchone(self, sql: str, params: Iterable[Any] = ()) -> Any:
        """One row of a read query, or None."""
        ...

    async def fetchall(self, sql: str, params: Iterable[Any] = ()) -> list[Any]:
        """All rows of a read query."""
        ...

    async def ping(self) -> None:
        """Raise unless the database answers."""
        ...


def _quoted(values: Iterable[str]) -> str:
    return ", ".join(f"'{v}'" for v in sorted(values))


ENUMS = {
    "folders": _quoted(Folder),
    "states": _quoted(State),
    "match_roles": _quoted(MatchRole),
    "match_states": _quoted(MatchState),
}
"""What a migration may name in braces: the state machines' enums, so that a ``CHECK`` never drifts from them."""


def _migrations() -> list[tuple[int, str]]:
    folder = resources.files("node.storage") / "migrations"
    found = []
    for entry in folder.iterdir():
        if entry.name.endswith(".sql"):
            script = entry.read_text(encoding="utf-8")
            for name, value in ENUMS.items():
                script = script.replace("{" + name + "}", value)
            found.append((int(entry.name.split("_", 1)[0]), script))
    return sorted(found)


async def run_grouped(conn: aiosqlite.Connection, batch: Sequence[Statement]) -> None:
    """Run statements in order, consecutive ones with the same SQL in one call (one thread hop, not many)."""
    index = 0
    while index < len(batch):
        sql = batch[index][0]
        end = index
        while end < len(batch) and batch[end][0] == sql:
            end += 1
        await conn.executemany(sql, [params for _, params in batch[index:end]])
        index = end


class Database:
    """A writer connection shared by the node's tasks, and a reader that only ever sees committed data.

    Reads never go through the writer: a read made there between two statements of a transaction would see
    (and could hand an officer) a state that is rolled back a moment later. In WAL mode the reader works
    beside the writer and sees the last commit.
    """

    def __init__(self, conn: aiosqlite.Connection) -> None:
        self.conn = conn
        self.reader: aiosqlite.Connection | None = None
        self.full = False
        """The last write failed for want of disk space (cleared by the next commit that succeeds)."""
        self._lock = asyncio.Lock()
        self._waiting: list[tuple[Sequence[Statement], asyncio.Future[None]]] = []
        self._flusher: asyncio.Task[None] | None = None

    @classmethod
    async def open(cls, path: Path) -> Database:
        """Open (creating and migrating when needed) the database at ``path``."""
        path.parent.mkdir(parents=True, exist_ok=True)
        conn = await aiosqlite.connect(path, isolation_level=None)
        conn.row_factory = aiosqlite.Row
        await conn.execute("PRAGMA journal_mode=WAL")
        await conn.execute("PRAGMA synchronous=FULL")
        await conn.execute("PRAGMA foreign_keys=ON")
        await conn.execute("PRAGMA busy_timeout=5000")
        # Freed pages are zeroed: a purged body (retention) leaves no copy in the file's free space.
        await conn.execute("PRAGMA secure_delete=ON")
        db = cls(conn)
        try:
            await db._migrate(path)
        except BaseException:
            await conn.close()
            raise
        await asyncio.to_thread(path.chmod, 0o600)
        db.reader = await aiosqlite.connect(f"file:{path}?mode=ro", uri=True, isolation_level=None)
        db.reader.row_factory = aiosqlite.Row
        await db.reader.execute("PRAGMA busy_timeout=5000")
        return db

    async def _migrate(self, path: Path) -> None:
        """Bring the file to this release's schema, copying it first; refuse a schema this release does not know.

        A newer schema comes from a later release: its tables may mean things this code would get wrong, so
        the node does not start on it. Before the first migration of an existing file a copy is taken beside it
        (``node.db.before-<version>``), the way back if the new release has to be withdrawn.
        """
        await self.conn.execute("CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL)")
        current = await self.schema_version()
        known = _migrations()
        latest = known[-1][0]
        if current > latest:
            raise SchemaTooNew(
                f"the database {path.name} has schema version {current} but this release knows only up to "
                f"{latest}: run the release that wrote it (or a later one), or restore a backup made for this one"
            )
        pending = [(number, script) for number, script in known if number > current]
        if pending and current > 0:
            await asyncio.to_thread(
                copy_database, path, path.with_name(f"{path.name}.before-{pending[0][0]:04d}")
            )
        for number, script in pending:
            await self.conn.executescript(
                f"BEGIN IMMEDIATE;\n{script}\nINSERT INTO schema_version VALUES ({number});\nCOMMIT;"
            )

    async def schema_version(self) -> int:
        """The last migration applied to this file (0: a new file)."""
        row = await self.fetchone("SELECT max(version) AS v FROM schema_version")
        return int(row["v"]) if row and row["v"] is not None else 0

    async def checkpoint(self) -> None:
        """Fold the write-ahead log into the file and truncate it: after a purge, no old page stays in the log."""
        async with self._lock:
            await self.conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")

    async def close(self) -> None:
        """Close the connections (a clean shutdown; a kill is also safe)."""
        if self.reader is not None:
            await self.reader.close()
        await self.conn.close()

    async def _begin(self) -> None:
        """BEGIN, undone if the caller is cancelled meanwhile: the statement still runs on the connection's
        thread after a cancelled await, and would leave every later write "within a transaction"."""
        begin = asyncio.ensure_future(self.conn.execute("BEGIN IMMEDIATE"))
        try:
            await asyncio.shield(begin)
        except asyncio.CancelledError:
            with contextlib.suppress(Exception):
                await begin
            if self.conn.in_transaction:
                await self.conn.execute("ROLLBACK")
            raise

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[aiosqlite.Connection]:
        """Serialised write transaction; commits on success, rolls back on any exception.

        A full disk surfaces as :class:`StorageFull` (nothing of the transaction is stored) and marks the
        database full until a later commit succeeds.
        """
        async with self._lock:
            try:
                await self._begin()
                try:
                    yield self.conn
                except BaseException:
                    if self.conn.in_transaction:
                        await self.conn.execute("ROLLBACK")
                    raise
                await self.conn.execute("COMMIT")
            except sqlite3.OperationalError as exc:
                if exc.sqlite_errorcode != sqlite3.SQLITE_FULL:
                    raise
                if self.conn.in_transaction:
                    await self.conn.execute("ROLLBACK")
                self.full = True
                raise StorageFull(
                    "the node's disk is full and nothing was stored: the operator must free space"
                ) from exc
            self.full = False

    async def writable(self, now: str) -> bool:
        """Whether a write commits now: after a full disk, rewrites one row to find out (readiness)."""
        if not self.full:
            return True
        try:
            async with self.transaction() as conn:
                await conn.execute("INSERT OR REPLACE INTO readiness (id, at) VALUES (1, ?)", (now,))
        except StorageFull:
            return False
        return True

    async def write(self, statements: Sequence[Statement]) -> None:
        """Run ``statements`` atomically, sharing one commit with concurrent callers (group commit).

        For inserts whose order does not matter (they may be reordered to share calls). Returns once the commit
        that contains them has reached the disk. Under load, every caller that arrives
        while a commit is in progress joins the next one, so one fsync serves many officers' submissions; a
        caller alone is committed at once. If a group fails, each member is retried in a transaction of its
        own, so one caller's bad statement never fails another's.
        """
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._waiting.append((statements, future))
        if self._flusher is None or self._flusher.done():
            self._flusher = asyncio.create_task(self._flush())
        await future

    async def _flush(self) -> None:
        while self._waiting:
            group, self._waiting = self._waiting, []
            try:
                # Callers queue inserts whose order does not matter: like statements go together, one call each.
                batch = sorted((s for statements, _ in group for s in statements), key=lambda s: s[0])
                async with self.transaction() as conn:
                    await run_grouped(conn, batch)
            except Exception:
                for statements, future in group:
                    await self._alone(statements, future)
                continue
            for _, future in group:
                if not future.done():
                    future.set_result(None)

    async def _alone(self, statements: Sequence[Statement], future: asyncio.Future[None]) -> None:
        try:
            async with self.transaction() as conn:
                for sql, params in statements:
                    await conn.execute(sql, params)
        except Exception as exc:
            if not future.done():
                future.set_exception(exc)
        else:
            if not future.done():
                future.set_result(None)

    async def ping(self) -> None:
        """Raise unless the file answers a query (readiness)."""
        await self.fetchone("SELECT 1")

    async def fetchone(self, sql: str, params: Iterable[Any] = ()) -> Row | None:
        """One row of a read query (committed data only)."""
        rows = await (self.reader or self.conn).execute_fetchall(sql, tuple(params))
        return next(iter(rows), None)

    async def fetchall(self, sql: str, params: Iterable[Any] = ()) -> list[Row]:
        """All rows of a read query (committed data only), in one call to the reader's thread."""
        return list(await (self.reader or self.conn).execute_fetchall(sql, tuple(params)))


def copy_database(source: Path, target: Path) -> int:
    """A consistent copy of the SQLite file ``source`` at ``target`` (mode 0600), taken while writers go on;
    returns the copy's schema version.

    SQLite's online backup reads one snapshot of the file and its WAL, which a plain file copy does not: commits
    still in the WAL would be lost. The copy is written beside ``target`` and renamed into place, so an
    interrupted copy never leaves a half file under the final name.
    """
    partial = target.with_name(target.name + ".partial")
    partial.unlink(missing_ok=True)
    reader = sqlite3.connect(f"file:{source}?mode=ro", uri=True)
    try:
        copy = sqlite3.connect(partial)
        try:
            reader.backup(copy)
            copy.execute("PRAGMA journal_mode=DELETE")
            row = copy.execute("SELECT max(version) FROM schema_version").fetchone()
        finally:
            copy.close()
    finally:
        reader.close()
    partial.chmod(0o600)
    partial.replace(target)
    return int(row[0]) if row and row[0] is not None else 0


def holds_data(path: Path) -> bool:
    """Whether a database file exists and holds anything a node stored (a schema alone does not count)."""
    if not path.exists():
        return False
    conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        tables = [r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")]
        return any(
            conn.execute(f'SELECT 1 FROM "{name}" LIMIT 1').fetchone()  # noqa: S608 - names from the schema
            for name in tables
            if name not in ("schema_version", "sqlite_sequence")
        )
    finally:
        conn.close()
