"""The Period of Action's figures, each one SQL aggregate over the ``exchanges`` table.

Only enquiries created inside the period, between two of its participants, are counted, and only those proven
made: a ``sent`` record brought the receiver's signed receipt. The rest (one side's word only) is shown apart as
unproven and enters no other figure. Enquiries are counted twice over, labelled: as threads (one enquiry as
officers count it, however many countries it went to) and as messages (one per recipient). Deadlines and
response times run from the receiver's signed receipt time; an enquiry is answered when the reply its
recipient named arrived with the enquirer's receipt, at that receipt's time. Percentiles are nearest-rank,
computed in SQL so that no query loads rows into Python beyond its result.
"""

from __future__ import annotations

import math
from datetime import UTC, datetime, time, timedelta
from typing import Any

from pydantic import BaseModel

from node.coordinator.store import CoordinatorStore
from protocol.encoding import format_time
from protocol.period import Period


class Count(BaseModel):
    """A labelled count."""

    key: str
    count: int


class PairCount(BaseModel):
    """Enquiries from one country to another."""

    sender: str
    recipient: str
    count: int
    answered: int


class CountryFlow(BaseModel):
    """Per country: enquiries sent (threads and messages) and received, replies sent, answered, outstanding,
    overdue, and enquiries it alone says it received (unproven, counted in nothing else)."""

    country: str
    threads_sent: int
    sent: int
    received: int
    replies_sent: int
    answered: int
    outstanding: int
    overdue: int
    unproven: int


class ResponseTime(BaseModel):
    """Response times (seconds) of the enquiries a country (or a pair) answered."""

    key: str
    answered: int
    median_s: float | None
    p90_s: float | None


class OpenEnquiry(BaseModel):
    """An unanswered enquiry: ids, pair and age only (age and deadline from the receiver's receipt time)."""

    message_id: str
    thread: str
    sender: str
    recipient: str
    area: str
    urgency: str
    created_at: str
    due_at: str | None
    age_s: float
    overdue: bool


class Flagged(BaseModel):
    """An exchange whose two sides do not agree (``unconfirmed``) or contradict each other (``disputed``)."""

    message_id: str
    sender: str
    recipient: str
    kind: str
    created_at: str
    flag: str
    detail: str


class Totals(BaseModel):
    """Headline numbers of the period."""

    enquiry_threads: int
    """Enquiries as officers count them: one per thread, however many countries it was sent to."""
    enquiries: int
    """Enquiry messages: one per recipient."""
    replies: int
    answered: int
    outstanding: int
    overdue: int
    unconfirmed: int
    disputed: int
    unproven: int
    """Enquiry messages only their recipient reports, with no receipt from the sender's side: in no other figure."""
    countries_active: int


class Tallies(BaseModel):
    """Everything the dashboard and the report show about the exchange."""

    period: str
    start: str
    end: str
    as_of: str
    totals: Totals
    countries: list[CountryFlow]
    pairs: list[PairCount]
    days: list[Count]
    areas: list[Count]
    urgencies: list[Count]
    response_by_country: list[ResponseTime]
    response_by_pair: list[ResponseTime]


class Window:
    """SQL conditions and parameters selecting a period's exchanges.

    Whole UTC days inside the period are read from ``tally_cells`` (kept by triggers); the partial days at its two
    ends (a period starts and ends at local midnight, rarely at UTC midnight) are counted from the rows, so that
    every count is exact and still costs a few thousand cells plus at most two days of rows.
    """

    def __init__(self, period: Period, now: datetime) -> None:
        marks = ",".join("?" * len(period.participants))
        self.parties = f"sender IN ({marks}) AND recipient IN ({marks})"
        self.party_params: list[Any] = [*period.participants, *period.participants]
        self.where = f"created_at >= ? AND created_at < ? AND {self.parties}"
        """The period's exchanges, proven or not: add ``receipt_at IS NOT NULL`` to count only those made."""
        self.params: list[Any] = [format_time(period.start), format_time(period.end), *self.party_params]
        self.now = format_time(now)
        self.participants = sorted(period.participants)
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


