"""Retention: the bodies of old messages leave the database; what the period report needs of them stays.

A purged message keeps its row: kind, parties, area, urgency, times, states, envelope digest and the signed
receipt, so the node's figures and the evidence of each exchange are unchanged. Its envelope keeps only the
clear header and the sender's signature (the sealed body is emptied) and the sender's own sealed copy is
dropped. The file is written with ``secure_delete`` (see :class:`~node.storage.database.Database`) and its
write-ahead log is truncated after a purge, so the bodies' bytes are gone from the disk files too.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from node.effects import Audit
from node.storage.database import Database
from node.storage.effects import statement
from protocol.encoding import format_time
from protocol.envelope import Envelope

BATCH = 500
"""Messages purged per transaction: the node's other writers wait for one batch at most."""


@dataclass(frozen=True)
class Purgeable:
    """What a purge removes (or, dry, would remove)."""

    messages: int
    bytes: int


class Retention:
    """Repository of the purge."""

    def __init__(self, db: Database) -> None:
        self.db = db

    async def purgeable(self, cutoff: datetime) -> Purgeable:
        """Messages created before ``cutoff`` whose bodies are still held, and their sealed bytes."""
        row = await self.db.fetchone(
            "SELECT count(*), coalesce(sum(length(envelope) + coalesce(length(local_sealed), 0)), 0) "
            "FROM messages WHERE created_at < ? AND purged_at IS NULL",
            (format_time(cutoff),),
        )
        return Purgeable(row[0], row[1]) if row else Purgeable(0, 0)

    async def purge(self, cutoff: datetime, now: datetime, actor: str, days: int) -> Purgeable:
        """Purge the bodies of messages created before ``cutoff``, in batches, each audited with its count."""
        total = Purgeable(0, 0)
        while True:
            async with self.db.transaction() as conn:
                async with conn.execute(
                    "SELECT rowid, envelope, length(envelope) + coalesce(length(local_sealed), 0) "
                    "FROM messages WHERE created_at < ? AND purged_at IS NULL LIMIT ?",
                    (format_time(cutoff), BATCH),
                ) as cursor:
                    rows = list(await cursor.fetchall())
                if not rows:
                    break
                stamp = format_time(now)
                await conn.executemany(
                    "UPDATE messages SET envelope = ?, local_sealed = NULL, purged_at = ? WHERE rowid = ?",
                    [(_header_only(row[1]), stamp, row[0]) for row in rows],
                )
                removed = sum(row[2] for row in rows)
                outcome = f"ok: {len(rows)} message(s), {removed} bytes, older than {days} days"
                await conn.execute(*statement(Audit(now, actor, "purge_bodies", None, outcome)))
            total = Purgeable(total.messages + len(rows), total.bytes + removed)
        if total.messages:
            await self.db.checkpoint()
        return total


def _header_only(raw: bytes) -> bytes:
    """The stored envelope without its sealed body: header and signature, still parseable as an envelope."""
    envelope = Envelope.model_validate_json(raw)
    return envelope.model_copy(update={"sealed": b""}).canonical_bytes()
