"""The Period of Action's figures, assembled from the aggregates the coordinator's store computes.

Only enquiries created inside the period, between two of its participants, are counted, and only those proven
made: a ``sent`` record brought the receiver's signed receipt. The rest (one side's word only) is shown apart as
unproven and enters no other figure. Enquiries are counted twice over, labelled: as threads (one enquiry as
officers count it, however many countries it went to) and as messages (one per recipient). Deadlines and
response times run from the receiver's signed receipt time; an enquiry is answered when the reply its
recipient named arrived with the enquirer's receipt, at that receipt's time. Percentiles are nearest-rank: the
rank is worked out here and the store reads the one answer time at that rank, so that no rows are loaded into
Python beyond each query's result.
"""

from __future__ import annotations

import math
from datetime import datetime

from pydantic import BaseModel

from node.coordinator.store import CoordinatorStore, Counted, Dimension, Window
from protocol.codes import Kind
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


class NoticeCount(BaseModel):
    """Deconfliction notices from one country to another on one UTC day of creation, and how many of them the
    recipient acknowledged (metadata only: the coordinator never learns what a notice names)."""

    sender: str
    recipient: str
    day: str
    sent: int
    acknowledged: int


class MatchCount(BaseModel):
    """Private matching sessions one country ran against another on one UTC day, from the session records
    (counts only: the coordinator never learns an item, a token or the size of the answerer's list)."""

    asker: str
    answerer: str
    day: str
    sessions: int
    done: int
    failed: int
    """Ended without a result: refused by the answerer (a spent budget, say) or broken off."""
    items: int
    """Items asked about in the sessions done."""
    hits: int
    """New hits: items both hold, each counted once, on the day first found."""
    confirmed: int
    """Sessions done that the answerer's own record confirms."""


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
    notices: int
    """Deconfliction notices proven delivered (one per recipient)."""
    notices_acknowledged: int
    matching_sessions: int = 0
    """Private matching sessions between participants (either side reported)."""
    matching_hits: int = 0
    """New hits those sessions found."""


class Tallies(BaseModel):
    """Everything the dashboard and the report show about the exchange."""

    period: str
    start: str
    end: str
    as_of: str
    timezone: str = "UTC"
    """The period's zone: ``days`` are its calendar days; the instants above are UTC."""
    totals: Totals
    countries: list[CountryFlow]
    pairs: list[PairCount]
    days: list[Count]
    areas: list[Count]
    urgencies: list[Count]
    response_by_country: list[ResponseTime]
    response_by_pair: list[ResponseTime]
    notices: list[NoticeCount]
    """Per pair and day."""
    matching: list[MatchCount] = []
    """Private matching sessions per pair (asker → answerer) and day."""


async def _counts(store: CoordinatorStore, w: Window, by: Dimension) -> list[Count]:
    counted = await store.counts(w, Kind.ENQUIRY, (by,))
    return [Count(key=key[0], count=n) for key, (n, _, _) in sorted(counted.items())]


async def _response(store: CoordinatorStore, w: Window, by: tuple[Dimension, ...]) -> list[ResponseTime]:
    """Nearest-rank median and 90th percentile of answer times, per value of ``by`` (joined by →).

    How many answers each key has comes from the counts; each percentile is then one ranked read.
    """
    counts = await store.counts(w, Kind.ENQUIRY, by)
    result = []
    for key, (_, answered, _) in sorted(counts.items()):
        if not answered:
            continue
        median, p90 = [
            await store.answer_time(w, by, key, max(1, math.ceil(share * answered - 1e-9)))
            for share in (0.5, 0.9)
        ]
        result.append(ResponseTime(key="→".join(key), answered=answered, median_s=median, p90_s=p90))
    return result


