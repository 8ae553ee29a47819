"""Records at the coordinator: forged ones are refused and change no tally; tallies equal independent counts.

The coordinator service runs on a real SQLite file with real signatures; records are made with the same
function the nodes use (``protocol.records.make_record``).
"""

from __future__ import annotations

import random
from collections import Counter
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from keys import Identity, Roster, add_participant, new_roster, sign_roster
from keys.roster import Role, add_period
from node.coordinator.service import CoordinatorService
from node.coordinator.store import SqliteStore
from node.coordinator.tallies import Tallies, Window, compute, flags
from node.storage.database import Database
from node.trust import Trust
from protocol.codes import CrimeArea, Kind, Urgency, due_at
from protocol.encoding import format_time
from protocol.ids import uuid7
from protocol.models import Header, MetadataRecord
from protocol.period import Period
from protocol.records import Event, make_record

START = datetime(2015, 9, 28, tzinfo=UTC)
END = datetime(2015, 10, 28, tzinfo=UTC)
COUNTRIES = ["AU", "ID", "MY", "TH"]


@dataclass
class Coordinator:
    """A coordinator service on a real database, with the identities of the countries."""

    service: CoordinatorService
    store: SqliteStore
    period: Period
    ids: dict[str, Identity]
    now: list[datetime]
    rng: random.Random

    async def tallies(self) -> Tallies:
        return await compute(self.store, self.period, self.now[0], self.service.grace_s)

    def header(self, sender: str, recipient: str, created: datetime, **extra: Any) -> Header:
        message_id = uuid7(created, self.rng.randbytes(10))
        urgency = extra.pop("urgency", Urgency.NORMAL)
        fields: dict[str, Any] = {
            "id": message_id,
            "kind": Kind.ENQUIRY,
            "thread": message_id,
            "sender": sender,
            "recipient": recipient,
            "created_at": created,
            "area": extra.pop("area", CrimeArea.PEOPLE_SMUGGLING),
            "urgency": urgency,
            "due_at": due_at(urgency, created),
            "sender_key": self.ids[sender].signing_kid,
            "recipient_key": self.ids[recipient].encryption_kid,
        }
        fields.update(extra)
        return Header.model_validate(fields)

    def record(
        self, header: Header, event: Event, reporter: str, at: datetime, digest: str = "d"
    ) -> MetadataRecord:
        receipt = "r" if event in ("sent", "received") else None
        return make_record(header, event, self.ids[reporter], at, digest, self.rng.randbytes(10), receipt)

    async def send(self, reporter: str, *records: MetadataRecord | dict[str, Any]) -> list[str | None]:
        """Submit records as ``reporter`` would; the error code of each (None when accepted)."""
        payload = {"records": [r.wire() if isinstance(r, MetadataRecord) else r for r in records]}
        results = await self.service.receive_records(reporter, payload)
        return [r.error.code if r.error else None for r in results]

    async def exchange(self, header: Header, delay: timedelta = timedelta(seconds=1)) -> None:
        """Both sides report a delivered message."""
        at = header.created_at + delay
        assert await self.send(header.sender, self.record(header, "sent", header.sender, at)) == [None]
        assert await self.send(header.recipient, self.record(header, "received", header.recipient, at)) == [
            None
        ]

    async def count(self, table: str) -> int:
        rows = await self.store.query(f"SELECT count(*) FROM {table}")  # noqa: S608 - test table names
        return int(rows[0][0])


@pytest.fixture
async def coordinator(tmp_path: Path) -> AsyncIterator[Coordinator]:
    authority = Ed25519PrivateKey.generate()
    ids = {c: Identity.generate(c) for c in [*COUNTRIES, "NZ", "XI-COORD"]}
    epoch = START - timedelta(days=30)
    body = new_roster(authority.public_key(), epoch)
    for pid, identity in ids.items():
        role = Role.COORDINATOR if pid == "XI-COORD" else Role.NODE
        body = add_participant(body, identity.card(), f"http://127.0.0.1/{pid}", role, pid, epoch)
    period = Period(name="jpa-2015", start=START, end=END, participants=COUNTRIES, coordinator="XI-COORD")
    body = add_period(body, period, epoch)
    db = await Database.open(tmp_path / "coordinator.db")
    trust = Trust(ids["XI-COORD"], Roster(sign_roster(body, authority), authority.public_key()), db)
    now = [END + timedelta(days=2)]
    store = SqliteStore(db)
    service = CoordinatorService(trust, store, lambda: now[0], grace_s=3600)
    yield Coordinator(service, store, period, ids, now, random.Random(977))
    await db.close()


