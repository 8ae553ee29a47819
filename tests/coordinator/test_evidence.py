"""Evidence at the coordinator: a figure moves only on the receiver's signature, and forgeries move none.

Each refusal is checked by its error code; every forgery the coordinator accepts (an ``answered`` record naming
a reply that does not prove the answer) is checked to leave the whole report, in every format, unchanged.
"""

from __future__ import annotations

import random
from datetime import timedelta

from node.coordinator.service import MAX_BACKLOG
from node.coordinator.tallies import open_enquiries
from protocol.codes import Urgency, due_at
from protocol.compose import compose_reply
from protocol.encoding import format_time
from protocol.envelope import Envelope
from protocol.models import MetadataRecord, ReplyBody
from protocol.records import make_record
from tests.coordinator.support import MAX_AGE, SKEW, START, Coordinator

DAY = timedelta(days=1)


def misdirected_reply(c: Coordinator, request: Envelope, sender: str, recipient: str) -> Envelope:
    """A message that cites ``request`` as the one it answers, but between other parties than its two."""
    me = c.ids[sender]
    cited = request.header.model_copy(update={"sender": recipient, "recipient": sender})
    own = me.encryption_keys[-1].public_key()
    created = request.header.created_at + DAY
    return compose_reply(ReplyBody(text="r"), cited, me, c.roster, own, created, c.rng.randbytes).envelope


async def test_forged_evidence_is_refused_by_name_and_changes_no_figure(coordinator: Coordinator) -> None:
    c = coordinator
    t = START + timedelta(days=2)
    # The honest period: delivered enquiries, answered or not, a reply still under way, an unproven one.
    answered, *still_open = (c.enquiry("TH", "MY", t + i * DAY)[0] for i in range(7))
    open_1, open_2, open_3, open_4, open_5, open_6 = still_open
    for enquiry in (answered, *still_open):
        await c.deliver(enquiry)
    await c.answer(answered, answered.header.created_at + timedelta(hours=5))
    unnamed = c.reply(open_1, open_1.header.created_at + timedelta(hours=1))  # delivered, not named yet
    await c.deliver(unnamed)
    under_way = c.reply(open_2, open_2.header.created_at + timedelta(hours=1))  # only TH has said it arrived
    arrived = c.receipt(under_way, under_way.header.created_at + timedelta(seconds=1))
    assert await c.send("TH", c.record(under_way, "received", arrived.received_at, arrived)) == [None]
    to_third = misdirected_reply(c, open_3, "MY", "ID")  # MY → ID, citing TH's enquiry
    await c.deliver(to_third)
    from_third = misdirected_reply(c, open_4, "ID", "TH")  # ID → TH, citing the enquiry TH sent MY
    await c.deliver(from_third)
    [unproven] = c.enquiry("AU", "MY", t)
    assert await c.send("MY", c.record(unproven, "received", t, c.receipt(unproven, t))) == [None]
    before = await c.report()
    assert (await c.tallies()).totals.unproven == 1

    [forged] = c.enquiry("TH", "MY", t + timedelta(hours=3))
    created = forged.header.created_at
    genuine = c.receipt(forged, created + timedelta(seconds=1))
    [backdated] = c.enquiry("TH", "MY", t - timedelta(days=29))
    backdated_receipt = c.receipt(backdated, t)
    [outside] = c.enquiry("TH", "NZ", t)
    outside_receipt = c.receipt(outside, t + timedelta(seconds=1))
    later = created + timedelta(hours=1)
    refused: list[tuple[str, MetadataRecord, str]] = [
        # a sent record without a receipt, with another message's receipt, with a receipt altered after signing
        ("TH", c.record(forged, "sent", later), "unproven"),
        ("TH", c.record(forged, "sent", later, c.receipt(open_1, later)), "unproven"),
        (
            "TH",
            c.record(forged, "sent", later, genuine.model_copy(update={"received_at": later})),
            "unproven",
        ),
        # times out of bounds: before creation, in the future, a receipt before creation or after the record
        ("MY", c.record(answered, "read", answered.header.created_at - 20 * DAY), "implausible_time"),
        (
            "MY",
            c.record(open_1, "answered", open_1.header.created_at - 20 * DAY, reply=unnamed),
            "implausible_time",
        ),
        ("MY", c.record(forged, "received", c.now[0] + SKEW + DAY, genuine), "stale_timestamp"),
        ("TH", c.record(forged, "sent", later, c.receipt(forged, created - SKEW - DAY)), "implausible_time"),
        ("TH", c.record(forged, "sent", later, c.receipt(forged, later + SKEW * 2)), "implausible_time"),
        # a creation backdated beyond the envelope age any node accepts, reported by either side
        ("TH", c.record(backdated, "sent", t, backdated_receipt), "implausible_time"),
        ("MY", c.record(backdated, "received", t, backdated_receipt), "implausible_time"),
        # a received record that names no receipt, an answer to something other than an enquiry
        ("MY", c.record(forged, "received", later), "malformed"),
        ("TH", c.record(unnamed, "answered", later, reply=c.reply(answered, later)), "malformed"),
        # an exchange with a roster member that takes part in no period this coordinator serves
        ("TH", c.record(outside, "sent", outside_receipt.received_at, outside_receipt), "outside_periods"),
        (
            "NZ",
            c.record(outside, "received", outside_receipt.received_at, outside_receipt),
            "outside_periods",
        ),
    ]
    for reporter, record, code in refused:
        assert await c.send(reporter, record) == [code], code
    assert await c.report() == before

    # answered records the coordinator keeps, since a reply may yet arrive, but which prove no answer
    nowhere = c.reply(open_6, open_6.header.created_at + timedelta(hours=2))  # never delivered
    named = (unnamed.header.id, nowhere.digest())  # the delivered reply's id, another envelope's digest
    at = unnamed.header.created_at
    wrong_digest = make_record(
        open_1.header, "answered", c.ids["MY"], at, open_1.digest(), bytes(10), None, named
    )
    forged_answers = [
        wrong_digest,
        c.record(open_6, "answered", nowhere.header.created_at, reply=nowhere),  # no such reply
        c.record(open_5, "answered", open_5.header.created_at, reply=unnamed),  # answers open_1
        c.record(open_2, "answered", under_way.header.created_at, reply=under_way),  # no receipt from TH yet
        c.record(open_3, "answered", to_third.header.created_at, reply=to_third),  # went to ID, not TH
        c.record(open_4, "answered", from_third.header.created_at, reply=from_third),  # sent by ID, not MY
    ]
    for record in forged_answers:
        assert await c.send("MY", record) == [None]
    assert await c.report() == before


