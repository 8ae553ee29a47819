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
from protocol.encoding import canonical, format_time
from protocol.models import MetadataRecord
from protocol.outcome import OutcomeReturn


@dataclass(frozen=True)
class NodeReport:
    """What a node said about its own record queue when it last sent records."""

    participant: str
    backlog: int
    oldest_queued_at: datetime | None


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

    async def node_reports(self) -> dict[str, tuple[str, str | None, int, str | None]]:
        """Per participant: (last seen, last record, records still queued, oldest queued) as RFC 3339 texts."""
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

_FOLD = {
    "sent": "sent_at = ?, sent_digest = ?, sent_receipt = ?",
    "received": "received_at = ?, received_digest = ?, received_receipt = ?",
}


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
        by_event: dict[str, list[tuple[Any, ...]]] = {"sent": [], "received": [], "read": [], "answered": []}
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
            if record.event in ("sent", "received"):
                by_event[record.event].append(
                    (at, record.envelope_digest, record.receipt_digest, record.message_id)
                )
            elif record.event == "read":
                by_event["read"].append((at, record.message_id))
            elif record.event == "answered":
                by_event["answered"].append((at, at, record.message_id, at))
        async with self.db.transaction() as conn:
            before = conn.total_changes
            await conn.executemany(
                "INSERT INTO records (record_id, reporter, event, message_id, at, received_at, raw) "
                "VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT DO NOTHING",
                record_rows,
            )
            new = conn.total_changes - before
            await conn.executemany(_UPSERT_EXCHANGE, exchange_rows)
            for event in ("sent", "received"):
                await conn.executemany(
                    f"UPDATE exchanges SET {_FOLD[event]} WHERE message_id = ? AND {event}_at IS NULL",  # noqa: S608 - fixed fragments
                    by_event[event],
                )
            await conn.executemany(
                "UPDATE exchanges SET read_at = coalesce(read_at, ?) WHERE message_id = ?", by_event["read"]
            )
            await conn.executemany(
                "UPDATE exchanges SET answered_at = ?, "
                "answer_s = round((julianday(?) - julianday(created_at)) * 86400.0, 3) "
                "WHERE message_id = ? AND (answered_at IS NULL OR answered_at > ?)",
                by_event["answered"],
            )
        return new

    async def note_node(self, report: NodeReport, now: datetime, got_records: bool) -> None:
        """See :meth:`CoordinatorStore.note_node`."""
        stamp = format_time(now)
        oldest = format_time(report.oldest_queued_at) if report.oldest_queued_at else None
        async with self.db.transaction() as conn:
            await conn.execute(
                "INSERT INTO node_status (participant, last_seen_at, last_record_at, backlog, oldest_queued_at) "
                "VALUES (?, ?, ?, ?, ?) ON CONFLICT (participant) DO UPDATE SET last_seen_at = excluded.last_seen_at, "
                "last_record_at = coalesce(excluded.last_record_at, node_status.last_record_at), "
                "backlog = excluded.backlog, oldest_queued_at = excluded.oldest_queued_at",
                (report.participant, stamp, stamp if got_records else None, report.backlog, oldest),
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

    async def node_reports(self) -> dict[str, tuple[str, str | None, int, str | None]]:
        """See :meth:`CoordinatorStore.node_reports`."""
        rows = await self.db.fetchall(
            "SELECT participant, last_seen_at, last_record_at, backlog, oldest_queued_at FROM node_status"
        )
        return {r[0]: (r[1], r[2], r[3], r[4]) for r in rows}

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