async def test_forged_and_misattributed_records_are_refused_and_change_nothing(
    coordinator: Coordinator,
) -> None:
    c = coordinator
    header = c.header("TH", "MY", START + timedelta(days=1))
    await c.exchange(header)
    before = (await c.tallies()).model_dump(exclude={"as_of"})
    records_before = await c.count("records")

    other = c.header("TH", "MY", START + timedelta(days=2))
    good = c.record(other, "sent", "TH", START + timedelta(days=2))
    tampered = good.model_copy(update={"area": CrimeArea.MONEY_LAUNDERING}).wire()
    outsider = Identity.generate("VN")
    from_outsider = other.model_copy(update={"sender": "VN", "sender_key": outsider.signing_kid})
    stranger = make_record(from_outsider, "sent", outsider, START, "d", bytes(10), "r")
    third_party = make_record(other, "received", c.ids["ID"], START, "d", bytes(10), "r")
    wrong_side = make_record(other, "sent", c.ids["MY"], START, "d", bytes(10), "r")
    cases = [
        ("TH", tampered, "bad_signature"),
        ("VN", stranger, "unknown_sender"),
        ("ID", third_party, "not_for_us"),  # ID claims to have received a message between TH and MY
        ("MY", good, "not_for_us"),  # MY submits a record TH signed
        ("MY", wrong_side, "not_for_us"),  # the recipient claims the sender's event
        ("TH", {"record_id": "x", "event": "sent"}, "malformed"),
    ]
    for reporter, record, code in cases:
        assert await c.send(reporter, record) == [code]
    assert await c.count("records") == records_before
    assert (await c.tallies()).model_dump(exclude={"as_of"}) == before


async def test_a_repeated_record_is_stored_once(coordinator: Coordinator) -> None:
    c = coordinator
    header = c.header("ID", "AU", START + timedelta(days=3))
    record = c.record(header, "sent", "ID", START + timedelta(days=3))
    assert await c.send("ID", record, record) == [None, None]
    assert await c.send("ID", record) == [None]
    assert await c.count("records") == 1
    assert (await c.tallies()).totals.enquiries == 1


async def test_disputed_and_unconfirmed_exchanges_are_flagged(coordinator: Coordinator) -> None:
    c = coordinator
    c.now[0] = datetime.now(UTC)  # records arrive now: inside the grace time, nothing is unconfirmed yet
    agreed = c.header("TH", "MY", START + timedelta(days=1))
    await c.exchange(agreed)
    disputed = c.header("TH", "ID", START + timedelta(days=1))
    at = disputed.created_at + timedelta(seconds=1)
    await c.send("TH", c.record(disputed, "sent", "TH", at, digest="digest-A"))
    await c.send("ID", c.record(disputed, "received", "ID", at, digest="digest-B"))
    one_sided = c.header("AU", "MY", START + timedelta(days=2))
    await c.send("AU", c.record(one_sided, "sent", "AU", one_sided.created_at))

    window = Window(c.period, c.now[0])
    early = {f.message_id: f.flag for f in await flags(c.store, window, c.now[0], c.service.grace_s)}
    assert early == {disputed.id: "disputed"}
    later = c.now[0] + timedelta(hours=2)
    found = {f.message_id: f.flag for f in await flags(c.store, window, later, c.service.grace_s)}
    assert found == {disputed.id: "disputed", one_sided.id: "unconfirmed"}


