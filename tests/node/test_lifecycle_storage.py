"""The lifecycle as stored: states written only through the table, ids unique per sender, CHECKs from the enums.

Real nodes on loopback; crafted envelopes are sealed and signed with the real keys of the member playing them.
"""

from __future__ import annotations

import os
import sqlite3
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from importlib import resources
from pathlib import Path

import aiohttp
import pytest

from node.storage.database import ENUMS, Database
from protocol.codes import Urgency
from protocol.encoding import parse_time
from protocol.envelope import seal
from protocol.lifecycle import Folder, State
from protocol.models import EnquiryBody, Receipt
from tests.node.support import ENVELOPES, Federation, batch, post_signed, wait_for


async def test_a_read_notice_after_the_reply_leaves_the_enquiry_answered(
    federation: Callable[..., Federation],
) -> None:
    """TH's officer answers first and opens the enquiry afterwards: MY must not move back from answered."""
    fed = federation(["MY", "TH"])
    my, th = await fed.start("MY"), await fed.start("TH")
    created = await my.call(
        "POST", "/v1/enquiries", body={"recipients": ["TH"], "area": "other", "subject": "s", "text": "t"}
    )
    enquiry = created["messages"][0]["id"]
    await wait_for(lambda: th.state_is(enquiry, "inbox", "received"), what="the enquiry at TH")
    reply = await th.call("POST", f"/v1/messages/{enquiry}/replies", body={"text": "answer"})
    await wait_for(lambda: my.state_is(enquiry, "sent", "answered"), what="the reply at MY")
    await wait_for(lambda: th.state_is(reply["messages"][0]["id"], "sent", "delivered"), what="its receipt")
    read = await th.call("POST", f"/v1/messages/{enquiry}/read")
    assert read["state"] == "answered"  # reading after answering changes TH's state neither
    await wait_for(lambda: th.count("outbox") == 0, what="the read notice to leave TH")
    summary = await my.summary(enquiry, "sent")
    assert summary is not None
    assert summary["state"] == "answered"
    assert summary["read_at"] is not None  # the fact is kept, the state does not move back


async def test_an_id_squatted_by_another_member_neither_blocks_nor_replaces_the_genuine_message(
    federation: Callable[..., Federation], session: aiohttp.ClientSession
) -> None:
    fed = federation(["MY", "TH", "ID"])
    my = await fed.start("MY")
    genuine = fed.envelope("TH", "MY")
    # ID learnt the id (on the path, say) and sends MY a message of its own under it first.
    squat_header = fed.envelope("ID", "MY").header.model_copy(update={"id": genuine.header.id})
    target = fed.roster().encryption_key("MY", datetime.now(UTC))[1]
    squat = seal(
        squat_header, EnquiryBody(subject="squat", text="squat"), fed.identities["ID"], target, os.urandom(32)
    )
    first = await post_signed(session, my, ENVELOPES, batch(squat), fed.identities["ID"])
    assert first.status == 200
    second = await post_signed(session, my, ENVELOPES, batch(genuine), fed.identities["TH"])
    assert second.status == 200
    assert "receipt" in second.json()["results"][0]
    # The same sender reusing its id with other bytes is still a replay.
    again = fed.envelope("ID", "MY").header.model_copy(update={"id": genuine.header.id})
    other = seal(again, EnquiryBody(subject="other", text="x"), fed.identities["ID"], target, os.urandom(32))
    replay = await post_signed(session, my, ENVELOPES, batch(other), fed.identities["ID"])
    replay.problem("replayed", 409)

    ambiguous = await my.request("GET", f"/v1/messages/{genuine.header.id}")
    ambiguous.problem("conflict", 409)
    assert "from=" in ambiguous.json()["detail"]
    shown = await my.call("GET", f"/v1/messages/{genuine.header.id}", params={"from": "TH"})
    assert shown["message"]["sender"] == "TH"
    assert shown["message"]["subject"] == "crafted enquiry"
    read = await my.call("POST", f"/v1/messages/{genuine.header.id}/read", params={"from": "th"})
    assert read["state"] == "read"
    rows = my.rows("SELECT sender, state FROM messages WHERE id = ? ORDER BY sender", (genuine.header.id,))
    assert [(r["sender"], r["state"]) for r in rows] == [("ID", "received"), ("TH", "read")]


async def test_the_schema_checks_states_and_folders_from_the_lifecycle_enums(
    federation: Callable[..., Federation],
) -> None:
    fed = federation(["MY", "TH"])
    my = await fed.start("MY")
    [schema] = my.rows("SELECT sql FROM sqlite_master WHERE name = 'messages'")
    for value in [*State, *Folder]:
        assert f"'{value}'" in schema["sql"]
    await my.call(
        "POST", "/v1/enquiries", body={"recipients": ["TH"], "area": "other", "subject": "s", "text": "t"}
    )
    await my.stop()
    conn = sqlite3.connect(my.db_path)
    try:
        with pytest.raises(sqlite3.IntegrityError):
            conn.execute("UPDATE messages SET state = 'lost'")
        with pytest.raises(sqlite3.IntegrityError):
            conn.execute("UPDATE messages SET folder = 'drafts'")
    finally:
        conn.close()


