"""Records at the coordinator: forged ones are refused and change no tally; tallies equal independent counts.

The coordinator service runs on a real SQLite file with real signatures; records are made with the same
function the nodes use (``protocol.records.make_record``).
"""

from __future__ import annotations

import random
from collections import Counter
from datetime import timedelta

import pytest

from keys import Identity
from node.coordinator.tallies import Window, compute, flags
from protocol.codes import CrimeArea, Urgency
from protocol.encoding import format_time
from protocol.envelope import Envelope
from protocol.period import Period
from protocol.records import make_record
from tests.coordinator.support import COUNTRIES, END, START, Coordinator


async def test_forged_and_misattributed_records_are_refused_and_change_nothing(
    coordinator: Coordinator,
) -> None:
    c = coordinator
    [enquiry] = c.enquiry("TH", "MY", START + timedelta(days=1))
    await c.deliver(enquiry)
    before = (await c.tallies()).model_dump(exclude={"as_of"})
    records_before = await c.count("records")

    [other] = c.enquiry("TH", "MY", START + timedelta(days=2))
    at = START + timedelta(days=2, seconds=1)
    receipt = c.receipt(other, at)
    good = c.record(other, "sent", at, receipt)
    tampered = good.model_copy(update={"area": CrimeArea.MONEY_LAUNDERING}).wire()
    outsider = Identity.generate("VN")
    to_outsider = other.header.model_copy(update={"recipient": "VN"})
    stranger = make_record(to_outsider, "received", outsider, at, other.digest(), bytes(10), receipt)
    third_party = c.record(other, "received", at, receipt, reporter="ID")
    wrong_side = c.record(other, "sent", at, receipt, reporter="MY")
    read_by_sender = c.record(other, "read", at, reporter="TH")
    answered_by_sender = c.record(other, "answered", at, reply=c.reply(other, at), reporter="TH")
    cases = [
        ("TH", tampered, "bad_signature"),
        ("VN", stranger, "unknown_sender"),
        ("ID", third_party, "not_for_us"),  # ID claims to have received a message between TH and MY
        ("MY", good, "not_for_us"),  # MY submits a record TH signed
        ("MY", wrong_side, "not_for_us"),  # the recipient claims the sender's event
        ("TH", read_by_sender, "not_for_us"),  # only the recipient knows it was read
        ("TH", answered_by_sender, "not_for_us"),  # or answered
        ("TH", {"record_id": "x", "event": "sent"}, "malformed"),
    ]
    for reporter, record, code in cases:
        assert await c.send(reporter, record) == [code]
    assert await c.count("records") == records_before
    assert (await c.tallies()).model_dump(exclude={"as_of"}) == before


async def test_a_repeated_record_is_stored_once(coordinator: Coordinator) -> None:
    c = coordinator
    [enquiry] = c.enquiry("ID", "AU", START + timedelta(days=3))
    receipt = c.receipt(enquiry, START + timedelta(days=3, seconds=1))
    record = c.record(enquiry, "sent", receipt.received_at, receipt)
    assert await c.send("ID", record, record) == [None, None]
    assert await c.send("ID", record) == [None]
    assert await c.count("records") == 1
    assert (await c.tallies()).totals.enquiries == 1


async def test_disputed_and_unconfirmed_exchanges_are_flagged(coordinator: Coordinator) -> None:
    c = coordinator
    c.now[0] = START + timedelta(
        days=3
    )  # records arrive now: inside the grace time, nothing is unconfirmed yet
    [agreed] = c.enquiry("TH", "MY", START + timedelta(days=1))
    await c.deliver(agreed)
    [disputed, honest] = c.enquiry("TH", ["ID", "AU"], START + timedelta(days=1))
    receipt = c.receipt(disputed, disputed.header.created_at + timedelta(seconds=1))
    await c.send("TH", c.record(disputed, "sent", receipt.received_at, receipt))
    other_receipt = c.receipt(disputed, disputed.header.created_at + timedelta(seconds=2))
    await c.send("ID", c.record(disputed, "received", other_receipt.received_at, other_receipt))
    one_sided = c.enquiry("AU", "MY", START + timedelta(days=2))[0]
    receipt = c.receipt(one_sided, one_sided.header.created_at)
    await c.send("AU", c.record(one_sided, "sent", receipt.received_at, receipt))
    await c.deliver(honest)

    window = Window(c.period, c.now[0])
    early = {f.message_id: f.flag for f in await flags(c.store, window, c.now[0], c.service.grace_s)}
    assert early == {disputed.header.id: "disputed"}
    later = c.now[0] + timedelta(hours=2)
    found = {f.message_id: f.flag for f in await flags(c.store, window, later, c.service.grace_s)}
    assert found == {disputed.header.id: "disputed", one_sided.header.id: "unconfirmed"}


async def test_records_outside_the_period_are_kept_but_not_counted(coordinator: Coordinator) -> None:
    c = coordinator
    for created in (START - timedelta(days=1), END + timedelta(hours=1), START + timedelta(days=1)):
        await c.deliver(c.enquiry("TH", "MY", created)[0])
    assert await c.count("records") == 6
    assert (await c.tallies()).totals.enquiries == 1