async def grouped(
    store: CoordinatorStore, w: Window, kind: str, columns: tuple[str, ...]
) -> dict[tuple[str, ...], tuple[int, int, int]]:
    """(messages, answered, threads) per value of ``columns`` for the period's proven exchanges.

    Whole days come from the cells (which count proven exchanges only), the edges from the rows.
    """
    cells = ", ".join(_CELL_COLUMN.get(c, c) for c in columns)
    rows = ", ".join(columns)
    found: dict[tuple[str, ...], tuple[int, int, int]] = {}
    for sql, params in (
        (
            f"SELECT {cells}, sum(n), sum(answered), sum(threads) FROM tally_cells WHERE kind = ? "  # noqa: S608
            f"AND day >= ? AND day < ? AND {w.parties} GROUP BY {cells}",
            [kind, *w.days, *w.party_params],
        ),
        (
            f"SELECT {rows}, count(*), count(answered_at), sum(thread_first) FROM exchanges "  # noqa: S608
            f"WHERE kind = ? AND receipt_at IS NOT NULL AND {w.edges} GROUP BY {rows}",
            [kind, *w.edge_params],
        ),
    ):
        for row in await store.query(sql, params):
            key = tuple(row[: len(columns)])
            n, answered, threads = found.get(key, (0, 0, 0))
            more = row[len(columns) :]
            found[key] = (n + more[0], answered + more[1], threads + more[2])
    return found


async def overdue_by_recipient(store: CoordinatorStore, w: Window) -> dict[str, int]:
    """Unanswered enquiries past their deadline, per answering country (read through the open-rows index).

    The deadline runs from the receiver's signed receipt, and only proven enquiries have one.
    """
    rows = await store.query(
        "SELECT recipient, count(*) FROM exchanges WHERE kind = 'enquiry' AND answered_at IS NULL "  # noqa: S608
        f"AND deadline_at < ? AND {w.where} GROUP BY recipient",
        [w.now, *w.params],
    )
    return {r[0]: r[1] for r in rows}


async def unproven_by_recipient(store: CoordinatorStore, w: Window) -> dict[str, int]:
    """Enquiry messages with no receipt from the sender's side, per the recipient that alone reports them.

    Every record other than ``sent`` comes from the recipient, and a ``sent`` record cannot be stored without
    its receipt, so an unproven exchange is always its recipient's word.
    """
    rows = await store.query(
        "SELECT recipient, count(*) FROM exchanges WHERE kind = 'enquiry' AND receipt_at IS NULL "  # noqa: S608
        f"AND {w.where} GROUP BY recipient",
        w.params,
    )
    return {r[0]: r[1] for r in rows}


async def _counts(store: CoordinatorStore, w: Window, column: str) -> list[Count]:
    counted = await grouped(store, w, "enquiry", (column,))
    return [Count(key=key[0], count=n) for key, (n, _, _) in sorted(counted.items())]


async def _response(store: CoordinatorStore, w: Window, columns: tuple[str, ...]) -> list[ResponseTime]:
    """Nearest-rank median and 90th percentile of answer times, per value of ``columns`` (joined by →).

    How many answers each key has comes from the cells; each percentile is then one ``OFFSET`` walk along the
    index that holds answer times in order, instead of ranking every answered row.
    """
    counts = await grouped(store, w, "enquiry", columns)
    match = " AND ".join(f"{c} = ?" for c in columns)
    result = []
    for key, (_, answered, _) in sorted(counts.items()):
        if not answered:
            continue
        values = []
        for share in (0.5, 0.9):
            rank = max(1, math.ceil(share * answered - 1e-9))
            rows = await store.query(
                f"SELECT answer_s FROM exchanges WHERE kind = 'enquiry' AND {match} AND answer_s IS NOT NULL "  # noqa: S608
                f"AND {w.where} ORDER BY answer_s LIMIT 1 OFFSET ?",
                [*key, *w.params, rank - 1],
            )
            values.append(rows[0][0] if rows else None)
        result.append(ResponseTime(key="→".join(key), answered=answered, median_s=values[0], p90_s=values[1]))
    return result


async def compute(store: CoordinatorStore, period: Period, now: datetime, grace_s: float) -> Tallies:
    """All tallies of ``period`` as of ``now``."""
    w = Window(period, now)
    countries = await country_flows(store, w)
    pair_counts = await grouped(store, w, "enquiry", ("sender", "recipient"))
    pairs = sorted(
        (PairCount(sender=k[0], recipient=k[1], count=n, answered=a) for k, (n, a, _) in pair_counts.items()),
        key=lambda p: (-p.count, p.sender, p.recipient),
    )
    flagged = await flags(store, w, now, grace_s)
    totals = Totals(
        enquiry_threads=sum(c.threads_sent for c in countries),
        enquiries=sum(c.sent for c in countries),
        replies=sum(c.replies_sent for c in countries),
        answered=sum(c.answered for c in countries),
        outstanding=sum(c.outstanding for c in countries),
        overdue=sum(c.overdue for c in countries),
        unconfirmed=sum(1 for f in flagged if f.flag == "unconfirmed"),
        disputed=sum(1 for f in flagged if f.flag == "disputed"),
        unproven=sum(c.unproven for c in countries),
        countries_active=sum(1 for c in countries if c.sent or c.received),
    )
    return Tallies(
        period=period.name,
        start=format_time(period.start),
        end=format_time(period.end),
        as_of=w.now,
        totals=totals,
        countries=countries,
        pairs=pairs,
        days=await _counts(store, w, "created_day"),
        areas=await _counts(store, w, "area"),
        urgencies=await _counts(store, w, "urgency"),
        response_by_country=await _response(store, w, ("recipient",)),
        response_by_pair=await _response(store, w, ("sender", "recipient")),
    )


