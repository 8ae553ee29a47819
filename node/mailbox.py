"""Messages and the outbox in SQLite: what was sent and received, and what still has to go out.

Message states only ever move forward (``STATE_ORDER``); a late or repeated notice never moves one back.
Every method that changes state is one transaction, so an acknowledgement given after it returns is true.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from node.storage.database import Database, Row, Statement
from protocol.compose import Outgoing
from protocol.encoding import canonical, digest_text, format_time
from protocol.envelope import Envelope
from protocol.errors import NotFound, Replayed
from protocol.models import Receipt

STATE_ORDER = ("queued", "sent", "received", "delivered", "read", "answered")
"""Forward order of message states; ``undeliverable`` is terminal and outside it."""

SUMMARY_COLUMNS = (
    "id, thread, folder, kind, sender, recipient, peer, area, urgency, created_at, due_at, in_reply_to, "
    "state, queued_at, sent_at, delivered_at, read_at, answered_at, last_error, officer, envelope_digest"
)


def _advance(column_state: str, new: str) -> str:
    """SQL expression: ``new`` if it is further along than the stored state, else the stored state."""
    rank = STATE_ORDER.index(new)
    cases = " ".join(f"WHEN '{s}' THEN {i}" for i, s in enumerate(STATE_ORDER))
    return (
        f"CASE WHEN (CASE {column_state} {cases} ELSE 99 END) < {rank} THEN '{new}' ELSE {column_state} END"
    )


def outbox_row(peer: str, item: str, ref: str, payload: bytes, queued_at: float | None = None) -> Statement:
    """The statement that queues one item for ``peer`` (run inside the transaction that makes it due)."""
    return (
        "INSERT INTO outbox (peer, item, ref, payload, queued_at) VALUES (?, ?, ?, ?, ?)",
        (peer, item, ref, payload, time.time() if queued_at is None else queued_at),
    )


def _mark_statement(
    message_id: str, state: str, stamp: str, folder: str, peer: str | None = None
) -> Statement:
    """Move a message forward to ``state`` (never back), stamping ``<state>_at`` once."""
    column = f"{state}_at"
    sql = (
        f"UPDATE messages SET state = {_advance('state', state)}, {column} = coalesce({column}, ?) "  # noqa: S608 - constant SQL
        "WHERE id = ? AND folder = ? AND state != 'undeliverable'"
    )
    params: list[Any] = [stamp, message_id, folder]
    if peer is not None:
        sql += " AND peer = ?"
        params.append(peer)
    return sql, tuple(params)


@dataclass(frozen=True)
class Accepted:
    """An envelope that passed every check, with the receipt to store and return."""

    envelope: Envelope
    raw: bytes
    receipt: Receipt
    signer_key: bytes
    records: Sequence[Statement] = ()
    """Metadata-record outbox rows to queue if (and only if) this envelope is new."""


@dataclass(frozen=True)
class OutboxItem:
    """One row of the outbox."""

    seq: int
    peer: str
    item: str
    ref: str
    payload: bytes
    queued_at: float


class Mailbox:
    """Repository of messages and outbox rows."""

    def __init__(self, db: Database) -> None:
        self.db = db

    # -- outgoing --

    async def store_outgoing(
        self,
        items: Sequence[Outgoing],
        officer: str,
        signer_key: bytes,
        now: datetime,
        extra: Sequence[Statement] = (),
    ) -> None:
        """Record new messages in the sent folder and queue their envelopes, atomically with ``extra``.

        Group-committed with concurrent submissions (see :meth:`Database.write`).
        """
        stamp = format_time(now)
        queued = time.time()
        statements: list[Statement] = []
        for out in items:
            header = out.envelope.header
            raw = out.envelope.canonical_bytes()
            statements.append(
                (
                    "INSERT INTO messages (id, thread, folder, kind, sender, recipient, peer, area, urgency, "
                    "created_at, due_at, in_reply_to, envelope, envelope_digest, local_sealed, signer_key, "
                    "state, officer, queued_at) VALUES (?, ?, 'sent', ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, "
                    "'queued', ?, ?)",
                    (
                        header.id,
                        header.thread,
                        header.kind.value,
                        header.sender,
                        header.recipient,
                        header.recipient,
                        header.area.value,
                        header.urgency.value,
                        format_time(header.created_at),
                        format_time(header.due_at) if header.due_at else None,
                        header.in_reply_to,
                        raw,
                        digest_text(raw),
                        out.local_sealed,
                        signer_key,
                        officer,
                        stamp,
                    ),
                )
            )
            statements.append(outbox_row(header.recipient, "envelope", header.id, raw, queued))
            if header.in_reply_to:
                statements.append(_mark_statement(header.in_reply_to, "answered", stamp, folder="inbox"))
        statements.extend(extra)
        await self.db.write(statements)

    async def oldest_queued(self, peer: str, after_seq: int = 0) -> tuple[int, float | None]:
        """How many rows wait for ``peer`` behind ``after_seq``, and since when (the lag a node reports)."""
        row = await self.db.fetchone(
            "SELECT count(*), min(queued_at) FROM outbox WHERE peer = ? AND seq > ?", (peer, after_seq)
        )
        return (row[0], row[1]) if row else (0, None)

    async def due_items(self, peer: str, limit: int) -> list[OutboxItem]:
        """The oldest outbox rows for ``peer``."""
        rows = await self.db.fetchall(
            "SELECT seq, peer, item, ref, payload, queued_at FROM outbox WHERE peer = ? ORDER BY seq LIMIT ?",
            (peer, limit),
        )
        return [OutboxItem(r[0], r[1], r[2], r[3], r[4], r[5]) for r in rows]

    async def peers_with_backlog(self) -> list[str]:
        """Peers that have anything queued."""
        return [r[0] for r in await self.db.fetchall("SELECT DISTINCT peer FROM outbox")]

    async def backlog(self) -> dict[str, int]:
        """Outbox size per peer."""
        rows = await self.db.fetchall("SELECT peer, count(*) FROM outbox GROUP BY peer")
        return {r[0]: r[1] for r in rows}

    async def mark_sent(self, ids: Sequence[str], now: datetime) -> None:
        """Envelopes handed to the peer for the first time (awaiting its receipt)."""
        if not ids:
            return
        marks = ",".join("?" * len(ids))
        async with self.db.transaction() as conn:
            await conn.execute(
                f"UPDATE messages SET state = 'sent', sent_at = ? WHERE state = 'queued' AND id IN ({marks})",  # noqa: S608 - placeholders only
                (format_time(now), *ids),
            )

    async def settle(
        self,
        delivered: Sequence[tuple[int, str, Receipt]],
        done: Sequence[int],
        failed: Sequence[tuple[int, str, str]],
        attempted: Sequence[int],
        now: datetime,
        extra: Sequence[Statement] = (),
    ) -> None:
        """Apply the outcome of one delivery request in one transaction.

        ``delivered``: (seq, message id, verified receipt); ``done``: rows acknowledged with nothing to record;
        ``failed``: (seq, message id, error code) refused for good; ``attempted``: rows to retry later;
        ``extra``: statements (metadata records) that belong to the same outcome.
        """
        stamp = format_time(now)
        async with self.db.transaction() as conn:
            for seq, message_id, receipt in delivered:
                await conn.execute(
                    f"UPDATE messages SET state = {_advance('state', 'delivered')}, receipt = ?, "  # noqa: S608 - constant SQL
                    "delivered_at = coalesce(delivered_at, ?), last_error = NULL WHERE id = ? AND folder = 'sent'",
                    (canonical(receipt.wire()), stamp, message_id),
                )
                await conn.execute("DELETE FROM outbox WHERE seq = ?", (seq,))
            for seq in done:
                await conn.execute("DELETE FROM outbox WHERE seq = ?", (seq,))
            for seq, message_id, code in failed:
                await conn.execute(
                    "UPDATE messages SET state = 'undeliverable', last_error = ? WHERE id = ? AND folder = 'sent' "
                    "AND receipt IS NULL",
                    (code, message_id),
                )
                await conn.execute("DELETE FROM outbox WHERE seq = ?", (seq,))
            for seq in attempted:
                await conn.execute("UPDATE outbox SET attempts = attempts + 1 WHERE seq = ?", (seq,))
            for sql, params in extra:
                await conn.execute(sql, params)

    async def record_delivery_error(self, ids: Sequence[str], error: str) -> None:
        """Keep the last transport error on queued messages so that officers see why they wait."""
        if not ids:
            return
        marks = ",".join("?" * len(ids))
        async with self.db.transaction() as conn:
            await conn.execute(
                f"UPDATE messages SET last_error = ? WHERE id IN ({marks})",  # noqa: S608 - placeholders only
                (error, *ids),
            )

    # -- incoming --

    async def accept(self, batch: Sequence[Accepted], now: datetime) -> list[Receipt | Replayed]:
        """Store received envelopes and their receipts; identical repeats get the original receipt back."""
        stamp = format_time(now)
        results: list[Receipt | Replayed] = []
        async with self.db.transaction() as conn:
            for item in batch:
                header = item.envelope.header
                async with conn.execute(
                    "SELECT folder, envelope, receipt FROM messages WHERE id = ?", (header.id,)
                ) as cursor:
                    existing = await cursor.fetchone()
                if existing is not None:
                    if existing[0] == "inbox" and existing[1] == item.raw and existing[2] is not None:
                        results.append(Receipt.model_validate_json(existing[2]))
                    else:
                        results.append(Replayed())
                    continue
                await conn.execute(
                    "INSERT INTO messages (id, thread, folder, kind, sender, recipient, peer, area, urgency, "
                    "created_at, due_at, in_reply_to, envelope, envelope_digest, signer_key, state, receipt, "
                    "queued_at, delivered_at) VALUES (?, ?, 'inbox', ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, "
                    "'received', ?, ?, ?)",
                    (
                        header.id,
                        header.thread,
                        header.kind.value,
                        header.sender,
                        header.recipient,
                        header.sender,
                        header.area.value,
                        header.urgency.value,
                        format_time(header.created_at),
                        format_time(header.due_at) if header.due_at else None,
                        header.in_reply_to,
                        item.raw,
                        item.envelope.digest(),
                        item.signer_key,
                        canonical(item.receipt.wire()),
                        stamp,
                        stamp,
                    ),
                )
                if header.in_reply_to:
                    await conn.execute(
                        *_mark_statement(
                            header.in_reply_to, "answered", stamp, folder="sent", peer=header.sender
                        )
                    )
                for sql, params in item.records:
                    await conn.execute(sql, params)
                results.append(item.receipt)
        return results

    async def apply_status(self, peer: str, message_id: str, state: str, at: datetime) -> None:
        """A peer tells us it read a message we sent it."""
        async with self.db.transaction() as conn:
            await conn.execute(*_mark_statement(message_id, state, format_time(at), folder="sent", peer=peer))

    async def mark_read(self, message_id: str, now: datetime, extra: Sequence[Statement] = ()) -> bool:
        """An officer opened a received message; returns False when it was read before."""
        row = await self.db.fetchone(
            "SELECT read_at FROM messages WHERE id = ? AND folder = 'inbox'", (message_id,)
        )
        if row is None:
            raise NotFound
        if row[0] is not None:
            return False
        async with self.db.transaction() as conn:
            await conn.execute(*_mark_statement(message_id, "read", format_time(now), folder="inbox"))
            for sql, params in extra:
                await conn.execute(sql, params)
        return True

    # -- reading --

    async def get(self, message_id: str) -> Row:
        """One message row (all columns), or NotFound."""
        row = await self.db.fetchone("SELECT * FROM messages WHERE id = ?", (message_id,))
        if row is None:
            raise NotFound
        return row

    async def thread(self, thread_id: str) -> list[Row]:
        """Every message of a thread, oldest first."""
        return await self.db.fetchall(
            "SELECT * FROM messages WHERE thread = ? ORDER BY created_at, id", (thread_id,)
        )

    async def listing(
        self,
        folder: str,
        *,
        peer: str | None,
        state: str | None,
        area: str | None,
        overdue_at: str | None,
        after: tuple[str, str] | None,
        limit: int,
    ) -> list[Row]:
        """Summaries of a folder, newest first, keyset-paginated by (created_at, id)."""
        where = []
        params: list[Any] = []
        if folder == "outbox":
            where.append("folder = 'sent' AND state IN ('queued', 'sent')")
        else:
            where.append("folder = ?")
            params.append(folder)
        if peer:
            where.append("peer = ?")
            params.append(peer)
        if state:
            where.append("state = ?")
            params.append(state)
        if area:
            where.append("area = ?")
            params.append(area)
        if overdue_at:
            where.append(
                "kind = 'enquiry' AND answered_at IS NULL AND state != 'undeliverable' AND due_at < ?"
            )
            params.append(overdue_at)
        if after:
            where.append("(created_at, id) < (?, ?)")
            params.extend(after)
        sql = (
            f"SELECT {SUMMARY_COLUMNS} FROM messages WHERE {' AND '.join(where)} "  # noqa: S608 - fixed fragments
            "ORDER BY created_at DESC, id DESC LIMIT ?"
        )
        return await self.db.fetchall(sql, (*params, limit))