async def test_an_answer_counts_once_its_reply_is_proven_in_whatever_order_records_arrive(
    coordinator: Coordinator,
) -> None:
    """The same records in every order give the same figures, answer times included."""
    c = coordinator
    t = START + timedelta(days=3)
    records: list[tuple[str, MetadataRecord]] = []
    for i in range(6):
        [enquiry] = c.enquiry("ID", "TH", t + i * timedelta(hours=7))
        received = c.receipt(enquiry, enquiry.header.created_at + timedelta(minutes=i + 1))
        records.append(("ID", c.record(enquiry, "sent", received.received_at, received)))
        records.append(("TH", c.record(enquiry, "received", received.received_at, received)))
        reply = c.reply(enquiry, enquiry.header.created_at + timedelta(hours=i + 1))
        records.append(("TH", c.record(enquiry, "answered", reply.header.created_at, reply=reply)))
        back = c.receipt(reply, reply.header.created_at + timedelta(minutes=30))
        records.append(("TH", c.record(reply, "sent", back.received_at, back)))
        records.append(("ID", c.record(reply, "received", back.received_at, back)))
    expected = sorted(3600.0 * (i + 1) + 1800 - 60 * (i + 1) for i in range(6))
    random.Random(5).shuffle(records)
    for reporter, record in records:
        assert await c.send(reporter, record) == [None]
    tallies = await c.tallies()
    assert tallies.totals.answered == 6
    [response] = tallies.response_by_country
    assert response.median_s == expected[2]
    assert response.p90_s == expected[5]


