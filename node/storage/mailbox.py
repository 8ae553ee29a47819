"""Messages and the outbox in SQLite: what was sent and received, and what still has to go out.

States are written only through the lifecycle table (:mod:`protocol.lifecycle`): a late or repeated notice
never moves a message back. Every method that changes state is one transaction, so an acknowledgement given
after it returns is true. Messages are keyed by (sender, id): an id is unique only per sender.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import aiosqlite

from node.effects import Effect, Enqueue
from node.storage.database import Database, Row, Statement, run_grouped
from node.storage.effects import statement, statements
from protocol.codes import Kind
from protocol.compose import Outgoing
from protocol.encoding import canonical, digest_text, format_time, parse_time
from protocol.envelope import Envelope
from protocol.errors import Conflict, InvalidState, NotFound, Replayed, StoredQuotaExceeded
from protocol.lifecycle import (
    ACKNOWLEDGEABLE,
    ANSWERABLE,
    INITIAL,
    WITH_DEADLINE,
    Event,
    Folder,
    State,
    Step,
    deadline,
    is_overdue,
    step,
)
from protocol.models import Receipt

SUMMARY_COLUMNS = (
    "id, thread, folder, kind, sender, recipient, peer, area, urgency, created_at, due_at, in_reply_to, "
    "state, queued_at, sent_at, delivered_at, read_at, answered_at, acknowledged_at, last_error, officer, "
    "envelope_digest, purged_at"
)
STORED_COLUMNS = "envelope, local_sealed, signer_key, receipt"
"""What a full view adds to a summary: the sealed message as stored, and its proof of delivery."""

STAMPS: dict[Event, str] = {
    Event.TRANSMITTED: "sent_at",
    Event.RECEIPT: "delivered_at",
    Event.READ_NOTICE: "read_at",
    Event.OFFICER_READ: "read_at",
    Event.REPLY_RECEIVED: "answered_at",
    Event.REPLY_SENT: "answered_at",
    Event.ACKNOWLEDGEMENT: "acknowledged_at",
    Event.OFFICER_ACKNOWLEDGED: "acknowledged_at",
}
"""The time column an event fills once (the first time it happens, whether or not the state moves)."""

_IN_FLIGHT = ", ".join(f"'{s}'" for s in (State.QUEUED, State.SENT))
_WITH_DEADLINE = ", ".join(f"'{k}'" for k in sorted(WITH_DEADLINE))


@dataclass(frozen=True, slots=True)
class MessageView:
    """A stored message as the layers above see it: typed, with ``overdue`` decided once, by the lifecycle."""

    id: str
    thread: str
    folder: Folder
    kind: Kind
    sender: str
    recipient: str
    peer: str
    area: str
    urgency: str
    created_at: str
    due_at: str | None
    in_reply_to: str | None
    state: State
    queued_at: str
    sent_at: str | None
    delivered_at: str | None
    read_at: str | None
    answered_at: str | None
    acknowledged_at: str | None
    last_error: str | None
    officer: str | None
    envelope_digest: str
    purged_at: str | None
    """When the body was removed under the retention policy (the metadata stays)."""
    overdue: bool
    envelope: bytes = b""
    """The envelope exactly as sent or received (full views only)."""
    local_sealed: bytes | None = None
    """Sent folder: the body sealed to our own key, so that we can show what we sent."""
    signer_key: bytes = b""
    receipt: bytes | None = None

    @classmethod
    def of(cls, row: Row, now: datetime) -> MessageView:
        """The view of a row read with :data:`SUMMARY_COLUMNS` (and :data:`STORED_COLUMNS` for a full view)."""
        data = {key: row[key] for key in row.keys()}  # noqa: SIM118 - sqlite rows are not mappings
        data["folder"], data["kind"], data["state"] = (
            Folder(row["folder"]),
            Kind(row["kind"]),
            State(row["state"]),
        )
        due = row["due_at"]
        data["overdue"] = is_overdue(
            data["kind"], data["state"], parse_time(due) if due else None, row["answered_at"] is not None, now
        )
        return cls(**data)

    def summary(self) -> dict[str, Any]:
        """The fields an officer sees in a listing (never the stored bytes)."""
        return {name: getattr(self, name) for name in _SUMMARY_FIELDS}


_SUMMARY_FIELDS = (*(c.strip() for c in SUMMARY_COLUMNS.split(",")), "overdue")


@dataclass(frozen=True)
class Applied:
    """What one event did to one stored message."""

    message_id: str
    step: Step | None
    """None when the lifecycle refused the event (``error`` says why)."""
    first: bool
    """The event's time column was empty before: this is the first time it happened."""
    error: InvalidState | None = None


