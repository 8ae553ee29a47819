"""A coordinator service on a real SQLite file with real keys, and the countries that report to it.

Envelopes, receipts and records are made with the functions the nodes use (``compose_enquiry``, ``make_receipt``,
``make_record``), so every record the tests submit is one a node could send.
"""

from __future__ import annotations

import contextlib
import random
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from keys import Identity, Roster, add_participant, new_roster, sign_roster
from keys.roster import Role, add_period
from node.config import Limits
from node.coordinator.report import build, render
from node.coordinator.service import CoordinatorService
from node.coordinator.store import PostgresStore, SqliteStore, SqlStore
from node.coordinator.tallies import Tallies, compute
from node.storage.database import Database
from node.storage.postgres import PostgresDatabase
from node.trust import Trust
from protocol.codes import CrimeArea, Urgency
from protocol.compose import compose_enquiry, compose_reply
from protocol.envelope import Envelope
from protocol.models import EnquiryBody, MetadataRecord, Receipt, ReplyBody
from protocol.period import Period
from protocol.receipts import make_receipt
from protocol.records import Event, make_record

START = datetime(2015, 9, 28, tzinfo=UTC)
END = datetime(2015, 10, 28, tzinfo=UTC)
COUNTRIES = ["AU", "ID", "MY", "TH"]
SKEW = timedelta(seconds=300)
MAX_AGE = timedelta(days=1)


@dataclass
class Coordinator:
    """A coordinator service on a real database, with the identities of the countries.

    Envelopes, receipts and records are made with the functions the nodes use, with real keys.
    """

    service: CoordinatorService
    store: SqlStore
    period: Period
    ids: dict[str, Identity]
    roster: Roster
    now: list[datetime]
    rng: random.Random

    async def tallies(self) -> Tallies:
        return await compute(self.store, self.period, self.now[0], self.service.grace_s)

    async def report(self) -> list[str]:
        """The period report in every format."""
        report = build(self.period, await self.tallies(), [])
        return [render(report, fmt) for fmt in ("md", "html", "csv", "json")]

    def enquiry(
        self,
        sender: str,
        recipients: str | list[str],
        created: datetime,
        area: CrimeArea = CrimeArea.PEOPLE_SMUGGLING,
        urgency: Urgency = Urgency.NORMAL,
    ) -> list[Envelope]:
        """Sealed enquiries from ``sender``, one per recipient, as its node composes them."""
        me = self.ids[sender]
        items = compose_enquiry(
            EnquiryBody(subject="s", text="t"),
            [recipients] if isinstance(recipients, str) else recipients,
            area,
            urgency,
            me,
            self.roster,
            me.encryption_keys[-1].public_key(),
            created,
            self.rng.randbytes,
        )
        return [i.envelope for i in items]

    def reply(self, request: Envelope, created: datetime) -> Envelope:
        """The recipient's sealed answer to ``request``."""
        me = self.ids[request.header.recipient]
        own = me.encryption_keys[-1].public_key()
        body = ReplyBody(text="r")
        return compose_reply(body, request.header, me, self.roster, own, created, self.rng.randbytes).envelope

    def receipt(self, envelope: Envelope, at: datetime) -> Receipt:
        """The recipient's signed receipt for ``envelope``."""
        return make_receipt(envelope, self.ids[envelope.header.recipient], at)

    def record(
        self,
        envelope: Envelope,
        event: Event,
        at: datetime,
        receipt: Receipt | None = None,
        reply: Envelope | None = None,
        reporter: str | None = None,
    ) -> MetadataRecord:
        """A record as the party to ``event`` makes it (the sender for ``sent``, else the recipient)."""
        header = envelope.header
        who = reporter or (header.sender if event == "sent" else header.recipient)
        named = (reply.header.id, reply.digest()) if reply is not None else None
        random_bytes = self.rng.randbytes(10)
        return make_record(header, event, self.ids[who], at, envelope.digest(), random_bytes, receipt, named)

    async def send(self, reporter: str, *records: MetadataRecord | dict[str, Any]) -> list[str | None]:
        """Submit records as ``reporter`` would; the error code of each (None when accepted)."""
        payload = {"records": [r.wire() if isinstance(r, MetadataRecord) else r for r in records]}
        results = await self.service.receive_records(reporter, payload)
        return [r.error.code if r.error else None for r in results]

    async def deliver(self, envelope: Envelope, delay: timedelta = timedelta(seconds=1)) -> Receipt:
        """Both sides report a delivered message; the receipt is signed ``delay`` after its creation."""
        header = envelope.header
        receipt = self.receipt(envelope, header.created_at + delay)
        at = receipt.received_at
        assert await self.send(header.sender, self.record(envelope, "sent", at, receipt)) == [None]
        assert await self.send(header.recipient, self.record(envelope, "received", at, receipt)) == [None]
        return receipt

    async def answer(
        self, enquiry: Envelope, created: datetime, delay: timedelta = timedelta(seconds=1)
    ) -> Envelope:
        """The recipient replies at ``created``: its answered record, and the reply delivered ``delay`` later."""
        reply = self.reply(enquiry, created)
        answered = self.record(enquiry, "answered", created, reply=reply)
        assert await self.send(enquiry.header.recipient, answered) == [None]
        await self.deliver(reply, delay)
        return reply

    async def count(self, table: str) -> int:
        rows = await self.store.db.fetchall(f"SELECT count(*) FROM {table}")  # noqa: S608 - test table names
        return int(rows[0][0])


@contextlib.asynccontextmanager
async def coordinator_store(db: Database, database_url: str | None) -> AsyncIterator[SqlStore]:
    """The coordinator's store: in PostgreSQL at ``database_url`` when given, else beside ``db``'s tables."""
    if database_url is None:
        yield SqliteStore(db)
        return
    postgres = await PostgresDatabase.open(database_url)
    try:
        yield PostgresStore(postgres)
    finally:
        await postgres.close()


@contextlib.asynccontextmanager
async def open_coordinator(tmp_path: Path, database_url: str | None = None) -> AsyncIterator[Coordinator]:
    """A coordinator for the period ``jpa-2015`` of :data:`COUNTRIES`; NZ is in the roster but not the period.

    Its store is in ``database_url`` (PostgreSQL) when given, else in the node's SQLite file."""
    authority = Ed25519PrivateKey.generate()
    ids = {c: Identity.generate(c) for c in [*COUNTRIES, "NZ", "XI-COORD"]}
    epoch = START - timedelta(days=60)
    body = new_roster(authority.public_key(), epoch)
    for pid, identity in ids.items():
        role = Role.COORDINATOR if pid == "XI-COORD" else Role.NODE
        body = add_participant(body, identity.card(), f"http://127.0.0.1/{pid}", role, pid, epoch)
    period = Period(name="jpa-2015", start=START, end=END, participants=COUNTRIES, coordinator="XI-COORD")
    body = add_period(body, period, epoch)
    db = await Database.open(tmp_path / "coordinator.db")
    roster = Roster(sign_roster(body, authority), authority.public_key())
    trust = Trust(ids["XI-COORD"], roster, db)
    now = [END + timedelta(days=15)]
    limits = Limits(clock_skew_s=int(SKEW.total_seconds()), max_message_age_s=int(MAX_AGE.total_seconds()))
    async with coordinator_store(db, database_url) as store:
        service = CoordinatorService(trust, store, lambda: now[0], grace_s=3600, limits=limits)
        yield Coordinator(service, store, period, ids, roster, now, random.Random(977))
    await db.close()
