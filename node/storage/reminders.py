"""Reminders a country node received from its coordinator (a missing outcome return), kept for its officers."""

from __future__ import annotations

from typing import NamedTuple

from node.storage.database import Database


class Reminder(NamedTuple):
    """One reminder as officers see it; times are RFC 3339 texts."""

    period: str
    coordinator: str
    about: str
    sent_at: str
    received_at: str


class Reminders:
    """Repository of received reminders, newest first."""

    def __init__(self, db: Database) -> None:
        self.db = db

    async def keep(self, reminder: Reminder) -> None:
        """Store a verified reminder."""
        async with self.db.transaction() as conn:
            await conn.execute(
                "INSERT INTO reminders (period, coordinator, about, sent_at, received_at) VALUES (?, ?, ?, ?, ?)",
                reminder,
            )

    async def recent(self, limit: int = 100) -> list[Reminder]:
        """The last ``limit`` reminders received, newest first."""
        rows = await self.db.fetchall(
            "SELECT period, coordinator, about, sent_at, received_at FROM reminders ORDER BY seq DESC LIMIT ?",
            (limit,),
        )
        return [Reminder._make(tuple(r)) for r in rows]