async def _transition(
    conn: aiosqlite.Connection,
    folder: Folder,
    event: Event,
    ids: Sequence[str],
    at: str,
    peer: str | None = None,
    kinds: frozenset[Kind] | None = None,
    on_move: dict[str, Any] | None = None,
) -> list[Applied]:
    """Apply ``event`` to the messages ``ids`` of ``folder`` (with ``peer``, when given) inside ``conn``'s
    transaction, through the lifecycle table. A state is written only if the row still holds the state it was
    read in; unknown ids are skipped, so a notice about a message we never had changes nothing. ``kinds``: the
    only kinds of message the event applies to (the lifecycle's kind rules); ``on_move``: other columns written
    in the same statement when the state moves.
    """
    if not ids:
        return []
    column = STAMPS.get(event)
    marks = ",".join("?" * len(ids))
    sql = (
        f"SELECT id, peer, state, kind, {column or 'NULL'} AS stamp FROM messages "  # noqa: S608 - fixed fragments
        f"WHERE folder = ? AND id IN ({marks})"
    )
    params: list[Any] = [folder.value, *ids]
    if peer is not None:
        sql += " AND peer = ?"
        params.append(peer)
    async with conn.execute(sql, params) as cursor:
        rows = list(await cursor.fetchall())
    applied: list[Applied] = []
    updates: dict[str, list[tuple[Any, ...]]] = {}
    for row in rows:
        kind = Kind(row["kind"])
        if kinds is not None and kind not in kinds:
            allowed = ", ".join(sorted(kinds))
            refused = InvalidState(
                f"this {kind.value} cannot take '{event.value}': only a message of kind {allowed} can"
            )
            applied.append(Applied(row["id"], None, False, refused))
            continue
        before = State(row["state"])
        try:
            moved = step(folder, before, event)
        except InvalidState as exc:
            applied.append(Applied(row["id"], None, False, exc))
            continue
        first = column is not None and row["stamp"] is None
        sets: list[str] = []
        values: list[Any] = []
        if moved.moved:
            sets.append("state = ?")
            values.append(moved.state.value)
            for name, value in (on_move or {}).items():
                sets.append(f"{name} = ?")
                values.append(value)
        if first:
            sets.append(f"{column} = ?")
            values.append(at)
        if sets:
            sql = (
                f"UPDATE messages SET {', '.join(sets)} "  # noqa: S608 - fixed fragments
                "WHERE folder = ? AND id = ? AND peer = ? AND state = ?"
            )
            updates.setdefault(sql, []).append((*values, folder.value, row["id"], row["peer"], before.value))
        applied.append(Applied(row["id"], moved, first))
    for sql, params in updates.items():  # one call per kind of change, not one per message
        await conn.executemany(sql, params)
    return applied


async def _unopened_bytes(conn: aiosqlite.Connection, sender: str) -> int:
    """Bytes of envelopes from ``sender`` that no officer of ours has opened yet (``limits.peer_stored_bytes``)."""
    async with conn.execute(
        "SELECT coalesce(sum(length(envelope)), 0) FROM messages "  # noqa: S608 - enum values
        f"WHERE folder = '{Folder.INBOX}' AND state = '{State.RECEIVED}' AND sender = ?",
        (sender,),
    ) as cursor:
        row = await cursor.fetchone()
    return int(row[0]) if row else 0