async def compute(store: CoordinatorStore, period: Period, now: datetime, grace_s: float) -> Tallies:
    """All tallies of ``period`` as of ``now``."""
    w = Window(period, now)
    countries = await country_flows(store, w)
    pair_counts = await store.counts(w, Kind.ENQUIRY, ("sender", "recipient"))
    pairs = sorted(
        (PairCount(sender=k[0], recipient=k[1], count=n, answered=a) for k, (n, a, _) in pair_counts.items()),
        key=lambda p: (-p.count, p.sender, p.recipient),
    )
    flagged = await flags(store, w, now, grace_s)
    notices = await notice_counts(store, w)
    matching = [
        MatchCount(
            asker=k[0],
            answerer=k[1],
            day=k[2],
            sessions=c.sessions,
            done=c.done,
            failed=c.failed,
            items=c.items,
            hits=c.new_hits,
            confirmed=c.confirmed,
        )
        for k, c in sorted((await store.match_counts(w)).items())
    ]
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
        notices=sum(n.sent for n in notices),
        notices_acknowledged=sum(n.acknowledged for n in notices),
        matching_sessions=sum(m.sessions for m in matching),
        matching_hits=sum(m.hits for m in matching),
    )
    return Tallies(
        period=period.name,
        start=format_time(period.start),
        end=format_time(period.end),
        as_of=format_time(now),
        timezone=period.zone_name,
        totals=totals,
        countries=countries,
        pairs=pairs,
        days=[Count(key=k, count=n) for k, n in sorted((await store.per_local_day(w, Kind.ENQUIRY)).items())],
        areas=await _counts(store, w, "area"),
        urgencies=await _counts(store, w, "urgency"),
        response_by_country=await _response(store, w, ("recipient",)),
        response_by_pair=await _response(store, w, ("sender", "recipient")),
        notices=notices,
        matching=matching,
    )


async def notice_counts(store: CoordinatorStore, w: Window) -> list[NoticeCount]:
    """Proven deconfliction notices per pair and day (the store counts a notice's acknowledgement as its answer)."""
    counted = await store.counts(w, Kind.NOTICE, ("sender", "recipient", "created_day"))
    return [
        NoticeCount(sender=k[0], recipient=k[1], day=k[2], sent=n, acknowledged=a)
        for k, (n, a, _) in sorted(counted.items())
    ]


async def country_flows(store: CoordinatorStore, w: Window) -> list[CountryFlow]:
    """Per-country flows; countries of the period with no traffic are listed with zeros."""
    sent = await store.counts(w, Kind.ENQUIRY, ("sender",))
    received = await store.counts(w, Kind.ENQUIRY, ("recipient",))
    replies = await store.counts(w, Kind.REPLY, ("sender",))
    overdue = await store.overdue_by_recipient(w)
    unproven = await store.unproven_by_recipient(w)
    zero = Counted(0, 0, 0)
    flows = []
    for c in sorted(w.period.participants):
        got, answered, _ = received.get((c,), zero)
        messages, _, threads = sent.get((c,), zero)
        flows.append(
            CountryFlow(
                country=c,
                threads_sent=threads,
                sent=messages,
                received=got,
                replies_sent=replies.get((c,), zero).messages,
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
    rows = await store.open_enquiries(Window(period, now), overdue_only, limit)
    return [OpenEnquiry(**row._replace(age_s=round(row.age_s, 1))._asdict()) for row in rows]


async def flags(store: CoordinatorStore, w: Window, now: datetime, grace_s: float) -> list[Flagged]:
    """Exchanges one side claims and the other has not confirmed past the grace time, or that contradict."""
    cutoff = datetime.fromtimestamp(now.timestamp() - grace_s, tz=now.tzinfo)
    result = []
    for r in await store.unmatched(w, cutoff):
        if r.header_mismatch or (
            r.sent_at
            and r.received_at
            and (r.sent_digest != r.received_digest or r.sent_receipt != r.received_receipt)
        ):
            what = (
                "the two sides report different headers"
                if r.header_mismatch
                else "the two sides report different digests"
            )
            flag = "disputed"
        else:
            flag = "unconfirmed"
            what = "no record from the receiver" if r.received_at is None else "no record from the sender"
        result.append(
            Flagged(
                message_id=r.message_id,
                sender=r.sender,
                recipient=r.recipient,
                kind=r.kind,
                created_at=r.created_at,
                flag=flag,
                detail=what,
            )
        )
    return result