async def country_flows(store: CoordinatorStore, w: Window) -> list[CountryFlow]:
    """Per-country flows; countries of the period with no traffic are listed with zeros."""
    sent = await grouped(store, w, "enquiry", ("sender",))
    received = await grouped(store, w, "enquiry", ("recipient",))
    replies = await grouped(store, w, "reply", ("sender",))
    overdue = await overdue_by_recipient(store, w)
    unproven = await unproven_by_recipient(store, w)
    flows = []
    for c in w.participants:
        got, answered, _ = received.get((c,), (0, 0, 0))
        messages, _, threads = sent.get((c,), (0, 0, 0))
        flows.append(
            CountryFlow(
                country=c,
                threads_sent=threads,
                sent=messages,
                received=got,
                replies_sent=replies.get((c,), (0, 0, 0))[0],
                answered=answered,
                outstanding=got - answered,
                overdue=overdue.get(c, 0),
                unproven=unproven.get(c, 0),
            )
        )
    return flows


async def open_enquiries(
    store: CoordinatorStore, period: Period, now: datetime, overdue_only: bool, limit: int = 1000
) -> list[OpenEnquiry]:
    """Unanswered proven enquiries of the period, oldest first (ids, pair, age; never content)."""
    w = Window(period, now)
    extra = " AND deadline_at < ?" if overdue_only else ""
    rows = await store.query(
        "SELECT message_id, thread, sender, recipient, area, urgency, created_at, deadline_at, "  # noqa: S608
        "(julianday(?) - julianday(receipt_at)) * 86400.0, deadline_at < ? FROM exchanges "
        f"WHERE kind = 'enquiry' AND answered_at IS NULL AND receipt_at IS NOT NULL AND {w.where}{extra} "
        "ORDER BY created_at LIMIT ?",
        [w.now, w.now, *w.params, *([w.now] if overdue_only else []), limit],
    )
    return [
        OpenEnquiry(
            message_id=r[0],
            thread=r[1],
            sender=r[2],
            recipient=r[3],
            area=r[4],
            urgency=r[5],
            created_at=r[6],
            due_at=r[7],
            age_s=round(r[8], 1),
            overdue=bool(r[9]),
        )
        for r in rows
    ]


async def flags(store: CoordinatorStore, w: Window, now: datetime, grace_s: float) -> list[Flagged]:
    """Exchanges one side claims and the other has not confirmed past the grace time, or that contradict."""
    cutoff = format_time(datetime.fromtimestamp(now.timestamp() - grace_s, tz=now.tzinfo))
    rows = await store.query(
        "SELECT message_id, sender, recipient, kind, created_at, sent_at, received_at, sent_digest, "  # noqa: S608
        "received_digest, sent_receipt, received_receipt, header_mismatch FROM exchanges WHERE "
        f"{w.where} AND ((sent_at IS NULL OR received_at IS NULL) AND first_record_at < ? "
        "OR header_mismatch = 1 OR sent_digest != received_digest OR sent_receipt != received_receipt) "
        "ORDER BY created_at",
        [*w.params, cutoff],
    )
    result = []
    for r in rows:
        if r[11] or (r[5] and r[6] and (r[7] != r[8] or r[9] != r[10])):
            what = (
                "the two sides report different headers"
                if r[11]
                else "the two sides report different digests"
            )
            flag = "disputed"
        else:
            flag = "unconfirmed"
            what = "no record from the receiver" if r[6] is None else "no record from the sender"
        result.append(
            Flagged(
                message_id=r[0],
                sender=r[1],
                recipient=r[2],
                kind=r[3],
                created_at=r[4],
                flag=flag,
                detail=what,
            )
        )
    return result