@dataclass(frozen=True)
class Accepted:
    """An envelope that passed every check, with the receipt to store and return."""

    envelope: Envelope
    raw: bytes
    digest: str
    receipt: Receipt
    signer_key: bytes
    records: Sequence[Effect] = ()
    """Metadata records to queue if (and only if) this envelope is new."""


@dataclass(frozen=True)
class OutboxItem:
    """One row of the outbox."""

    seq: int
    peer: str
    item: str
    ref: str
    payload: bytes
    queued_at: float
    attempts: int = 0
    handed: bool = False
    """An envelope that an earlier request carried past the connection: the peer may hold it."""


def outgoing_rows(
    items: Sequence[Outgoing], officer: str, signer_key: bytes, now: datetime
) -> list[Statement]:
    """Statements that store new messages in the sent folder and queue their envelopes."""
    stamp = format_time(now)
    statements: list[Statement] = []
    queued: list[Statement] = []
    for out in items:
        header = out.envelope.header
        raw = out.envelope.canonical_bytes()
        statements.append(
            (
                "INSERT INTO messages (id, thread, folder, kind, sender, recipient, peer, area, urgency, "
                "created_at, due_at, in_reply_to, envelope, envelope_digest, local_sealed, signer_key, "
                "state, officer, queued_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
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
                    format_time(header.due_at) if header.due_at else None,
                    header.in_reply_to,
                    raw,
                    digest_text(raw),
                    out.local_sealed,
                    signer_key,
                    INITIAL[Folder.SENT].value,
                    officer,
                    stamp,
                ),
            )
        )
        queued.append(statement(Enqueue(header.recipient, "envelope", header.id, raw, now)))
    return statements + queued  # like statements together, so that they run as one call each