async def test_deadlines_and_response_times_run_from_the_receivers_receipt(coordinator: Coordinator) -> None:
    """A sender that backdates its enquiry (within the accepted age) makes the receiver neither late nor slow."""
    c = coordinator
    t = START + timedelta(days=5)
    [honest] = c.enquiry("TH", "MY", t, urgency=Urgency.URGENT_DIRECT)  # 8 hours to answer
    [backdated] = c.enquiry("TH", "ID", t - MAX_AGE + timedelta(hours=1), urgency=Urgency.URGENT_DIRECT)
    for enquiry in (honest, backdated):
        receipt = c.receipt(enquiry, t + timedelta(seconds=1))
        at = receipt.received_at
        assert await c.send("TH", c.record(enquiry, "sent", at, receipt)) == [None]
        assert await c.send(enquiry.header.recipient, c.record(enquiry, "received", at, receipt)) == [None]
    c.now[0] = t + timedelta(hours=7)
    assert (await c.tallies()).totals.overdue == 0  # the backdated one's claimed deadline passed 16 hours ago
    c.now[0] = t + timedelta(hours=9)
    assert (await c.tallies()).totals.overdue == 2
    for enquiry in (honest, backdated):
        await c.answer(enquiry, t + timedelta(hours=3), delay=timedelta(seconds=1))
    tallies = await c.tallies()
    assert {r.key: r.median_s for r in tallies.response_by_country} == {"MY": 3 * 3600.0, "ID": 3 * 3600.0}
    assert tallies.totals.overdue == 0


async def test_unproven_exchanges_have_a_column_of_their_own(coordinator: Coordinator) -> None:
    """The receiver's word alone counts as unproven until the sender's record brings the receipt."""
    c = coordinator
    t = START + timedelta(days=4)
    [enquiry] = c.enquiry("AU", "MY", t)
    receipt = c.receipt(enquiry, t + timedelta(seconds=1))
    assert await c.send("MY", c.record(enquiry, "received", receipt.received_at, receipt)) == [None]
    tallies = await c.tallies()
    flows = {f.country: f for f in tallies.countries}
    assert (tallies.totals.unproven, flows["MY"].unproven, flows["MY"].received) == (1, 1, 0)
    assert (tallies.totals.enquiries, tallies.totals.enquiry_threads, tallies.totals.outstanding) == (0, 0, 0)
    assert await open_enquiries(c.store, c.period, c.now[0], overdue_only=False) == []
    assert await c.send("AU", c.record(enquiry, "sent", receipt.received_at, receipt)) == [None]
    tallies = await c.tallies()
    flows = {f.country: f for f in tallies.countries}
    assert (tallies.totals.unproven, flows["MY"].received, tallies.totals.enquiries) == (0, 1, 1)
    [listed] = await open_enquiries(c.store, c.period, c.now[0], overdue_only=False)
    assert listed.message_id == enquiry.header.id
    assert listed.due_at == format_time(due_at(Urgency.NORMAL, receipt.received_at))


async def test_threads_and_messages_are_counted_apart(coordinator: Coordinator) -> None:
    c = coordinator
    t = START + timedelta(days=6)
    for enquiry in c.enquiry("TH", ["MY", "ID", "AU"], t):
        await c.deliver(enquiry)
    for enquiry in c.enquiry("TH", ["MY"], t + DAY):
        await c.deliver(enquiry)
    tallies = await c.tallies()
    th = next(f for f in tallies.countries if f.country == "TH")
    assert (th.threads_sent, th.sent) == (2, 4)
    assert (tallies.totals.enquiry_threads, tallies.totals.enquiries) == (2, 4)


async def test_a_nodes_self_reported_backlog_is_bounded_and_flagged(coordinator: Coordinator) -> None:
    c = coordinator
    [enquiry] = c.enquiry("TH", "MY", START + DAY)
    receipt = c.receipt(enquiry, START + DAY)
    record = c.record(enquiry, "sent", receipt.received_at, receipt).wire()
    far = c.now[0] + SKEW + DAY
    cases = [
        ({"backlog": 12}, (12, None, False)),
        ({"backlog": 9_999_999}, (MAX_BACKLOG, None, True)),
        ({"backlog": 3, "oldest_queued_at": format_time(far)}, (3, None, True)),
        ({"backlog": -5}, (0, None, False)),
    ]
    for extra, (backlog, oldest, implausible) in cases:
        await c.service.receive_records("TH", {"records": [record], **extra})
        _, _, stored, stored_oldest, flagged = (await c.store.node_reports())["TH"]
        assert (stored, stored_oldest, flagged) == (backlog, oldest, implausible), extra
