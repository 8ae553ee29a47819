"""Every roster version a node accepted, kept so that a restart can never roll back to an older one."""

from __future__ import annotations

from datetime import datetime

from node.storage.database import Database
from protocol.encoding import format_time


class RosterStore:
    """Repository of accepted rosters (signed bytes as received, newest wins)."""

    def __init__(self, db: Database) -> None:
        self.db = db

    async def newest(self) -> bytes | None:
        """The signed bytes of the newest roster accepted, if any."""
        row = await self.db.fetchone("SELECT roster FROM rosters ORDER BY version DESC LIMIT 1")
        return bytes(row["roster"]) if row is not None else None

    async def keep(self, version: int, signed: bytes, accepted_at: datetime) -> None:
        """Remember an accepted version (a version already kept is left as it was)."""
        async with self.db.transaction() as conn:
            await conn.execute(
                "INSERT OR IGNORE INTO rosters (version, roster, accepted_at) VALUES (?, ?, ?)",
                (version, signed, format_time(accepted_at)),
            )
