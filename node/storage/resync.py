"""Re-sync after a restore: what a node still has to ask each peer for, and what a peer holds for a node.

Both sides of :mod:`node.resync` meet here. The asking side keeps, per peer, the time its history may be short
from and where the last page ended; the answering side reads what it holds for the asker: the envelopes it
sent the asker (with the asker's own receipts) and the asker's envelopes it received (with its receipts, and
when its officers read or acknowledged them). Pages are keyset-ordered by (delivered_at, sender, id), so a page
cut short or asked again returns the same rows.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from node.effects import Effect
from node.storage.database import Database, run_grouped
from node.storage.effects import statements
from protocol.encoding import canonical, format_time
from protocol.envelope import Envelope
from protocol.lifecycle import Folder, State, deadline
from protocol.models import Receipt

ALL_PEERS = "*"
"""The row a restore writes: "every peer of the roster", expanded at the node's next start."""

PARTS = ("sent_by_us", "sent_to_us")
"""The order a peer is asked in: our own messages first, so that its replies find the enquiries they answer."""

DONE = "done"


@dataclass(frozen=True)
class Pending:
    """One peer still to ask: from when, which part, after which row."""

    peer: str
    since: str
    part: str
    after: tuple[str, str, str] | None


@dataclass(frozen=True)
class Recovered:
    """A message we sent, as the peer holds it: our own envelope, verified, with the peer's verified receipt."""

    envelope: Envelope
    raw: bytes
    digest: str
    signer_key: bytes
    receipt: Receipt
    records: Sequence[Effect] = ()
    """Metadata records for the coordinator, queued only if the message was not held yet."""


@dataclass(frozen=True)
class Held:
    """One message a peer holds for the asker, as it is stored there (envelope bytes exactly as sent)."""

    envelope: bytes
    receipt: bytes | None
    read_at: str | None
    acknowledged_at: str | None
    cursor: tuple[str, str, str]


class ResyncStore:
    """Repository of the re-sync plan and of the rows a peer may be asked for."""

    def __init__(self, db: Database) -> None:
        self.db = db

    # -- the asking side --

    async def plan(self, since: datetime) -> None:
        """Ask every peer, at the next start, for what it holds for us since ``since`` (a restore was made)."""
        async with self.db.transaction() as conn:
            await conn.execute("DELETE FROM resync")
            await conn.execute(
                "INSERT INTO resync (peer, since) VALUES (?, ?)", (ALL_PEERS, format_time(since))
            )

    async def expand(self, peers: Sequence[str]) -> None:
        """Turn the restore's "every peer" row into one row per current peer (done once, at start)."""
        async with self.db.transaction() as conn:
            async with conn.execute("SELECT since FROM resync WHERE peer = ?", (ALL_PEERS,)) as cursor:
                row = await cursor.fetchone()
            if row is None:
                return
            await conn.executemany(
                "INSERT OR IGNORE INTO resync (peer, since) VALUES (?, ?)", [(p, row[0]) for p in peers]
            )
            await conn.execute("DELETE FROM resync WHERE peer = ?", (ALL_PEERS,))

    async def pending(self) -> list[Pending]:
        """Peers not yet asked for everything."""
        rows = await self.db.fetchall(
            "SELECT peer, since, part, after FROM resync WHERE part != ? AND peer != ? ORDER BY peer",
            (DONE, ALL_PEERS),
        )
        return [Pending(r[0], r[1], r[2], tuple(json.loads(r[3])) if r[3] else None) for r in rows]

    async def advance(self, peer: str, part: str, after: tuple[str, str, str] | None, now: datetime) -> None:
        """The page ending at ``after`` of ``part`` is stored (``after`` None: the part is complete)."""
        async with self.db.transaction() as conn:
            if after is None:
                following = PARTS[PARTS.index(part) + 1] if part != PARTS[-1] else DONE
                await conn.execute(
                    "UPDATE resync SET part = ?, after = NULL, done_at = ? WHERE peer = ?",
                    (following, format_time(now) if following == DONE else None, peer),
                )
            else:
                await conn.execute("UPDATE resync SET after = ? WHERE peer = ?", (json.dumps(after), peer))

    async def status(self) -> list[tuple[str, str, str, str | None]]:
        """(peer, since, part, done_at) of every row: what an operator checks after a restore."""
        rows = await self.db.fetchall("SELECT peer, since, part, done_at FROM resync ORDER BY peer")
        return [(r[0], r[1], r[2], r[3]) for r in rows]

    async def recover_sent(self, items: Sequence[Recovered]) -> int:
        """Store messages of our sent folder recovered from the peer, delivered, each with its records for the
        coordinator; one already held is left as it is (and queues nothing). Returns how many were new."""
        added = 0
        async with self.db.transaction() as conn:
            for item in items:
                header = item.envelope.header
                received = item.receipt.received_at
                due = deadline(header.kind, header.urgency, received)
                async with conn.execute(
                    "INSERT OR IGNORE INTO messages (id, thread, folder, kind, sender, recipient, peer, area, "
                    "urgency, created_at, due_at, in_reply_to, envelope, envelope_digest, signer_key, state, "
                    "receipt, queued_at, sent_at, delivered_at) "
                    "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    (
                        header.id,
                        header.thread,
                        Folder.SENT.value,
                        header.kind.value,
                        header.sender,
                        header.recipient,
                        header.recipient,
                        header.area.value,
                        header.urgency.value,
                        format_time(header.created_at),
                        format_time(due) if due else None,
                        header.in_reply_to,
                        item.raw,
                        item.digest,
                        item.signer_key,
                        State.DELIVERED.value,
                        canonical(item.receipt.wire()),
                        format_time(header.created_at),
                        format_time(received),
                        format_time(received),
                    ),
                ) as cursor:
                    new = cursor.rowcount == 1
                if new:
                    added += 1
                    await run_grouped(conn, statements(item.records))
        return added

    # -- the answering side --

    async def held_for(
        self,
        asker: str,
        part: str,
        since: str,
        after: tuple[str, str, str] | None,
        limit: int,
        budget: int,
    ) -> list[Held]:
        """A page of what we hold for ``asker`` since ``since``: ``sent_by_us`` is what the asker sent us (our
        inbox), ``sent_to_us`` what we sent it (our sent folder; "us" is the asker). Only messages whose
        receipt is held, whose body is not purged; at most ``limit`` rows, and rows past ``budget`` envelope
        bytes wait for the next page (one always goes)."""
        if part == "sent_by_us":
            where = "folder = ? AND sender = ?"
            params: list[Any] = [Folder.INBOX.value, asker]
        else:
            where = "folder = ? AND peer = ? AND state != ?"
            params = [Folder.SENT.value, asker, State.UNDELIVERABLE.value]
        where += " AND receipt IS NOT NULL AND purged_at IS NULL AND delivered_at >= ?"
        params.append(since)
        if after is not None:
            where += " AND (delivered_at, sender, id) > (?, ?, ?)"
            params.extend(after)
        rows = await self.db.fetchall(
            "SELECT envelope, receipt, read_at, acknowledged_at, delivered_at, sender, id "  # noqa: S608 - fixed fragments
            f"FROM messages WHERE {where} ORDER BY delivered_at, sender, id LIMIT ?",
            (*params, limit),
        )
        page: list[Held] = []
        size = 0
        for row in rows:
            size += len(row[0])
            if page and size > budget:
                break
            page.append(Held(row[0], row[1], row[2], row[3], (row[4], row[5], row[6])))
        return page
