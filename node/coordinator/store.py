"""The coordinator's storage, behind a small repository interface.

:class:`CoordinatorStore` is what the coordinator's ingest, API and dashboard use; :class:`SqliteStore` is the
implementation every deployment has today. The SQL is kept to what PostgreSQL also runs (``ON CONFLICT``,
window functions), so that a PostgreSQL store for a coordinator serving hundreds of participants is a second
class with the same methods, not a rewrite.

Records are folded into one ``exchanges`` row per message as they arrive, so that every tally is an indexed
aggregate over messages, never a load of records into Python.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol

from node.storage.database import Database
from protocol.codes import Kind, due_at
from protocol.encoding import canonical, format_time
from protocol.models import MetadataRecord
from protocol.outcome import OutcomeReturn
from protocol.receipts import receipt_digest


@dataclass(frozen=True)
class NodeReport:
    """What a node said about its own record queue when it last sent records."""

    participant: str
    backlog: int
    oldest_queued_at: datetime | None
    implausible: bool = False
    """The node claimed a backlog or oldest queued time beyond belief (see the coordinator service's bounds)."""


class CoordinatorStore(Protocol):
    """Everything the coordinator keeps."""

    async def ingest(self, records: Sequence[MetadataRecord], now: datetime) -> int:
        """Store verified records idempotently and fold them into the exchange table; returns how many were new."""
        ...

    async def note_node(self, report: NodeReport, now: datetime, got_records: bool) -> None:
        """Remember when a node was last heard from and how far behind its queue is."""
        ...

    async def store_outcome(self, outcome: OutcomeReturn) -> None:
        """Keep a verified outcome return (the newest per period and country wins)."""
        ...

    async def outcomes(self, period: str) -> list[OutcomeReturn]:
        """Every stored return for ``period``."""
        ...

    async def query(self, sql: str, params: Sequence[Any] = ()) -> list[Any]:
        """Rows of a read-only tally query (see :mod:`node.coordinator.tallies`)."""
        ...

    async def node_reports(self) -> dict[str, tuple[str, str | None, int, str | None, bool]]:
        """Per participant: (last seen, last record, records still queued, oldest queued, whether what it said
        about its queue was implausible), times as RFC 3339 texts."""
        ...

    async def open_session(self, id_hash: str, officer: str, now: datetime, expires: datetime) -> None:
        """Start a dashboard session (and forget expired ones)."""
        ...

    async def end_session(self, id_hash: str) -> None:
        """End a dashboard session."""
        ...


_UPSERT_EXCHANGE = (
    "INSERT INTO exchanges (message_id, thread, kind, sender, recipient, area, urgency, created_at, "
    "created_day, due_at, in_reply_to, first_record_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) "
    "ON CONFLICT (message_id) DO UPDATE SET header_mismatch = CASE WHEN "
    "exchanges.thread = excluded.thread AND exchanges.kind = excluded.kind AND "
    "exchanges.sender = excluded.sender AND exchanges.recipient = excluded.recipient AND "
    "exchanges.area = excluded.area AND exchanges.urgency = excluded.urgency AND "
    "exchanges.created_at = excluded.created_at AND "
    "coalesce(exchanges.due_at, '') = coalesce(excluded.due_at, '') AND "
    "coalesce(exchanges.in_reply_to, '') = coalesce(excluded.in_reply_to, '') "
    "THEN exchanges.header_mismatch ELSE 1 END"
)
"""Create the exchange row a record describes, or flag it when two records disagree on its header."""

_FOLD_SENT = (
    "UPDATE exchanges SET sent_at = ?, sent_digest = ?, sent_receipt = ?, receipt_at = ?, deadline_at = ? "
    "WHERE message_id = ? AND sent_at IS NULL"
)
"""The sender's record with the receipt it carries: from here on the exchange is proven (first one wins)."""

_FOLD_RECEIVED = (
    "UPDATE exchanges SET received_at = ?, received_digest = ?, received_receipt = ? "
    "WHERE message_id = ? AND received_at IS NULL"
)

_FIRST_OF_THREAD = (
    "UPDATE exchanges SET thread_first = 1 WHERE message_id = ? AND kind = 'enquiry' AND thread_first = 0 "
    "AND receipt_at IS NOT NULL AND NOT EXISTS (SELECT 1 FROM exchanges AS t WHERE t.sender = exchanges.sender "
    "AND t.thread = exchanges.thread AND t.thread_first = 1)"
)
"""Mark the first proven enquiry message of a (sender, thread): threads are what officers count as enquiries."""

_PAIR_ANSWER = (
    "UPDATE exchanges SET answered_at = r.receipt_at, "
    "answer_s = max(0.0, round((julianday(r.receipt_at) - julianday(exchanges.receipt_at)) * 86400.0, 3)) "
    "FROM exchanges AS r WHERE exchanges.message_id = ? AND exchanges.answered_at IS NULL "
    "AND exchanges.receipt_at IS NOT NULL AND r.message_id = exchanges.reply_id "
    "AND r.sent_digest = exchanges.reply_digest "
    "AND r.in_reply_to = exchanges.message_id AND r.sender = exchanges.recipient "
    "AND r.recipient = exchanges.sender"
)
"""An enquiry is answered when the reply its recipient named has arrived with the enquirer's signed receipt.

The answer time is that receipt's time and the response time runs from the enquiry's own receipt, so both ends
rest on signatures and no party's claimed creation time moves them. Records arrive in any order, so this runs
for every enquiry a batch touches.
"""


class SqliteStore:
    """:class:`CoordinatorStore` on the node's SQLite file."""

    def __init__(self, db: Database) -> None:
        self.db = db

    async def ingest(self, records: Sequence[MetadataRecord], now: datetime) -> int:
        """See :meth:`CoordinatorStore.ingest`.

        One statement per kind of row for the whole batch (``executemany``), so a batch of 500 records costs a
        handful of round trips to SQLite, not thousands. Folding is idempotent and first-wins: a repeated record
        changes nothing, and a side's first report of a digest is never overwritten by a later one.
        """
        stamp = format_time(now)
        sent: list[tuple[Any, ...]] = []
        received: list[tuple[Any, ...]] = []
        read: list[tuple[Any, ...]] = []
        replies: list[tuple[Any, ...]] = []
        touched: dict[str, None] = {}  # enquiries whose answer may pair now, in arrival order
        record_rows, exchange_rows = [], []
        for record in records:
            at = format_time(record.at)
            created = format_time(record.created_at)
            record_rows.append(
                (
                    record.record_id,
                    record.reporter,
                    record.event,
                    record.message_id,
                    at,
                    stamp,
                    record.model_dump_json(exclude_none=True).encode(),  # as verified, for audit
                )
            )
            exchange_rows.append(
                (
                    record.message_id,
                    record.thread,
                    record.kind.value,
                    record.sender,
                    record.recipient,
                    record.area.value,
                    record.urgency.value,
                    created,
                    created[:10],
                    format_time(record.due_at) if record.due_at else None,
                    record.in_reply_to,
                    stamp,
                )
            )
            if record.event == "sent" and record.receipt is not None:
                receipt_at = record.receipt.received_at
                deadline = due_at(record.urgency, receipt_at) if record.kind is Kind.ENQUIRY else None
                sent.append(
                    (
                        at,
                        record.envelope_digest,
                        receipt_digest(record.receipt),
                        format_time(receipt_at),
                        format_time(deadline) if deadline else None,
                        record.message_id,
                    )
                )
                touched[record.in_reply_to or record.message_id] = None
            elif record.event == "received":
                received.append((at, record.envelope_digest, record.receipt_digest, record.message_id))
            elif record.event == "read":
                read.append((at, record.message_id))
            elif record.event == "answered":
                replies.append((record.reply_id, record.reply_digest, record.message_id))
                touched[record.message_id] = None
        async with self.db.transaction() as conn:
            before = conn.total_changes
            await conn.executemany(
                "INSERT INTO records (record_id, reporter, event, message_id, at, received_at, raw) "
                "VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT DO NOTHING",
                record_rows,
            )
            new = conn.total_changes - before
            await conn.executemany(_UPSERT_EXCHANGE, exchange_rows)
            await conn.executemany(_FOLD_SENT, sent)
            await conn.executemany(_FIRST_OF_THREAD, [(row[-1],) for row in sent])
            await conn.executemany(_FOLD_RECEIVED, received)
            await conn.executemany(
                "UPDATE exchanges SET read_at = coalesce(read_at, ?) WHERE message_id = ?", read
            )
            await conn.executemany(
                "UPDATE exchanges SET reply_id = ?, reply_digest = ? WHERE message_id = ? AND reply_id IS NULL",
                replies,
            )
            await conn.executemany(_PAIR_ANSWER, [(message_id,) for message_id in touched])
        return new

    async def note_node(self, report: NodeReport, now: datetime, got_records: bool) -> None:
        """See :meth:`CoordinatorStore.note_node`."""
        stamp = format_time(now)
        oldest = format_time(report.oldest_queued_at) if report.oldest_queued_at else None
        async with self.db.transaction() as conn:
            await conn.execute(
                "INSERT INTO node_status (participant, last_seen_at, last_record_at, backlog, oldest_queued_at, "
                "backlog_implausible) VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (participant) DO UPDATE SET "
                "last_seen_at = excluded.last_seen_at, "
                "last_record_at = coalesce(excluded.last_record_at, node_status.last_record_at), "
                "backlog = excluded.backlog, oldest_queued_at = excluded.oldest_queued_at, "
                "backlog_implausible = excluded.backlog_implausible",
                (
                    report.participant,
                    stamp,
                    stamp if got_records else None,
                    report.backlog,
                    oldest,
                    report.implausible,
                ),
            )

    async def store_outcome(self, outcome: OutcomeReturn) -> None:
        """See :meth:`CoordinatorStore.store_outcome`."""
        async with self.db.transaction() as conn:
            await conn.execute(
                "INSERT INTO outcomes (period, participant, submitted_at, raw) VALUES (?, ?, ?, ?) "
                "ON CONFLICT (period, participant) DO UPDATE SET submitted_at = excluded.submitted_at, "
                "raw = excluded.raw WHERE excluded.submitted_at > outcomes.submitted_at",
                (
                    outcome.period,
                    outcome.participant,
                    format_time(outcome.submitted_at),
                    canonical(outcome.wire()),
                ),
            )

    async def outcomes(self, period: str) -> list[OutcomeReturn]:
        """See :meth:`CoordinatorStore.outcomes`."""
        rows = await self.db.fetchall(
            "SELECT raw FROM outcomes WHERE period = ? ORDER BY participant", (period,)
        )
        return [OutcomeReturn.model_validate_json(r[0]) for r in rows]

    async def query(self, sql: str, params: Sequence[Any] = ()) -> list[Any]:
        """See :meth:`CoordinatorStore.query`."""
        return await self.db.fetchall(sql, params)

    async def node_reports(self) -> dict[str, tuple[str, str | None, int, str | None, bool]]:
        """See :meth:`CoordinatorStore.node_reports`."""
        rows = await self.db.fetchall(
            "SELECT participant, last_seen_at, last_record_at, backlog, oldest_queued_at, backlog_implausible "
            "FROM node_status"
        )
        return {r[0]: (r[1], r[2], r[3], r[4], bool(r[5])) for r in rows}

    async def open_session(self, id_hash: str, officer: str, now: datetime, expires: datetime) -> None:
        """See :meth:`CoordinatorStore.open_session`."""
        async with self.db.transaction() as conn:
            await conn.execute("DELETE FROM sessions WHERE expires_at < ?", (format_time(now),))
            await conn.execute(
                "INSERT INTO sessions (id_hash, officer, created_at, expires_at) VALUES (?, ?, ?, ?)",
                (id_hash, officer, format_time(now), format_time(expires)),
            )

    async def end_session(self, id_hash: str) -> None:
        """See :meth:`CoordinatorStore.end_session`."""
        async with self.db.transaction() as conn:
            await conn.execute("DELETE FROM sessions WHERE id_hash = ?", (id_hash,))
