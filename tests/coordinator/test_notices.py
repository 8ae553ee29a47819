"""Deconfliction notices at the coordinator: counted per pair and day from metadata records, acknowledged on the
recipient's own signed word, counted once proven by the receipt, never taken from anyone else."""

from __future__ import annotations

from datetime import datetime, timedelta

from node.coordinator.tallies import Window, flags
from protocol.codes import CrimeArea, Urgency
from protocol.compose import compose_notice
from protocol.envelope import Envelope
from protocol.models import NoticeBody, Phone, Subjects
from tests.coordinator.support import START, Coordinator


def notice(c: Coordinator, sender: str, recipients: list[str], created: datetime) -> list[Envelope]:
    """Sealed notices from ``sender``, one per recipient, as its node composes them."""
    me = c.ids[sender]
    body = NoticeBody(
        subject="s",
        case_reference="case",
        contact="desk",
        text="t",
        subjects=Subjects(phones=[Phone(number="+60123456789")]),
    )
    own = me.encryption_keys[-1].public_key()
    items = compose_notice(
        body, recipients, CrimeArea.OTHER, Urgency.NORMAL, me, c.roster, own, created, c.rng.randbytes
    )
    return [i.envelope for i in items]


async def test_notices_are_counted_per_pair_and_day_apart_from_enquiries(coordinator: Coordinator) -> None:
    c = coordinator
    first_day, second_day = START + timedelta(days=2, hours=3), START + timedelta(days=5, hours=3)
    to_my, to_id = notice(c, "TH", ["MY", "ID"], first_day)
    [later] = notice(c, "TH", ["MY"], second_day)
    for envelope in (to_my, to_id, later):
        await c.deliver(envelope)
    acknowledged_at = first_day + timedelta(hours=1)
    assert await c.send("MY", c.record(to_my, "acknowledged", acknowledged_at)) == [None]
    assert await c.send("ID", c.record(to_id, "acknowledged", acknowledged_at)) == [None]
    [enquiry] = c.enquiry("TH", "MY", first_day)
    await c.deliver(enquiry)

    tallies = await c.tallies()
    counted = [(n.sender, n.recipient, n.day, n.sent, n.acknowledged) for n in tallies.notices]
    assert counted == [
        ("TH", "ID", first_day.date().isoformat(), 1, 1),
        ("TH", "MY", first_day.date().isoformat(), 1, 1),
        ("TH", "MY", second_day.date().isoformat(), 1, 0),
    ]
    assert (tallies.totals.notices, tallies.totals.notices_acknowledged) == (3, 2)
    assert tallies.totals.enquiries == 1  # a notice is no enquiry
    flagged = await flags(c.store, Window(c.period, c.now[0]), c.now[0], c.service.grace_s)
    assert flagged == []  # both sides of every notice reported and agree
    report = (await c.report())[0]
    assert "3 deconfliction notices (one per recipient), 2 acknowledged" in report


async def test_an_acknowledgement_counts_once_the_notice_is_proven(coordinator: Coordinator) -> None:
    c = coordinator
    created = START + timedelta(days=1)
    [envelope] = notice(c, "AU", ["TH"], created)
    assert await c.send("TH", c.record(envelope, "acknowledged", created + timedelta(minutes=5))) == [None]
    early = await c.tallies()
    assert (early.totals.notices, early.totals.notices_acknowledged) == (0, 0)  # the recipient's word alone
    await c.deliver(envelope)
    proven = await c.tallies()
    assert (proven.totals.notices, proven.totals.notices_acknowledged) == (1, 1)


async def test_only_the_recipient_acknowledges_and_only_a_notice(coordinator: Coordinator) -> None:
    c = coordinator
    created = START + timedelta(days=1)
    [envelope] = notice(c, "AU", ["TH"], created)
    await c.deliver(envelope)
    [enquiry] = c.enquiry("AU", "TH", created)
    await c.deliver(enquiry)
    before = (await c.tallies()).model_dump(exclude={"as_of"})
    records = await c.count("records")
    at = created + timedelta(minutes=5)
    assert await c.send("AU", c.record(envelope, "acknowledged", at, reporter="AU")) == ["not_for_us"]
    assert await c.send("TH", c.record(enquiry, "acknowledged", at)) == ["malformed"]
    assert await c.count("records") == records
    assert (await c.tallies()).model_dump(exclude={"as_of"}) == before
