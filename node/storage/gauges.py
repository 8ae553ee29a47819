"""What a scrape of ``/metrics`` reads from the node's own tables: counts and ages, never a row's contents.

Read at scrape time rather than kept in memory, so the figures are those of the database (after a restart, a
restore or an operator's command as much as after this process's own work).
"""

from __future__ import annotations

from dataclasses import dataclass

from node.storage.database import Database


@dataclass(frozen=True)
class Queued:
    """The outbox rows of one kind waiting for one peer."""

    peer: str
    item: str
    """``envelope``, ``status``, ``record`` or ``outcome``."""
    count: int
    oldest: float
    """When the oldest of them was queued (Unix time)."""


class Gauges:
    """Repository of the figures the metrics collector reads."""

    def __init__(self, db: Database) -> None:
        self.db = db

    async def messages(self) -> dict[tuple[str, str, str], int]:
        """Stored messages per (folder, kind, state)."""
        rows = await self.db.fetchall(
            "SELECT folder, kind, state, count(*) FROM messages GROUP BY folder, kind, state"
        )
        return {(r[0], r[1], r[2]): r[3] for r in rows}

    async def queued(self) -> list[Queued]:
        """The outbox per peer and kind of item, with the age of its oldest row."""
        rows = await self.db.fetchall(
            "SELECT peer, item, count(*), min(queued_at) FROM outbox GROUP BY peer, item ORDER BY peer, item"
        )
        return [Queued(r[0], r[1], r[2], r[3]) for r in rows]