async def test_records_outside_the_period_are_kept_but_not_counted(coordinator: Coordinator) -> None:
    c = coordinator
    await c.exchange(c.header("TH", "MY", START - timedelta(days=1)))
    await c.exchange(c.header("TH", "MY", END + timedelta(hours=1)))
    await c.exchange(c.header("TH", "NZ", START + timedelta(days=1)))  # NZ takes no part in this period
    await c.exchange(c.header("TH", "MY", START + timedelta(days=1)))
    assert await c.count("records") == 8
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
        header = c.header(sender, recipient, created, area=area, urgency=urgency)
        await c.exchange(header)
        pairs[(sender, recipient)] += 1
        areas[area.value] += 1
        urgencies[urgency.value] += 1
        days[format_time(created)[:10]] += 1
        if plan.random() < 0.6:
            seconds = plan.randrange(60, 10 * 86400)
            answered = created + timedelta(seconds=seconds)
            reply_id = uuid7(answered, plan.randbytes(10))
            reply = Header.model_validate(
                header.model_dump()
                | {"id": reply_id, "kind": Kind.REPLY, "sender": recipient, "recipient": sender, "created_at": answered,
                   "in_reply_to": header.id, "due_at": None, "sender_key": c.ids[recipient].signing_kid,
                   "recipient_key": c.ids[sender].encryption_kid}
            )  # fmt: skip
            await c.send(recipient, c.record(header, "answered", recipient, answered))
            if answered < END:
                await c.exchange(reply)
                replies[recipient] += 1
            else:  # answered after the period: the answer counts, the reply message does not
                await c.exchange(reply)
            answer_times.setdefault(recipient, []).append(float(seconds))
        else:
            outstanding += 1
            overdue += header.due_at is not None and header.due_at < c.now[0]
    tallies = await c.tallies()
    assert {(p.sender, p.recipient): p.count for p in tallies.pairs} == dict(pairs)
    assert {a.key: a.count for a in tallies.areas} == dict(areas)
    assert {u.key: u.count for u in tallies.urgencies} == dict(urgencies)
    assert {d.key: d.count for d in tallies.days} == dict(days)
    for flow in tallies.countries:
        assert flow.sent == sum(n for (s, _), n in pairs.items() if s == flow.country)
        assert flow.received == sum(n for (_, r), n in pairs.items() if r == flow.country)
        assert flow.replies_sent == replies[flow.country]
        assert flow.answered == len(answer_times.get(flow.country, []))
    assert tallies.totals.enquiries == 120
    assert tallies.totals.outstanding == outstanding
    assert tallies.totals.overdue == overdue
    assert tallies.totals.unconfirmed == tallies.totals.disputed == 0
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
    made: list[tuple[Header, float | None]] = []
    span = int((END - START).total_seconds()) + 4 * 86400
    for _ in range(150):
        sender, recipient = plan.sample(COUNTRIES, 2)
        created = (START - timedelta(days=2) + timedelta(seconds=plan.randrange(span))).replace(microsecond=0)
        header = c.header(sender, recipient, created, area=plan.choice(list(CrimeArea)))
        await c.exchange(header)
        answer = None
        if plan.random() < 0.5:
            answer = float(plan.randrange(60, 86400 * 3))
            await c.send(
                recipient, c.record(header, "answered", recipient, created + timedelta(seconds=answer))
            )
        made.append((header, answer))
    shift = timedelta(hours=offset_hours)
    period = Period(
        name="tz", start=START - shift, end=END - shift, participants=COUNTRIES, coordinator="XI-COORD"
    )
    inside = [(h, a) for h, a in made if period.start <= h.created_at < period.end]
    tallies = await compute(c.store, period, c.now[0], c.service.grace_s)
    assert tallies.totals.enquiries == len(inside)
    assert tallies.totals.answered == sum(1 for _, a in inside if a is not None)
    assert {d.key: d.count for d in tallies.days} == dict(
        Counter(format_time(h.created_at)[:10] for h, _ in inside)
    )
    assert {(p.sender, p.recipient): p.count for p in tallies.pairs} == dict(
        Counter((h.sender, h.recipient) for h, _ in inside)
    )
    for response in tallies.response_by_country:
        times = [a for h, a in inside if a is not None and h.recipient == response.key]
        assert response.median_s == pytest.approx(nearest_rank(times, 0.5), abs=0.01)
        assert response.p90_s == pytest.approx(nearest_rank(times, 0.9), abs=0.01)
