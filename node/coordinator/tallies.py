"""The Period of Action's figures, each one SQL aggregate over the ``exchanges`` table.

Only enquiries created inside the period, between two of its participants, are counted. Response time is
from an enquiry's creation to the first reply to it; percentiles are nearest-rank, computed in SQL with window
functions so that no query loads rows into Python beyond its result.
"""

from __future__ import annotations

from datetime import datetime
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
    """Per country: enquiries sent and received, replies sent, answered, outstanding, overdue."""

    country: str
    sent: int
    received: int
    replies_sent: int
    answered: int
    outstanding: int
    overdue: int


class ResponseTime(BaseModel):
    """Response times (seconds) of the enquiries a country (or a pair) answered."""

    key: str
    answered: int
    median_s: float | None
    p90_s: float | None


class OpenEnquiry(BaseModel):
    """An unanswered enquiry: ids, pair and age only."""

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

    enquiries: int
    replies: int
    answered: int
    outstanding: int
    overdue: int
    unconfirmed: int
    disputed: int
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
    """SQL condition and parameters selecting a period's exchanges."""

    def __init__(self, period: Period, now: datetime) -> None:
        marks = ",".join("?" * len(period.participants))
        self.where = f"created_at >= ? AND created_at < ? AND sender IN ({marks}) AND recipient IN ({marks})"
        self.params: list[Any] = [
            format_time(period.start),
            format_time(period.end),
            *period.participants,
            *period.participants,
        ]
        self.now = format_time(now)
        self.participants = sorted(period.participants)


async def _counts(store: CoordinatorStore, w: Window, column: str) -> list[Count]:
    rows = await store.query(
        f"SELECT {column}, count(*) FROM exchanges WHERE kind = 'enquiry' AND {w.where} "  # noqa: S608 - fixed fragments
        f"GROUP BY {column} ORDER BY {column}",
        w.params,
    )
    return [Count(key=r[0], count=r[1]) for r in rows]


async def _response(store: CoordinatorStore, w: Window, columns: tuple[str, ...]) -> list[ResponseTime]:
    """Nearest-rank median and 90th percentile of answer times, per value of ``columns`` (joined by →)."""
    keys = ", ".join(columns)
    rows = await store.query(
        f"WITH r AS (SELECT {keys}, answer_s, "  # noqa: S608 - fixed fragments
        f"ROW_NUMBER() OVER (PARTITION BY {keys} ORDER BY answer_s) AS rn, "
        f"COUNT(*) OVER (PARTITION BY {keys}) AS n "
        f"FROM exchanges WHERE kind = 'enquiry' AND answer_s IS NOT NULL AND {w.where}) "
        f"SELECT {keys}, max(n), min(CASE WHEN rn >= 0.5 * n THEN answer_s END), "
        f"min(CASE WHEN rn >= 0.9 * n THEN answer_s END) FROM r GROUP BY {keys} ORDER BY {keys}",
        w.params,
    )
    width = len(columns)
    return [
        ResponseTime(key="→".join(r[:width]), answered=r[width], median_s=r[width + 1], p90_s=r[width + 2])
        for r in rows
    ]


async def compute(store: CoordinatorStore, period: Period, now: datetime, grace_s: float) -> Tallies:
    """All tallies of ``period`` as of ``now``."""
    w = Window(period, now)
    countries = await country_flows(store, w)
    pairs = [
        PairCount(sender=r[0], recipient=r[1], count=r[2], answered=r[3])
        for r in await store.query(
            "SELECT sender, recipient, count(*), count(answered_at) FROM exchanges "  # noqa: S608 - fixed fragments
            f"WHERE kind = 'enquiry' AND {w.where} GROUP BY sender, recipient ORDER BY count(*) DESC, sender, recipient",
            w.params,
        )
    ]
    flagged = await flags(store, w, now, grace_s)
    total_row = (
        await store.query(
            "SELECT count(*), count(answered_at), "  # noqa: S608 - fixed fragments
            "sum(answered_at IS NULL), sum(answered_at IS NULL AND due_at < ?) "
            f"FROM exchanges WHERE kind = 'enquiry' AND {w.where}",
            [w.now, *w.params],
        )
    )[0]
    replies = (
        await store.query(
            f"SELECT count(*) FROM exchanges WHERE kind = 'reply' AND {w.where}",  # noqa: S608 - fixed fragments
            w.params,
        )
    )[0][0]
    totals = Totals(
        enquiries=total_row[0],
        replies=replies,
        answered=total_row[1],
        outstanding=total_row[2] or 0,
        overdue=total_row[3] or 0,
        unconfirmed=sum(1 for f in flagged if f.flag == "unconfirmed"),
        disputed=sum(1 for f in flagged if f.flag == "disputed"),
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
    sent = await store.query(
        "SELECT sender, count(*), count(answered_at) FROM exchanges "  # noqa: S608 - fixed fragments
        f"WHERE kind = 'enquiry' AND {w.where} GROUP BY sender",
        w.params,
    )
    received = await store.query(
        "SELECT recipient, count(*), sum(answered_at IS NULL), sum(answered_at IS NULL AND due_at < ?) "  # noqa: S608
        f"FROM exchanges WHERE kind = 'enquiry' AND {w.where} GROUP BY recipient",
        [w.now, *w.params],
    )
    replies = await store.query(
        f"SELECT sender, count(*) FROM exchanges WHERE kind = 'reply' AND {w.where} GROUP BY sender",  # noqa: S608
        w.params,
    )
    by_sent = {r[0]: (r[1], r[2]) for r in sent}
    by_received = {r[0]: (r[1], r[2] or 0, r[3] or 0) for r in received}
    by_replies = {r[0]: r[1] for r in replies}
    return [
        CountryFlow(
            country=c,
            sent=by_sent.get(c, (0, 0))[0],
            received=by_received.get(c, (0, 0, 0))[0],
            replies_sent=by_replies.get(c, 0),
            answered=by_received.get(c, (0, 0, 0))[0] - by_received.get(c, (0, 0, 0))[1],
            outstanding=by_received.get(c, (0, 0, 0))[1],
            overdue=by_received.get(c, (0, 0, 0))[2],
        )
        for c in w.participants
    ]


async def open_enquiries(
    store: CoordinatorStore, period: Period, now: datetime, overdue_only: bool, limit: int = 1000
) -> list[OpenEnquiry]:
    """Unanswered enquiries of the period, oldest first (ids, pair, age; never content)."""
    w = Window(period, now)
    extra = " AND due_at < ?" if overdue_only else ""
    rows = await store.query(
        "SELECT message_id, thread, sender, recipient, area, urgency, created_at, due_at, "  # noqa: S608
        "(julianday(?) - julianday(created_at)) * 86400.0, due_at < ? FROM exchanges "
        f"WHERE kind = 'enquiry' AND answered_at IS NULL AND {w.where}{extra} ORDER BY created_at LIMIT ?",
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
