"""Browser sessions of officers (the node's console, the coordinator's dashboard): only the digest of a
session id is stored, so a copied database holds nothing that signs anyone in."""

from __future__ import annotations

from datetime import datetime
from typing import NamedTuple

from node.storage.database import SqlDatabase
from protocol.encoding import format_time, parse_time


class Session(NamedTuple):
    """A session, found by the digest of its id."""

    id_hash: str
    officer: str
    created_at: datetime
    expires_at: datetime


class Sessions:
    """Repository of browser sessions (the ``sessions`` table, in a node's SQLite file or the coordinator's
    PostgreSQL database)."""

    def __init__(self, db: SqlDatabase) -> None:
        self.db = db

    async def open_session(self, id_hash: str, officer: str, now: datetime, expires: datetime) -> None:
        """Start a session (and forget expired ones)."""
        async with self.db.transaction() as conn:
            await conn.execute("DELETE FROM sessions WHERE expires_at < ?", (format_time(now),))
            await conn.execute(
                "INSERT INTO sessions (id_hash, officer, created_at, expires_at) VALUES (?, ?, ?, ?)",
                (id_hash, officer, format_time(now), format_time(expires)),
            )

    async def session(self, id_hash: str) -> Session | None:
        """The session whose id has the digest ``id_hash``, expired or not."""
        row = await self.db.fetchone(
            "SELECT id_hash, officer, created_at, expires_at FROM sessions WHERE id_hash = ?", (id_hash,)
        )
        return Session(row[0], row[1], parse_time(row[2]), parse_time(row[3])) if row is not None else None

    async def extend_session(self, id_hash: str, expires: datetime) -> None:
        """Move a session's end (an officer's activity keeps an idle timeout from running out)."""
        async with self.db.transaction() as conn:
            await conn.execute(
                "UPDATE sessions SET expires_at = ? WHERE id_hash = ?", (format_time(expires), id_hash)
            )

    async def end_session(self, id_hash: str) -> None:
        """End a session."""
        async with self.db.transaction() as conn:
            await conn.execute("DELETE FROM sessions WHERE id_hash = ?", (id_hash,))