def _inbox_row(item: Accepted, stamp: str) -> tuple[Any, ...]:
    """Parameters of the row that stores a received envelope as received, with its receipt."""
    header = item.envelope.header
    received = (
        item.receipt.received_at
    )  # now, or the first arrival's for an envelope recovered after a restore
    due = deadline(header.kind, header.urgency, received)
    return (
        header.id,
        header.thread,
        Folder.INBOX.value,
        header.kind.value,
        header.sender,
        header.recipient,
        header.sender,
        header.area.value,
        header.urgency.value,
        format_time(header.created_at),
        format_time(due) if due else None,
        header.in_reply_to,
        item.raw,
        item.digest,
        item.signer_key,
        INITIAL[Folder.INBOX].value,
        canonical(item.receipt.wire()),
        stamp,
        format_time(received),
    )


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
        extra: Sequence[Effect] = (),
    ) -> None:
        """Record new messages in the sent folder and queue their envelopes, atomically with ``extra``.

        Group-committed with concurrent submissions (see :meth:`Database.write`).
        """
        await self.db.write([*outgoing_rows(items, officer, signer_key, now), *statements(extra)])

    async def store_reply(
        self,
        item: Outgoing,
        request: str,
        officer: str,
        signer_key: bytes,
        now: datetime,
        extra: Sequence[Effect] = (),
    ) -> None:
        """Record a reply and queue it, and move the received enquiry ``request`` to answered, atomically.

        Raises :class:`InvalidState` (storing nothing) when the lifecycle forbids answering it.
        """
        async with self.db.transaction() as conn:
            for applied in await _transition(
                conn,
                Folder.INBOX,
                Event.REPLY_SENT,
                [request],
                format_time(now),
                peer=item.envelope.header.recipient,
                kinds=ANSWERABLE,
            ):
                if applied.error is not None:
                    raise applied.error
            for sql, params in [*outgoing_rows([item], officer, signer_key, now), *statements(extra)]:
                await conn.execute(sql, params)

    async def store(self, effects: Sequence[Effect]) -> None:
        """Store effects that stand on their own (an outcome return and its audit entry), in one transaction."""
        await self.db.write(statements(effects))

    async def oldest_queued(self, peer: str, after_seq: int = 0) -> tuple[int, float | None]:
        """How many rows wait for ``peer`` behind ``after_seq``, and since when (the lag a node reports)."""
        row = await self.db.fetchone(
            "SELECT count(*), min(queued_at) FROM outbox WHERE peer = ? AND seq > ?", (peer, after_seq)
        )
        return (row[0], row[1]) if row else (0, None)

    async def due_items(self, peer: str, limit: int, now: float) -> list[OutboxItem]:
        """The oldest outbox rows for ``peer`` that are not waiting on their own."""
        rows = await self.db.fetchall(
            "SELECT o.seq, o.peer, o.item, o.ref, o.payload, o.queued_at, o.attempts, "
            "m.sent_at IS NOT NULL FROM outbox o LEFT JOIN messages m "
            "ON o.item = 'envelope' AND m.folder = ? AND m.id = o.ref AND m.peer = o.peer "
            "WHERE o.peer = ? AND (o.not_before IS NULL OR o.not_before <= ?) ORDER BY o.seq LIMIT ?",
            (Folder.SENT.value, peer, now, limit),
        )
        return [OutboxItem(r[0], r[1], r[2], r[3], r[4], r[5], r[6], bool(r[7])) for r in rows]

    async def own_copies(self, peer: str, ids: Sequence[str]) -> dict[str, bytes]:
        """The sender's own sealed copies of messages to ``peer``, by id (what sealing one again starts from)."""
        marks = ",".join("?" * len(ids))
        rows = await self.db.fetchall(
            f"SELECT id, local_sealed FROM messages WHERE folder = ? AND peer = ? AND id IN ({marks}) "  # noqa: S608 - placeholders only
            "AND local_sealed IS NOT NULL",
            (Folder.SENT.value, peer, *ids),
        )
        return {r[0]: r[1] for r in rows}

    async def reseal(self, peer: str, items: Sequence[tuple[int, Outgoing]]) -> list[int]:
        """Replace queued envelopes (by outbox seq) with the same messages sealed again, in one transaction;
        returns the seqs replaced. One that was handed to the peer meanwhile keeps its bytes: the peer may
        hold them, and would refuse other bytes under the same id."""
        replaced: list[int] = []
        async with self.db.transaction() as conn:
            for seq, out in items:
                raw = out.envelope.canonical_bytes()
                async with conn.execute(
                    "UPDATE messages SET envelope = ?, envelope_digest = ?, local_sealed = ? "
                    "WHERE folder = ? AND id = ? AND peer = ? AND sent_at IS NULL",
                    (
                        raw,
                        digest_text(raw),
                        out.local_sealed,
                        Folder.SENT.value,
                        out.envelope.header.id,
                        peer,
                    ),
                ) as cursor:
                    changed = cursor.rowcount == 1
                if changed:
                    await conn.execute("UPDATE outbox SET payload = ? WHERE seq = ?", (raw, seq))
                    replaced.append(seq)
        return replaced

    async def next_due(self, peer: str) -> float | None:
        """When the earliest row for ``peer`` waiting on its own may go again (None: none waits)."""
        row = await self.db.fetchone("SELECT min(not_before) FROM outbox WHERE peer = ?", (peer,))
        return row[0] if row else None

    async def peers_with_backlog(self) -> list[str]:
        """Peers that have anything queued."""
        return [r[0] for r in await self.db.fetchall("SELECT DISTINCT peer FROM outbox")]

    async def backlog(self) -> dict[str, int]:
        """Outbox size per peer."""
        rows = await self.db.fetchall("SELECT peer, count(*) FROM outbox GROUP BY peer")
        return {r[0]: r[1] for r in rows}

    async def mark_sent(self, ids: Sequence[str], now: datetime) -> None:
        """Envelopes handed to the peer (awaiting its receipt); the first hand-over stamps ``sent_at``."""
        async with self.db.transaction() as conn:
            await _transition(conn, Folder.SENT, Event.TRANSMITTED, ids, format_time(now))

    async def settle(
        self,
        delivered: Sequence[tuple[int, str, Receipt, datetime | None]],
        done: Sequence[int],
        failed: Sequence[tuple[int, str, str]],
        attempted: Sequence[tuple[int, str, str, float]],
        now: datetime,
        extra: Sequence[Effect] = (),
    ) -> None:
        """Apply the outcome of one delivery request in one transaction.

        ``delivered``: (seq, message id, verified receipt, deadline counted from its time); ``done``: rows acknowledged with nothing to record;
        ``failed``: (seq, message id, error code) refused for good; ``attempted``: (seq, message id, error
        code, not before) for rows to retry later, on their own; ``extra``: effects (metadata records) that
        belong to the same outcome.
        """
        stamp = format_time(now)
        async with self.db.transaction() as conn:
            # The deadline runs from the receiver's signed receipt time, not from our creation time.
            await conn.executemany(
                "UPDATE messages SET receipt = coalesce(receipt, ?), last_error = NULL, "
                "due_at = CASE WHEN receipt IS NULL THEN ? ELSE due_at END WHERE folder = ? AND id = ?",
                [
                    (
                        canonical(receipt.wire()),
                        format_time(due) if due else None,
                        Folder.SENT.value,
                        message_id,
                    )
                    for _, message_id, receipt, due in delivered
                ],
            )
            await _transition(conn, Folder.SENT, Event.RECEIPT, [d[1] for d in delivered], stamp)
            for _seq, message_id, code in failed:
                await _transition(
                    conn, Folder.SENT, Event.REFUSED, [message_id], stamp, on_move={"last_error": code}
                )
            gone = [seq for seq, _, _, _ in delivered] + list(done) + [seq for seq, _, _ in failed]
            await conn.executemany("DELETE FROM outbox WHERE seq = ?", [(seq,) for seq in gone])
            await conn.executemany(
                "UPDATE outbox SET attempts = attempts + 1, not_before = ? WHERE seq = ?",
                [(not_before, seq) for seq, _, _, not_before in attempted],
            )
            await conn.executemany(
                f"UPDATE messages SET last_error = ? WHERE folder = ? AND id = ? AND state IN ({_IN_FLIGHT})",  # noqa: S608 - enum values
                [(f"{code}; will retry", Folder.SENT.value, ref) for _, ref, code, _ in attempted],
            )
            await run_grouped(conn, statements(extra))

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

    async def accept(
        self, batch: Sequence[Accepted], now: datetime, unopened_limit: int
    ) -> list[Receipt | Replayed | StoredQuotaExceeded]:
        """Store received envelopes and their receipts; identical repeats get the original receipt back.

        An id is looked up with its sender only: another member using the same id neither blocks nor
        replaces the message. A new envelope that would take its sender's unopened messages past
        ``unopened_limit`` bytes is not stored (counted in the same transaction, from the stored rows, so that
        concurrent batches and restarts cannot get round it). The batch costs a few statements, not a few per
        envelope.
        """
        stamp = format_time(now)
        results: list[Receipt | Replayed | StoredQuotaExceeded] = []
        unopened: dict[str, int] = {}
        async with self.db.transaction() as conn:
            pairs = ",".join("(?, ?)" for _ in batch)
            keys = [v for item in batch for v in (item.envelope.header.sender, item.envelope.header.id)]
            async with conn.execute(
                "SELECT sender, id, folder, envelope, receipt FROM messages "  # noqa: S608 - placeholders only
                f"WHERE (sender, id) IN (VALUES {pairs})",
                keys,
            ) as cursor:
                existing = {(r[0], r[1]): tuple(r) for r in await cursor.fetchall()}
            rows: list[tuple[Any, ...]] = []
            replies: dict[str, list[str]] = {}
            records: list[Effect] = []
            for item in batch:
                header = item.envelope.header
                known = existing.get((header.sender, header.id))
                if known is not None:
                    if known[2] == Folder.INBOX and known[3] == item.raw and known[4] is not None:
                        results.append(Receipt.model_validate_json(known[4]))
                    else:
                        results.append(Replayed())
                    continue
                if header.sender not in unopened:
                    unopened[header.sender] = await _unopened_bytes(conn, header.sender)
                if unopened[header.sender] + len(item.raw) > unopened_limit:
                    results.append(
                        StoredQuotaExceeded(
                            "this node holds as many unread messages from your node as it keeps for one peer: "
                            "it takes more once its officers have read some; keep retrying"
                        )
                    )
                    continue
                unopened[header.sender] += len(item.raw)
                existing[(header.sender, header.id)] = (
                    header.sender,
                    header.id,
                    Folder.INBOX.value,
                    item.raw,
                    canonical(item.receipt.wire()),
                )
                rows.append(_inbox_row(item, stamp))
                if header.in_reply_to:
                    replies.setdefault(header.sender, []).append(header.in_reply_to)
                records.extend(item.records)
                results.append(item.receipt)
            await conn.executemany(
                "INSERT INTO messages (id, thread, folder, kind, sender, recipient, peer, area, urgency, "
                "created_at, due_at, in_reply_to, envelope, envelope_digest, signer_key, state, receipt, "
                "queued_at, delivered_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                rows,
            )
            for peer, answered in replies.items():
                await _transition(
                    conn, Folder.SENT, Event.REPLY_RECEIVED, answered, stamp, peer=peer, kinds=ANSWERABLE
                )
            await run_grouped(conn, statements(records))
        return results

    async def apply_statuses(self, peer: str, notices: Sequence[tuple[str, Event, datetime]]) -> int:
        """``peer`` tells us its officers read (or acknowledged) messages we sent it, in one transaction;
        returns how many of them the lifecycle took (unknown ids, an acknowledgement of anything but a notice,
        and refused steps change nothing)."""
        taken = 0
        async with self.db.transaction() as conn:
            for message_id, event, at in notices:
                kinds = ACKNOWLEDGEABLE if event is Event.ACKNOWLEDGEMENT else None
                applied = await _transition(
                    conn, Folder.SENT, event, [message_id], format_time(at), peer, kinds=kinds
                )
                taken += sum(a.error is None for a in applied)
        return taken

    async def recovered_inbox(
        self, peer: str, read: Sequence[tuple[str, str]], acknowledged: Sequence[tuple[str, str]]
    ) -> None:
        """After a restore, what our officers did with messages from ``peer`` comes back through the lifecycle:
        reads and acknowledgements as the peer learnt them (id, time), and answers from the replies recovered
        into our sent folder. Nothing is queued: the peer knows all of it already."""
        async with self.db.transaction() as conn:
            for message_id, at in read:
                await _transition(conn, Folder.INBOX, Event.OFFICER_READ, [message_id], at, peer)
            for message_id, at in acknowledged:
                await _transition(
                    conn, Folder.INBOX, Event.OFFICER_ACKNOWLEDGED, [message_id], at, peer, ACKNOWLEDGEABLE
                )
            async with conn.execute(
                "SELECT i.id, min(r.created_at) FROM messages i JOIN messages r ON r.folder = ? "
                "AND r.peer = i.peer AND r.in_reply_to = i.id WHERE i.folder = ? AND i.peer = ? "
                "AND i.answered_at IS NULL GROUP BY i.id",
                (Folder.SENT.value, Folder.INBOX.value, peer),
            ) as cursor:
                answered = list(await cursor.fetchall())
            for message_id, at in answered:
                await _transition(
                    conn, Folder.INBOX, Event.REPLY_SENT, [message_id], at, peer, kinds=ANSWERABLE
                )

    async def mark_read(
        self, message_id: str, sender: str, now: datetime, extra: Sequence[Effect] = ()
    ) -> bool:
        """An officer opened a received message; ``extra`` (the read notice) is stored only the first time.

        Returns whether this was the first time.
        """
        return await self._officer_event(message_id, sender, Event.OFFICER_READ, None, now, extra)

    async def acknowledge(
        self, message_id: str, sender: str, now: datetime, extra: Sequence[Effect] = ()
    ) -> bool:
        """An officer acknowledged a received notice; ``extra`` (the status for the sender, the coordinator's
        record) is stored only the first time. Raises :class:`InvalidState` for any other kind of message.

        Returns whether this was the first time.
        """
        return await self._officer_event(
            message_id, sender, Event.OFFICER_ACKNOWLEDGED, ACKNOWLEDGEABLE, now, extra
        )

    async def _officer_event(
        self,
        message_id: str,
        sender: str,
        event: Event,
        kinds: frozenset[Kind] | None,
        now: datetime,
        extra: Sequence[Effect],
    ) -> bool:
        async with self.db.transaction() as conn:
            applied = await _transition(
                conn, Folder.INBOX, event, [message_id], format_time(now), sender, kinds=kinds
            )
            if not applied:
                raise NotFound
            if applied[0].error is not None:
                raise applied[0].error
            if not applied[0].first:
                return False
            await run_grouped(conn, statements(extra))
        return True

    # -- reading --

    async def get(self, message_id: str, now: datetime, sender: str | None = None) -> MessageView:
        """One message, or NotFound; Conflict when two senders used the id and none is named."""
        columns = f"SELECT {SUMMARY_COLUMNS}, {STORED_COLUMNS} FROM messages"  # noqa: S608 - fixed fragments
        if sender is None:
            rows = await self.db.fetchall(f"{columns} WHERE id = ? LIMIT 2", (message_id,))
        else:
            rows = await self.db.fetchall(f"{columns} WHERE id = ? AND sender = ?", (message_id, sender))
        if not rows:
            raise NotFound
        if len(rows) > 1:
            raise Conflict(
                "two countries sent a message with this id: name the sender (ncpx --from TH, or ?from=TH in the API)"
            )
        return MessageView.of(rows[0], now)

    async def thread(self, thread_id: str, now: datetime) -> list[MessageView]:
        """Every message of a thread, oldest first."""
        rows = await self.db.fetchall(
            f"SELECT {SUMMARY_COLUMNS}, {STORED_COLUMNS} FROM messages WHERE thread = ? ORDER BY created_at, id",  # noqa: S608
            (thread_id,),
        )
        return [MessageView.of(row, now) for row in rows]

    async def listing(
        self,
        folder: str,
        *,
        peer: str | None,
        state: str | None,
        area: str | None,
        kind: str | None = None,
        overdue: bool,
        after: tuple[str, str] | None,
        limit: int,
        now: datetime,
        urgency: str | None = None,
    ) -> list[MessageView]:
        """Summaries of a folder, newest first, keyset-paginated by (created_at, id)."""
        where = []
        params: list[Any] = []
        if folder == "outbox":
            where.append(f"folder = '{Folder.SENT}' AND state IN ({_IN_FLIGHT})")
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
        if kind:
            where.append("kind = ?")
            params.append(kind)
        if urgency:
            where.append("urgency = ?")
            params.append(urgency)
        if overdue:  # protocol.lifecycle.is_overdue, as a filter
            where.append(
                f"kind IN ({_WITH_DEADLINE}) AND answered_at IS NULL "
                f"AND state != '{State.UNDELIVERABLE}' AND due_at < ?"
            )
            params.append(format_time(now))
        if after:
            where.append("(created_at, id) < (?, ?)")
            params.extend(after)
        sql = (
            f"SELECT {SUMMARY_COLUMNS} FROM messages WHERE {' AND '.join(where)} "  # noqa: S608 - fixed fragments
            "ORDER BY created_at DESC, id DESC LIMIT ?"
        )
        return [MessageView.of(row, now) for row in await self.db.fetchall(sql, (*params, limit))]