def nearest_rank(values: list[float], p: float) -> float:
    ordered = sorted(values)
    rank = max(1, -(-int(p * len(ordered) * 1000) // 1000))
    return ordered[min(len(ordered), rank) - 1]


async def test_tallies_equal_counts_made_independently(coordinator: Coordinator) -> None:
    c = coordinator
    plan = random.Random(2015)
    pairs: Counter[tuple[str, str]] = Counter()
    areas: Counter[str] = Counter()
    urgencies: Counter[str] = Counter()
    days: Counter[str] = Counter()
    replies: Counter[str] = Counter()
    answer_times: dict[str, list[float]] = {}
    outstanding = overdue = 0
    for _ in range(120):
        sender, recipient = plan.sample(COUNTRIES, 2)
        created = START + timedelta(seconds=plan.randrange(int((END - START).total_seconds())))
        created = created.replace(microsecond=0)
        area = plan.choice(list(CrimeArea))
        urgency = plan.choice(list(Urgency))
        [enquiry] = c.enquiry(sender, recipient, created, area=area, urgency=urgency)
        await c.deliver(enquiry)
        pairs[(sender, recipient)] += 1
        areas[area.value] += 1
        urgencies[urgency.value] += 1
        days[format_time(created)[:10]] += 1
        if plan.random() < 0.6:
            seconds = plan.randrange(60, 10 * 86400)
            answered = created + timedelta(seconds=seconds)
            await c.answer(enquiry, answered)  # received one second after its creation, like the enquiry
            if answered < END:  # answered after the period: the answer counts, the reply message does not
                replies[recipient] += 1
            answer_times.setdefault(recipient, []).append(float(seconds))
        else:
            outstanding += 1
            overdue += enquiry.header.due_at is not None and enquiry.header.due_at < c.now[0]
    tallies = await c.tallies()
    assert {(p.sender, p.recipient): p.count for p in tallies.pairs} == dict(pairs)
    assert {a.key: a.count for a in tallies.areas} == dict(areas)
    assert {u.key: u.count for u in tallies.urgencies} == dict(urgencies)
    assert {d.key: d.count for d in tallies.days} == dict(days)
    for flow in tallies.countries:
        assert flow.sent == flow.threads_sent == sum(n for (s, _), n in pairs.items() if s == flow.country)
        assert flow.received == sum(n for (_, r), n in pairs.items() if r == flow.country)
        assert flow.replies_sent == replies[flow.country]
        assert flow.answered == len(answer_times.get(flow.country, []))
    assert tallies.totals.enquiries == tallies.totals.enquiry_threads == 120
    assert tallies.totals.outstanding == outstanding
    assert tallies.totals.overdue == overdue
    assert tallies.totals.unconfirmed == tallies.totals.disputed == tallies.totals.unproven == 0
    for response in tallies.response_by_country:
        times = answer_times[response.key]
        assert response.answered == len(times)
        assert response.median_s == pytest.approx(nearest_rank(times, 0.5), abs=0.01)
        assert response.p90_s == pytest.approx(nearest_rank(times, 0.9), abs=0.01)


@pytest.mark.parametrize("offset_hours", [0.0, 7.0, 5.5, -9.75])
async def test_whole_day_cells_and_edge_rows_add_up_for_any_time_zone(
    coordinator: Coordinator, offset_hours: float
) -> None:
    """A period from local midnight to local midnight: cells for whole UTC days, rows for the two partial ones."""
    c = coordinator
    plan = random.Random(int(offset_hours * 100))
    made: list[tuple[Envelope, float | None]] = []
    unproven: list[Envelope] = []
    span = int((END - START).total_seconds()) + 4 * 86400
    for _ in range(150):
        sender, *recipients = plan.sample(COUNTRIES, plan.choice([2, 2, 3]))
        created = (START - timedelta(days=2) + timedelta(seconds=plan.randrange(span))).replace(microsecond=0)
        for enquiry in c.enquiry(sender, recipients, created, area=plan.choice(list(CrimeArea))):
            if plan.random() < 0.1:  # only the recipient reports it: in no figure but its own column
                receipt = c.receipt(enquiry, created)
                assert await c.send(
                    enquiry.header.recipient, c.record(enquiry, "received", created, receipt)
                ) == [None]
                unproven.append(enquiry)
                continue
            await c.deliver(enquiry)
            answer = None
            if plan.random() < 0.5:
                answer = float(plan.randrange(60, 86400 * 3))
                await c.answer(enquiry, created + timedelta(seconds=answer))
            made.append((enquiry, answer))
    shift = timedelta(hours=offset_hours)
    period = Period(
        name="tz", start=START - shift, end=END - shift, participants=COUNTRIES, coordinator="XI-COORD"
    )
    inside = [(e.header, a) for e, a in made if period.start <= e.header.created_at < period.end]
    tallies = await compute(c.store, period, c.now[0], c.service.grace_s)
    assert tallies.totals.enquiries == len(inside)
    assert tallies.totals.unproven == sum(
        1 for e in unproven if period.start <= e.header.created_at < period.end
    )
    assert tallies.totals.enquiry_threads == len({h.thread for h, _ in inside})
    assert tallies.totals.answered == sum(1 for _, a in inside if a is not None)
    assert {d.key: d.count for d in tallies.days} == dict(
        Counter(format_time(h.created_at)[:10] for h, _ in inside)
    )
    assert {(p.sender, p.recipient): p.count for p in tallies.pairs} == dict(
        Counter((h.sender, h.recipient) for h, _ in inside)
    )
    for flow in tallies.countries:
        assert flow.threads_sent == len({h.thread for h, _ in inside if h.sender == flow.country})
    for response in tallies.response_by_country:
        times = [a for h, a in inside if a is not None and h.recipient == response.key]
        assert response.median_s == pytest.approx(nearest_rank(times, 0.5), abs=0.01)
        assert response.p90_s == pytest.approx(nearest_rank(times, 0.9), abs=0.01)