async def test_deadlines_run_from_the_receipt_not_from_a_backdated_creation(
    federation: Callable[..., Federation], session: aiohttp.ClientSession
) -> None:
    """An urgent enquiry claiming to be 20 hours old is due 8 hours after it arrived, not 12 hours ago."""
    fed = federation(["MY", "TH"])
    my = await fed.start("MY")
    backdated = fed.envelope(
        "TH", "MY", now=datetime.now(UTC) - timedelta(hours=20), urgency=Urgency.URGENT_DIRECT
    )
    answer = await post_signed(session, my, ENVELOPES, batch(backdated), fed.identities["TH"])
    receipt = Receipt.model_validate(answer.json()["results"][0]["receipt"])
    summary = await my.summary(backdated.header.id, "inbox")
    assert summary is not None
    assert summary["overdue"] is False
    assert parse_time(summary["due_at"]) == receipt.received_at + timedelta(hours=8)
    overdue = await my.listing(folder="inbox", overdue="1")
    assert overdue == []


async def test_an_envelope_older_than_a_day_is_refused_as_stale(
    federation: Callable[..., Federation], session: aiohttp.ClientSession
) -> None:
    fed = federation(["MY", "TH"])
    my = await fed.start("MY")
    old = fed.envelope("TH", "MY", now=datetime.now(UTC) - timedelta(hours=25))
    refused = await post_signed(session, my, ENVELOPES, batch(old), fed.identities["TH"])
    refused.problem("stale_timestamp", 400)
    assert my.count() == 0


async def test_the_sender_counts_the_deadline_from_the_receivers_receipt(
    federation: Callable[..., Federation],
) -> None:
    fed = federation(["MY", "TH"])
    my, th = await fed.start("MY"), await fed.start("TH")
    th.clock.offset = timedelta(minutes=3)  # TH's clock runs ahead, within the accepted skew
    created = await my.call(
        "POST",
        "/v1/enquiries",
        body={"recipients": ["TH"], "area": "other", "urgency": "urgent_direct", "subject": "s", "text": "t"},
    )
    enquiry = created["messages"][0]["id"]
    delivered = await wait_for(lambda: my.state_is(enquiry, "sent", "delivered"), what="the receipt")
    shown = await my.call("GET", f"/v1/messages/{enquiry}")
    receipt = Receipt.model_validate(shown["message"]["receipt"])
    assert parse_time(delivered["due_at"]) == receipt.received_at + timedelta(hours=8)
    assert parse_time(delivered["due_at"]) != parse_time(created["messages"][0]["due_at"])


async def test_migration_0011_lets_a_database_made_before_notices_store_acknowledged(tmp_path: Path) -> None:
    """A node upgraded from before notices had `acknowledged` outside its CHECK: 0011 rebuilds the table."""
    path = tmp_path / "before-notices.db"
    old_states = ", ".join(f"'{s}'" for s in sorted(State) if s is not State.ACKNOWLEDGED)
    conn = sqlite3.connect(path)
    conn.execute("CREATE TABLE schema_version (version INTEGER NOT NULL)")
    for entry in sorted((resources.files("node.storage") / "migrations").iterdir(), key=lambda e: e.name):
        number = int(entry.name.split("_", 1)[0])
        if number >= 11:
            continue
        script = entry.read_text(encoding="utf-8").replace("{folders}", ENUMS["folders"])
        conn.executescript(script.replace("{states}", old_states))
        conn.execute("INSERT INTO schema_version VALUES (?)", (number,))
    conn.execute(
        "INSERT INTO messages (id, thread, folder, kind, sender, recipient, peer, area, urgency, created_at, "
        "envelope, envelope_digest, signer_key, state, queued_at) VALUES ('m1', 't1', 'inbox', 'notice', 'TH', "
        "'MY', 'TH', 'other', 'normal', '2015-10-01T00:00:00.000Z', x'00', 'd', x'00', 'read', "
        "'2015-10-01T00:00:00.000Z')"
    )
    with pytest.raises(sqlite3.IntegrityError):
        conn.execute("UPDATE messages SET state = 'acknowledged'")
    conn.commit()
    conn.close()

    db = await Database.open(path)
    await db.close()
    conn = sqlite3.connect(path)
    try:
        conn.execute(
            "UPDATE messages SET state = 'acknowledged', acknowledged_at = '2015-10-02T00:00:00.000Z'"
        )
        assert conn.execute("SELECT id, kind, state FROM messages").fetchall() == [
            ("m1", "notice", "acknowledged")
        ]
        with pytest.raises(sqlite3.IntegrityError):
            conn.execute("UPDATE messages SET state = 'lost'")
        assert conn.execute("SELECT max(version) FROM schema_version").fetchone()[0] >= 11
    finally:
        conn.close()
