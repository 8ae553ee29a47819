"""The coordinator's storage, behind a small repository interface.

:class:`CoordinatorStore` is what the coordinator's ingest, API and dashboard use. :class:`SqlStore` holds
every statement and all the folding and row mapping once; :class:`SqliteStore` runs it on the node's own SQLite
file, :class:`PostgresStore` on a PostgreSQL database (``coordinator_database_url``) for a coordinator that
serves many periods and participants or runs as several replicas. The statements are written in the SQL both
engines run (``ON CONFLICT``, ``UPDATE ... FROM``, window functions); the few functions they spell differently
(the larger of two values, seconds between two times) come from a :class:`Dialect`.

Records are folded into one ``exchanges`` row per message as they arrive, so that every tally is an indexed
aggregate over messages, never a load of records into Python.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, time, timedelta
from typing import Any, Literal, NamedTuple, Protocol

from node.storage.database import Database, SqlDatabase
from node.storage.postgres import PostgresDatabase, PostgresWriter
from node.storage.sessions import Session, Sessions
from protocol.codes import Kind, due_at
from protocol.encoding import canonical, format_time
from protocol.match_records import MatchRecord
from protocol.models import MetadataRecord
from protocol.outcome import OutcomeReturn
from protocol.period import Period
from protocol.receipts import receipt_digest


@dataclass(frozen=True)
class NodeReport:
    """What a node said about its own record queue when it last sent records."""

    participant: str
    backlog: int
    oldest_queued_at: datetime | None
    implausible: bool = False
    """The node claimed a backlog or oldest queued time beyond belief (see the coordinator service's bounds)."""


@dataclass(frozen=True)
class Window:
    """The exchanges a period's figures count: created inside the period, between two of its participants.

    ``now`` is the moment the figures are as of, which decides what is overdue and how old an open enquiry is.
    """

    period: Period
    now: datetime


Dimension = Literal["sender", "recipient", "area", "urgency", "created_day"]
"""What exchanges can be counted by: the day is the UTC day of creation (see ``per_local_day`` for local days)."""


class Counted(NamedTuple):
    """Proven messages of one group, how many of them were answered (notices: acknowledged), and how many were the
    first of a thread."""

    messages: int
    answered: int
    threads: int


class MatchCounted(NamedTuple):
    """Matching sessions of one pair and day: figures from the asker's records, confirmation from the answerer's."""

    sessions: int
    """Sessions either side reported."""
    done: int
    """Sessions the asker ran to their result."""
    failed: int
    """Sessions either side reports as failed (a spent budget, a malformed message)."""
    items: int
    """Items asked about in the sessions done, as the asker reports them."""
    matched: int
    """Items both sides held, as the asker found them (the same item counts again on every round)."""
    new_hits: int
    """Hits the asker had not known before: each hit is counted once, on the day it was first found."""
    confirmed: int
    """Sessions done that the answerer's own signed record also reports done."""


class OpenRow(NamedTuple):
    """An unanswered proven enquiry; ``due_at`` is its deadline from the receiver's receipt (RFC 3339 texts)."""

    message_id: str
    thread: str
    sender: str
    recipient: str
    area: str
    urgency: str
    created_at: str
    due_at: str | None
    age_s: float
    """Seconds since the receiver's receipt."""
    overdue: bool


@dataclass(frozen=True)
class Selection:
    """Which of a window's exchanges a list shows; ``None`` is any. ``country`` is either side of the exchange,
    ``since`` and ``before`` bound its creation time."""

    country: str | None = None
    sender: str | None = None
    recipient: str | None = None
    area: str | None = None
    urgency: str | None = None
    since: datetime | None = None
    before: datetime | None = None


class ExchangeRow(NamedTuple):
    """One exchange's metadata as the coordinator holds it (RFC 3339 texts; ``None`` where not yet known)."""

    message_id: str
    kind: str
    sender: str
    recipient: str
    area: str
    urgency: str
    created_at: str
    receipt_at: str | None
    """The receiver's signed receipt time: from it on, the exchange is proven."""
    due_at: str | None
    answered_at: str | None


class Sides(NamedTuple):
    """What each side of an exchange reported (``None`` where that side has sent no record yet)."""

    message_id: str
    sender: str
    recipient: str
    kind: str
    created_at: str
    sent_at: str | None
    received_at: str | None
    sent_digest: str | None
    received_digest: str | None
    sent_receipt: str | None
    received_receipt: str | None
    header_mismatch: bool
    """Two records of the exchange disagreed on its header."""


class CoordinatorStore(Protocol):
    """Everything the coordinator keeps."""

    async def ingest(self, records: Sequence[MetadataRecord], now: datetime) -> int:
        """Store verified records idempotently and fold them into the exchange table; returns how many were new."""
        ...

    async def ingest_matches(self, records: Sequence[MatchRecord], now: datetime) -> int:
        """Store verified matching records idempotently (one per session and side); how many were new."""
        ...

    async def match_counts(self, w: Window) -> dict[tuple[str, str, str], MatchCounted]:
        """The window's matching sessions per (asker, answerer, UTC day the asker opened them)."""
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

    async def counts(
        self, w: Window, kind: Kind, by: tuple[Dimension, ...]
    ) -> dict[tuple[str, ...], Counted]:
        """The window's proven exchanges of ``kind``, counted per value of ``by`` (groups with none are absent)."""
        ...

    async def per_local_day(self, w: Window, kind: Kind) -> dict[str, int]:
        """The window's proven exchanges of ``kind`` per calendar day in the period's zone (ISO dates; days with
        none are absent)."""
        ...

    async def overdue_by_recipient(self, w: Window) -> dict[str, int]:
        """Proven enquiries past their deadline and unanswered, per answering country."""
        ...

    async def unproven_by_recipient(self, w: Window) -> dict[str, int]:
        """Enquiry messages with no receipt from the sender's side, per the recipient that alone reports them."""
        ...

    async def answer_time(
        self, w: Window, by: tuple[Dimension, ...], key: tuple[str, ...], rank: int
    ) -> float | None:
        """The ``rank``-th shortest response time in seconds (from 1) among the window's answered enquiries whose
        ``by`` values are ``key``; None when there are fewer."""
        ...

    async def open_enquiries(self, w: Window, overdue_only: bool, limit: int) -> list[OpenRow]:
        """At most ``limit`` unanswered proven enquiries of the window (only overdue ones if asked), oldest first."""
        ...

    async def exchanges(self, w: Window, s: Selection, open_only: bool, limit: int) -> list[ExchangeRow]:
        """At most ``limit`` of the window's exchanges that ``s`` selects: with ``open_only``, the unanswered proven
        enquiries, soonest deadline first; otherwise every exchange, oldest first."""
        ...

    async def note_reminder(
        self, period: str, participant: str, officer: str, at: datetime, delivered: bool
    ) -> None:
        """Remember a reminder sent to a country about its missing outcome return."""
        ...

    async def last_reminders(self, period: str) -> dict[str, tuple[str, bool]]:
        """Per country, the last reminder sent for ``period``: (when, whether its node took it)."""
        ...

    async def unmatched(self, w: Window, unconfirmed_since: datetime) -> list[Sides]:
        """The window's exchanges whose sides disagree, or that only one side has reported although the first
        record came before ``unconfirmed_since``; oldest first."""
        ...

    async def node_reports(self) -> dict[str, tuple[str, str | None, int, str | None, bool]]:
        """Per participant: (last seen, last record, records still queued, oldest queued, whether what it said
        about its queue was implausible), times as RFC 3339 texts."""
        ...

    async def open_session(self, id_hash: str, officer: str, now: datetime, expires: datetime) -> None:
        """Start a dashboard session (and forget expired ones)."""
        ...

    async def session(self, id_hash: str) -> Session | None:
        """The session whose id has the digest ``id_hash``, expired or not."""
        ...

    async def end_session(self, id_hash: str) -> None:
        """End a dashboard session."""
        ...

    async def ping(self) -> None:
        """Raise unless the store answers a query (the coordinator's readiness)."""
        ...


@dataclass(frozen=True)
class Dialect:
    """What the two engines spell differently, as SQL expression templates."""

    greatest: str
    """The larger of two non-null values (``max`` as a scalar on SQLite, ``greatest`` on PostgreSQL)."""
    seconds: str
    """Seconds from ``{earlier}`` to ``{later}`` (two RFC 3339 texts), as a float."""
    round3: str
    """``{value}`` rounded to milliseconds, as a float."""


SQLITE = Dialect(
    greatest="max",
    seconds="(julianday({later}) - julianday({earlier})) * 86400.0",
    round3="round({value}, 3)",
)
POSTGRES = Dialect(
    greatest="greatest",
    seconds="extract(epoch FROM ({later})::text::timestamptz - ({earlier})::text::timestamptz)::float8",
    round3="round(({value})::numeric, 3)::float8",
)


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


def _pair_answer(d: Dialect) -> str:
    """An enquiry is answered when the reply its recipient named has arrived with the enquirer's signed receipt.

    The answer time is that receipt's time and the response time runs from the enquiry's own receipt, so both
    ends rest on signatures and no party's claimed creation time moves them. Records arrive in any order, so
    this runs for every enquiry a batch touches.
    """
    seconds = d.seconds.format(later="r.receipt_at", earlier="exchanges.receipt_at")
    return (
        "UPDATE exchanges SET answered_at = r.receipt_at, "  # noqa: S608 - the dialect's own expressions
        f"answer_s = {d.greatest}(0.0, {d.round3.format(value=seconds)}) "
        "FROM exchanges AS r WHERE exchanges.message_id = ? AND exchanges.answered_at IS NULL "
        "AND exchanges.receipt_at IS NOT NULL AND r.message_id = exchanges.reply_id "
        "AND r.sent_digest = exchanges.reply_digest "
        "AND r.in_reply_to = exchanges.message_id AND r.sender = exchanges.recipient "
        "AND r.recipient = exchanges.sender"
    )


_ACKNOWLEDGED = (
    "UPDATE exchanges SET answered_at = coalesce(answered_at, ?) WHERE message_id = ? AND kind = 'notice'"
)
"""A notice's recipient acknowledged it: for a notice, ``answered_at`` is that acknowledgement (the response its
kind calls for), so the cells count acknowledged notices in their ``answered`` column, once the sender's record
has brought the receipt. The acknowledgement is the recipient's own signed word, as only it can give it."""


_INSERT_MATCH = (
    "INSERT INTO match_reports (session, reporter, asker, answerer, opened_at, day, items, matched, new_hits, "
    "outcome, code, received_at, raw) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT DO NOTHING"
)

_MATCH_COUNTS = """
WITH sessions AS (
    SELECT asker, answerer, session,
        min(day) FILTER (WHERE reporter = asker) AS asker_day, min(day) AS any_day,
        max(CASE WHEN reporter = asker AND outcome = 'done' THEN 1 ELSE 0 END) AS done,
        max(CASE WHEN outcome = 'failed' THEN 1 ELSE 0 END) AS failed,
        max(CASE WHEN reporter = answerer AND outcome = 'done' THEN 1 ELSE 0 END) AS answerer_done,
        sum(CASE WHEN reporter = asker AND outcome = 'done' THEN items ELSE 0 END) AS items,
        sum(CASE WHEN reporter = asker AND outcome = 'done' THEN matched ELSE 0 END) AS matched,
        sum(CASE WHEN reporter = asker AND outcome = 'done' THEN new_hits ELSE 0 END) AS new_hits
    FROM match_reports
    WHERE opened_at >= ? AND opened_at < ? AND asker IN ({marks}) AND answerer IN ({marks})
    GROUP BY asker, answerer, session
)
SELECT asker, answerer, coalesce(asker_day, any_day) AS day, count(*), sum(done), sum(failed), sum(items),
    sum(matched), sum(new_hits), sum(done * answerer_done)
FROM sessions GROUP BY asker, answerer, day ORDER BY asker, answerer, day
"""
"""A session is counted once, on the day its asker opened it (the answerer's day when only it reported); its
figures are the asker's, who learned the intersection; the answerer's record only confirms it."""


class _Filter:
    """SQL conditions and parameters selecting a window's exchanges.

    Whole UTC days inside the period are read from ``tally_cells`` (kept by triggers); the partial days at its two
    ends (a period starts and ends at local midnight, rarely at UTC midnight) are counted from the rows, so that
    every count is exact and still costs a few thousand cells plus at most two days of rows.
    """

    def __init__(self, w: Window) -> None:
        period = w.period
        marks = ",".join("?" * len(period.participants))
        self.parties = f"sender IN ({marks}) AND recipient IN ({marks})"
        self.party_params: list[Any] = [*period.participants, *period.participants]
        self.where = f"created_at >= ? AND created_at < ? AND {self.parties}"
        """The period's exchanges, proven or not: add ``receipt_at IS NOT NULL`` to count only those made."""
        self.params: list[Any] = [format_time(period.start), format_time(period.end), *self.party_params]
        self.now = format_time(w.now)
        first_day = period.start.date() + timedelta(
            days=0 if period.start.timetz() == time(tzinfo=UTC) else 1
        )
        last_day = period.end.date()
        if first_day >= last_day:  # shorter than a whole day: every row is an edge row
            first_day = last_day = period.start.date()
        self.days = [first_day.isoformat(), last_day.isoformat()]
        """Whole days ``[first, last)`` read from the cells."""
        whole_start = format_time(datetime.combine(first_day, time(), UTC))
        whole_end = format_time(datetime.combine(last_day, time(), UTC))
        self.edges = (
            f"(created_at >= ? AND created_at < ? OR created_at >= ? AND created_at < ?) AND {self.parties}"
        )
        self.edge_params: list[Any] = [
            format_time(period.start),
            min(whole_start, format_time(period.end)),
            max(whole_end, format_time(period.start)),
            format_time(period.end),
            *self.party_params,
        ]


_CELL_COLUMN = {"created_day": "day"}


_INSERT_RECORDS = (
    "INSERT INTO records (record_id, reporter, event, message_id, at, received_at, raw) "
    "VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT DO NOTHING"
)


class SqlStore(ABC):
    """:class:`CoordinatorStore` on either engine: every statement, the folding and the row mapping.

    Subclasses say how their engine spells a few functions (:class:`Dialect`) and how it tells how many
    records a batch added.
    """

    dialect: Dialect

    def __init__(self, db: SqlDatabase) -> None:
        self.db = db
        self.sessions = Sessions(db)
        self._pair_answer = _pair_answer(self.dialect)

    @abstractmethod
    async def _inserted(self, conn: Any, sql: str, rows: Iterable[Sequence[Any]]) -> int:
        """Run ``sql`` (an insert that skips conflicts) for each row inside a transaction; how many it added."""

    async def ingest(self, records: Sequence[MetadataRecord], now: datetime) -> int:
        """See :meth:`CoordinatorStore.ingest`.

        One statement per kind of row for the whole batch (``executemany``), so a batch of 500 records costs a
        handful of round trips to the database, not thousands. Folding is idempotent and first-wins: a repeated record
        changes nothing, and a side's first report of a digest is never overwritten by a later one.
        """
        stamp = format_time(now)
        sent: list[tuple[Any, ...]] = []
        received: list[tuple[Any, ...]] = []
        read: list[tuple[Any, ...]] = []
        acknowledged: list[tuple[Any, ...]] = []
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
            elif record.event == "acknowledged":
                acknowledged.append((at, record.message_id))
            elif record.event == "answered":
                replies.append((record.reply_id, record.reply_digest, record.message_id))
                touched[record.message_id] = None
        async with self.db.transaction() as conn:
            new = await self._inserted(conn, _INSERT_RECORDS, record_rows)
            await conn.executemany(_UPSERT_EXCHANGE, exchange_rows)
            await conn.executemany(_FOLD_SENT, sent)
            await conn.executemany(_FIRST_OF_THREAD, [(row[-1],) for row in sent])
            await conn.executemany(_FOLD_RECEIVED, received)
            await conn.executemany(
                "UPDATE exchanges SET read_at = coalesce(read_at, ?) WHERE message_id = ?", read
            )
            await conn.executemany(_ACKNOWLEDGED, acknowledged)
            await conn.executemany(
                "UPDATE exchanges SET reply_id = ?, reply_digest = ? WHERE message_id = ? AND reply_id IS NULL",
                replies,
            )
            await conn.executemany(self._pair_answer, [(message_id,) for message_id in touched])
        return new

    async def ingest_matches(self, records: Sequence[MatchRecord], now: datetime) -> int:
        """See :meth:`CoordinatorStore.ingest_matches`; a side's first record of a session is the one kept."""
        rows = [
            (
                r.session,
                r.reporter,
                r.asker,
                r.answerer,
                format_time(r.opened_at),
                format_time(r.opened_at)[:10],
                r.items,
                r.matched,
                r.new_hits,
                r.outcome,
                r.code,
                format_time(now),
                r.model_dump_json(exclude_none=True).encode(),
            )
            for r in records
        ]
        async with self.db.transaction() as conn:
            return await self._inserted(conn, _INSERT_MATCH, rows)

    async def match_counts(self, w: Window) -> dict[tuple[str, str, str], MatchCounted]:
        """See :meth:`CoordinatorStore.match_counts`."""
        period = w.period
        marks = ",".join("?" * len(period.participants))
        rows = await self.db.fetchall(
            _MATCH_COUNTS.format(marks=marks),
            (format_time(period.start), format_time(period.end), *period.participants, *period.participants),
        )
        return {(r[0], r[1], r[2]): MatchCounted(*(int(v) for v in r[3:])) for r in rows}

    async def note_node(self, report: NodeReport, now: datetime, got_records: bool) -> None:
        """See :meth:`CoordinatorStore.note_node`."""
        stamp = format_time(now)
        oldest = format_time(report.oldest_queued_at) if report.oldest_queued_at else None
        greatest = self.dialect.greatest
        async with self.db.transaction() as conn:
            await conn.execute(
                "INSERT INTO node_status (participant, last_seen_at, last_record_at, backlog, oldest_queued_at, "  # noqa: S608
                "backlog_implausible) VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (participant) DO UPDATE SET "
                f"last_seen_at = {greatest}(excluded.last_seen_at, node_status.last_seen_at), "
                f"last_record_at = nullif({greatest}(coalesce(excluded.last_record_at, ''), "
                "coalesce(node_status.last_record_at, '')), ''), "
                "backlog = excluded.backlog, oldest_queued_at = excluded.oldest_queued_at, "
                "backlog_implausible = excluded.backlog_implausible",
                (
                    report.participant,
                    stamp,
                    stamp if got_records else None,
                    report.backlog,
                    oldest,
                    int(report.implausible),
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

    async def counts(
        self, w: Window, kind: Kind, by: tuple[Dimension, ...]
    ) -> dict[tuple[str, ...], Counted]:
        """See :meth:`CoordinatorStore.counts`.

        Whole days come from the cells (which count proven exchanges only), the edges from the rows.
        """
        f = _Filter(w)
        cells = ", ".join(_CELL_COLUMN.get(c, c) for c in by)
        rows = ", ".join(by)
        found: dict[tuple[str, ...], Counted] = {}
        for sql, params in (
            (
                f"SELECT {cells}, sum(n), sum(answered), sum(threads) FROM tally_cells WHERE kind = ? "  # noqa: S608
                f"AND day >= ? AND day < ? AND {f.parties} GROUP BY {cells}",
                [kind.value, *f.days, *f.party_params],
            ),
            (
                f"SELECT {rows}, count(*), count(answered_at), sum(thread_first) FROM exchanges "  # noqa: S608
                f"WHERE kind = ? AND receipt_at IS NOT NULL AND {f.edges} GROUP BY {rows}",
                [kind.value, *f.edge_params],
            ),
        ):
            for row in await self.db.fetchall(sql, params):
                key = tuple(row[: len(by)])
                n, answered, threads = found.get(key, Counted(0, 0, 0))
                more = row[len(by) :]
                found[key] = Counted(n + more[0], answered + more[1], threads + more[2])
        return found

    async def per_local_day(self, w: Window, kind: Kind) -> dict[str, int]:
        """See :meth:`CoordinatorStore.per_local_day`.

        The cells hold UTC days, so a period run in UTC reads them; a local day elsewhere straddles two UTC days,
        and is counted from the rows between the UTC instants it spans (one index range per day).
        """
        if w.period.zone is UTC:
            return {key[0]: n for key, (n, _, _) in (await self.counts(w, kind, ("created_day",))).items()}
        f = _Filter(w)
        days = w.period.local_days()
        spans = ", ".join("(?, ?, ?)" for _ in days)
        rows = await self.db.fetchall(
            f"WITH days (day, lo, hi) AS (VALUES {spans}) SELECT days.day, count(*) FROM days "  # noqa: S608
            "JOIN exchanges ON exchanges.kind = ? AND exchanges.created_at >= days.lo "
            f"AND exchanges.created_at < days.hi WHERE receipt_at IS NOT NULL AND {f.parties} GROUP BY days.day",
            [
                *(v for d in days for v in (d.day.isoformat(), format_time(d.start), format_time(d.end))),
                kind.value,
                *f.party_params,
            ],
        )
        return {r[0]: r[1] for r in rows}

    async def overdue_by_recipient(self, w: Window) -> dict[str, int]:
        """See :meth:`CoordinatorStore.overdue_by_recipient` (read through the open-rows index).

        The deadline runs from the receiver's signed receipt, and only proven enquiries have one.
        """
        f = _Filter(w)
        rows = await self.db.fetchall(
            "SELECT recipient, count(*) FROM exchanges WHERE kind = 'enquiry' AND answered_at IS NULL "  # noqa: S608
            f"AND deadline_at < ? AND {f.where} GROUP BY recipient",
            [f.now, *f.params],
        )
        return {r[0]: r[1] for r in rows}

    async def unproven_by_recipient(self, w: Window) -> dict[str, int]:
        """See :meth:`CoordinatorStore.unproven_by_recipient`.

        Every record other than ``sent`` comes from the recipient, and a ``sent`` record cannot be stored without
        its receipt, so an unproven exchange is always its recipient's word.
        """
        f = _Filter(w)
        rows = await self.db.fetchall(
            "SELECT recipient, count(*) FROM exchanges WHERE kind = 'enquiry' AND receipt_at IS NULL "  # noqa: S608
            f"AND {f.where} GROUP BY recipient",
            f.params,
        )
        return {r[0]: r[1] for r in rows}

    async def answer_time(
        self, w: Window, by: tuple[Dimension, ...], key: tuple[str, ...], rank: int
    ) -> float | None:
        """See :meth:`CoordinatorStore.answer_time`: one ``OFFSET`` walk along the index that holds answer times
        in order, instead of ranking every answered row."""
        f = _Filter(w)
        match = " AND ".join(f"{c} = ?" for c in by)
        rows = await self.db.fetchall(
            f"SELECT answer_s FROM exchanges WHERE kind = 'enquiry' AND {match} AND answer_s IS NOT NULL "  # noqa: S608
            f"AND {f.where} ORDER BY answer_s LIMIT 1 OFFSET ?",
            [*key, *f.params, rank - 1],
        )
        return rows[0][0] if rows else None

    async def open_enquiries(self, w: Window, overdue_only: bool, limit: int) -> list[OpenRow]:
        """See :meth:`CoordinatorStore.open_enquiries`."""
        f = _Filter(w)
        extra = " AND deadline_at < ?" if overdue_only else ""
        age = self.dialect.seconds.format(later="?", earlier="receipt_at")
        rows = await self.db.fetchall(
            "SELECT message_id, thread, sender, recipient, area, urgency, created_at, deadline_at, "  # noqa: S608
            f"{age}, deadline_at < ? FROM exchanges "
            f"WHERE kind = 'enquiry' AND answered_at IS NULL AND receipt_at IS NOT NULL AND {f.where}{extra} "
            "ORDER BY created_at LIMIT ?",
            [f.now, f.now, *f.params, *([f.now] if overdue_only else []), limit],
        )
        return [OpenRow._make((*r[:9], bool(r[9]))) for r in rows]

    async def exchanges(self, w: Window, s: Selection, open_only: bool, limit: int) -> list[ExchangeRow]:
        """See :meth:`CoordinatorStore.exchanges`."""
        f = _Filter(w)
        where, params = [f.where], list(f.params)
        for column, value in (
            ("sender", s.sender),
            ("recipient", s.recipient),
            ("area", s.area),
            ("urgency", s.urgency),
        ):
            if value is not None:
                where.append(f"{column} = ?")
                params.append(value)
        if s.country is not None:
            where.append("(sender = ? OR recipient = ?)")
            params += [s.country, s.country]
        if s.since is not None:
            where.append("created_at >= ?")
            params.append(format_time(s.since))
        if s.before is not None:
            where.append("created_at < ?")
            params.append(format_time(s.before))
        if open_only:
            where.append("kind = 'enquiry' AND answered_at IS NULL AND receipt_at IS NOT NULL")
        order = "deadline_at, created_at" if open_only else "created_at"
        rows = await self.db.fetchall(
            "SELECT message_id, kind, sender, recipient, area, urgency, created_at, receipt_at, deadline_at, "  # noqa: S608
            f"answered_at FROM exchanges WHERE {' AND '.join(where)} ORDER BY {order} LIMIT ?",
            [*params, limit],
        )
        return [ExchangeRow._make(tuple(r)) for r in rows]

    async def note_reminder(
        self, period: str, participant: str, officer: str, at: datetime, delivered: bool
    ) -> None:
        """See :meth:`CoordinatorStore.note_reminder`."""
        async with self.db.transaction() as conn:
            await conn.execute(
                "INSERT INTO reminders_sent (period, participant, officer, sent_at, delivered) VALUES (?, ?, ?, ?, ?)",
                (period, participant, officer, format_time(at), int(delivered)),
            )

    async def last_reminders(self, period: str) -> dict[str, tuple[str, bool]]:
        """See :meth:`CoordinatorStore.last_reminders`."""
        rows = await self.db.fetchall(
            "SELECT participant, sent_at, delivered FROM reminders_sent WHERE seq IN "
            "(SELECT max(seq) FROM reminders_sent WHERE period = ? GROUP BY participant)",
            (period,),
        )
        return {r[0]: (r[1], bool(r[2])) for r in rows}

    async def unmatched(self, w: Window, unconfirmed_since: datetime) -> list[Sides]:
        """See :meth:`CoordinatorStore.unmatched`."""
        f = _Filter(w)
        rows = await self.db.fetchall(
            "SELECT message_id, sender, recipient, kind, created_at, sent_at, received_at, sent_digest, "  # noqa: S608
            "received_digest, sent_receipt, received_receipt, header_mismatch FROM exchanges WHERE "
            f"{f.where} AND ((sent_at IS NULL OR received_at IS NULL) AND first_record_at < ? "
            "OR header_mismatch = 1 OR sent_digest != received_digest OR sent_receipt != received_receipt) "
            "ORDER BY created_at",
            [*f.params, format_time(unconfirmed_since)],
        )
        return [Sides._make((*r[:11], bool(r[11]))) for r in rows]

    async def node_reports(self) -> dict[str, tuple[str, str | None, int, str | None, bool]]:
        """See :meth:`CoordinatorStore.node_reports`."""
        rows = await self.db.fetchall(
            "SELECT participant, last_seen_at, last_record_at, backlog, oldest_queued_at, backlog_implausible "
            "FROM node_status"
        )
        return {r[0]: (r[1], r[2], r[3], r[4], bool(r[5])) for r in rows}

    async def open_session(self, id_hash: str, officer: str, now: datetime, expires: datetime) -> None:
        """See :meth:`CoordinatorStore.open_session`."""
        await self.sessions.open_session(id_hash, officer, now, expires)

    async def session(self, id_hash: str) -> Session | None:
        """See :meth:`CoordinatorStore.session`."""
        return await self.sessions.session(id_hash)

    async def end_session(self, id_hash: str) -> None:
        """See :meth:`CoordinatorStore.end_session`."""
        await self.sessions.end_session(id_hash)

    async def ping(self) -> None:
        """See :meth:`CoordinatorStore.ping`."""
        await self.db.ping()


class SqliteStore(SqlStore):
    """:class:`CoordinatorStore` on the node's SQLite file (the coordinator's tables beside its keys' records)."""

    dialect = SQLITE

    def __init__(self, db: Database) -> None:
        super().__init__(db)

    async def _inserted(self, conn: Any, sql: str, rows: Iterable[Sequence[Any]]) -> int:
        before: int = conn.total_changes
        await conn.executemany(sql, rows)
        after: int = conn.total_changes
        return after - before


class PostgresStore(SqlStore):
    """:class:`CoordinatorStore` on a PostgreSQL database of its own (see :mod:`node.storage.postgres`)."""

    dialect = POSTGRES

    def __init__(self, db: PostgresDatabase) -> None:
        super().__init__(db)

    async def _inserted(self, conn: PostgresWriter, sql: str, rows: Iterable[Sequence[Any]]) -> int:
        return await conn.inserted(sql, rows)
