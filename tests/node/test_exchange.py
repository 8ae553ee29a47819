"""Whole exchanges between two and three real nodes on loopback: enquiry, delivery, receipt, read, reply."""

from __future__ import annotations

import base64
import os
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import pytest

from protocol.codes import Kind
from protocol.envelope import Envelope, open_body, open_envelope, seal
from protocol.errors import CannotOpen, NotForUs
from protocol.ids import uuid7
from protocol.models import Header, Receipt, ReplyBody
from protocol.receipts import verify_receipt
from tests.node.support import Federation, Node, batch, post_signed, wait_for

ENQUIRY = {
    "recipients": ["MY"],
    "area": "people_smuggling",
    "urgency": "urgent_indirect",
    "subject": "Vessel suspected of carrying migrants",
    "text": "Please confirm the last port of call.",
    "handling": "H2",
    "subjects": {"vessels": [{"name": "KM Harapan Jaya", "imo": "9074729", "flag": "ID"}]},
}


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def stored_envelope(node: Node, message_id: str) -> Envelope:
    [row] = node.rows("SELECT envelope FROM messages WHERE id = ?", (message_id,))
    return Envelope.model_validate_json(row["envelope"])


async def test_two_nodes_enquiry_receipt_read_reply(federation: Callable[..., Federation]) -> None:
    fed = federation(["TH", "MY"])
    th = await fed.start("TH")
    my = await fed.start("MY")
    attachment = os.urandom(3000)

    created = await th.call(
        "POST",
        "/v1/enquiries",
        body=ENQUIRY
        | {"attachments": [{"name": "photo.bin", "media_type": "image/jpeg", "data": b64(attachment)}]},
    )
    [message] = created["messages"]
    enquiry = message["id"]
    thread = created["thread"]
    assert thread != enquiry
    assert message["state"] == "queued"
    assert message["recipient"] == "MY"
    assert message["due_at"]
    first = await th.summary(enquiry, "sent")
    assert first is not None
    assert first["state"] in ("queued", "sent", "delivered")

    # Delivered: TH holds MY's signed receipt for exactly the envelope it sent.
    delivered = await wait_for(lambda: th.state_is(enquiry, "sent", "delivered"), what="the receipt")
    assert delivered["delivered_at"]
    assert delivered["sent_at"]
    detail = (await th.call("GET", f"/v1/messages/{enquiry}"))["message"]
    receipt = Receipt.model_validate(detail["receipt"])
    envelope = stored_envelope(th, enquiry)
    verify_receipt(receipt, envelope, fed.roster())
    assert receipt.receiver == "MY"
    assert receipt.envelope_digest == envelope.digest()
    assert detail["text"] == ENQUIRY["text"]  # the sender reads its own copy
    [my_row] = my.rows("SELECT receipt, envelope FROM messages WHERE id = ?", (enquiry,))
    assert Receipt.model_validate_json(my_row["receipt"]) == receipt
    assert bytes(my_row["envelope"]) == envelope.canonical_bytes()

    # Received on MY's side; opening it there yields the body and the exact attachment bytes.
    inbox = await my.summary(enquiry, "inbox")
    assert inbox is not None
    assert inbox["state"] == "received"
    assert inbox["sender"] == "TH"
    opened = (await my.call("GET", f"/v1/messages/{enquiry}"))["message"]
    assert opened["subject"] == ENQUIRY["subject"]
    assert opened["subjects"]["vessels"][0]["imo"] == "9074729"
    assert opened["handling"] == "H2"
    download = await my.request("GET", opened["attachments"][0]["url"])
    assert download.status == 200
    assert download.body == attachment

    # Read: MY marks it, TH learns it.
    marked = await my.call("POST", f"/v1/messages/{enquiry}/read")
    assert marked["state"] == "read"
    assert marked["read_at"]
    assert (await my.summary(enquiry, "inbox") or {})["state"] == "read"
    await wait_for(lambda: th.state_is(enquiry, "sent", "read"), what="the read notice")

    # Reply: threads under the enquiry; both sides end at answered.
    reply_created = await my.call(
        "POST", f"/v1/messages/{enquiry}/replies", body={"text": "Last port of call: Belawan."}
    )
    reply = reply_created["messages"][0]["id"]
    assert reply_created["thread"] == thread
    assert (await my.summary(enquiry, "inbox") or {})["state"] == "answered"
    await wait_for(lambda: my.state_is(reply, "sent", "delivered"), what="the reply's receipt")
    answered = await wait_for(lambda: th.state_is(enquiry, "sent", "answered"), what="answered")
    assert answered["answered_at"]
    reply_detail = await th.call("GET", f"/v1/messages/{reply}")
    assert reply_detail["message"]["state"] == "received"
    assert reply_detail["message"]["in_reply_to"] == enquiry
    assert reply_detail["message"]["text"] == "Last port of call: Belawan."
    assert [m["kind"] for m in reply_detail["thread"]] == ["enquiry", "reply"]
    # Only the message asked for is opened; the thread lists the others by header, state and receipt.
    assert all("text" not in m and "subject" not in m for m in reply_detail["thread"])
    assert reply_detail["thread"][0]["receipt"]["receiver"] == "MY"
    reply_receipt = Receipt.model_validate(
        (await my.call("GET", f"/v1/messages/{reply}"))["message"]["receipt"]
    )
    verify_receipt(reply_receipt, stored_envelope(my, reply), fed.roster())

    # A reply cannot itself be answered, and an enquiry one sent cannot be answered by its sender.
    again = await th.request("POST", f"/v1/messages/{reply}/replies", body={"text": "no"})
    again.problem("invalid_state", 409)
    own = await th.request("POST", f"/v1/messages/{enquiry}/replies", body={"text": "no"})
    own.problem("invalid_state", 409)


async def test_three_nodes_one_enquiry_two_countries(federation: Callable[..., Federation]) -> None:
    fed = federation(["TH", "MY", "ID"])
    th = await fed.start("TH")
    my = await fed.start("MY")
    id_ = await fed.start("ID")

    created = await th.call("POST", "/v1/enquiries", body=ENQUIRY | {"recipients": ["MY", "ID"]})
    thread = created["thread"]
    ids = {m["recipient"]: m["id"] for m in created["messages"]}
    assert set(ids) == {"MY", "ID"}
    assert ids["MY"] != ids["ID"]
    assert thread not in ids.values()  # no recipient learns another recipient's message id

    for peer, node in (("MY", my), ("ID", id_)):
        await wait_for(lambda m=ids[peer]: th.state_is(m, "sent", "delivered"), what=f"delivery to {peer}")
        row = await node.summary(ids[peer], "inbox")
        assert row is not None
        assert row["thread"] == thread
        assert row["recipient"] == peer
        # Each country sees only its own message, not the one to the other country.
        other = ids["ID" if peer == "MY" else "MY"]
        assert node.rows("SELECT id FROM messages WHERE id = ?", (other,)) == []

    # MY reads and answers; ID does nothing: the two messages of one thread have their own states.
    await my.call("POST", f"/v1/messages/{ids['MY']}/read")
    await my.call("POST", f"/v1/messages/{ids['MY']}/replies", body={"text": "Known to us."})
    await wait_for(lambda: th.state_is(ids["MY"], "sent", "answered"), what="MY's answer")
    sent = {item["recipient"]: item for item in await th.listing(folder="sent")}
    assert sent["MY"]["state"] == "answered"
    assert sent["ID"]["state"] == "delivered"
    assert sent["MY"]["thread"] == sent["ID"]["thread"] == thread
    assert (await id_.summary(ids["ID"], "inbox") or {})["state"] == "received"
    shown = await th.call("GET", f"/v1/messages/{ids['ID']}")
    assert {(m["recipient"], m["kind"]) for m in shown["thread"]} == {
        ("MY", "enquiry"),
        ("ID", "enquiry"),
        ("TH", "reply"),
    }

    # The envelope to ID, taken from ID's database and from TH's sent folder, does not open with MY's keys.
    for holder in (id_, th):
        envelope = stored_envelope(holder, ids["ID"])
        assert envelope.header.recipient == "ID"
        with pytest.raises(NotForUs):
            open_envelope(
                envelope,
                fed.roster(),
                fed.identities["MY"],
                datetime.now(UTC),
                skew=timedelta(minutes=5),
                max_age=timedelta(days=30),
                max_attachment_bytes=1 << 20,
            )
        for key in fed.identities["MY"].encryption_keys:
            with pytest.raises(CannotOpen):
                open_body(
                    envelope.header,
                    envelope.sealed,
                    key,
                    fed.roster().signing_key("TH", envelope.header.sender_key, envelope.header.created_at),
                    1 << 20,
                )
    # ...while ID's own key opens it (the check above is not vacuous).
    envelope = stored_envelope(id_, ids["ID"])
    body = open_envelope(
        envelope,
        fed.roster(),
        fed.identities["ID"],
        datetime.now(UTC),
        skew=timedelta(minutes=5),
        max_age=timedelta(days=30),
        max_attachment_bytes=1 << 20,
    )
    assert body.text == ENQUIRY["text"]
    # No stored column holds the body in clear.
    for node in (th, my, id_):
        dump = b"".join(bytes(r["envelope"]) for r in node.rows("SELECT envelope FROM messages"))
        assert ENQUIRY["text"].encode() not in dump
        assert b"Known to us." not in dump


async def test_only_the_asked_country_can_answer(federation: Callable[..., Federation]) -> None:
    """A reply binds to the enquiry only when it comes from the country the enquiry went to."""
    fed = federation(["TH", "MY", "ID"])
    th = await fed.start("TH")
    my = await fed.start("MY")
    enquiry = (await th.call("POST", "/v1/enquiries", body=ENQUIRY))["messages"][0]["id"]
    await wait_for(lambda: th.state_is(enquiry, "sent", "delivered"), what="delivery")

    # ID (a roster member, played here with its real keys) sends TH a "reply" to the enquiry TH sent MY.
    request = stored_envelope(th, enquiry).header
    now = datetime.now(UTC)
    identity = fed.identities["ID"]
    kid, to = fed.roster().encryption_key("TH", now)
    header = Header(
        id=uuid7(now, os.urandom(10)),
        kind=Kind.REPLY,
        thread=request.thread,
        sender="ID",
        recipient="TH",
        created_at=now,
        in_reply_to=enquiry,
        area=request.area,
        urgency=request.urgency,
        sender_key=identity.signing_kid,
        recipient_key=kid,
    )
    forged = seal(header, ReplyBody(text="not asked"), identity, to, os.urandom(32))
    response = await post_signed(fed.session, th, "/federation/v1/envelopes", batch(forged), identity)
    assert response.status == 200  # a well-formed message from a member is stored...
    assert (await th.summary(enquiry, "sent") or {})["state"] == "delivered"  # ...but answers nothing

    # Marking one's own sent message read is refused; MY's real answer does bind.
    (await th.request("POST", f"/v1/messages/{enquiry}/read")).problem("invalid_state", 409)
    await my.call("POST", f"/v1/messages/{enquiry}/replies", body={"text": "asked, and answered"})
    await wait_for(lambda: th.state_is(enquiry, "sent", "answered"), what="MY's answer")


async def test_attachment_names_outside_ascii(federation: Callable[..., Federation]) -> None:
    fed = federation(["TH", "MY"])
    th = await fed.start("TH")
    my = await fed.start("MY")
    data = os.urandom(100)
    names = ["ảnh tàu.jpg", "เรือ.pdf", 'quote"d; name.txt']
    body = ENQUIRY | {
        "attachments": [
            {"name": n, "media_type": "application/octet-stream", "data": b64(data)} for n in names
        ]
    }
    enquiry = (await th.call("POST", "/v1/enquiries", body=body))["messages"][0]["id"]
    await wait_for(lambda: my.summary(enquiry, "inbox"), what="delivery")
    detail = (await my.call("GET", f"/v1/messages/{enquiry}"))["message"]
    assert [a["name"] for a in detail["attachments"]] == names
    for info in detail["attachments"]:
        download = await my.request("GET", info["url"])
        assert download.status == 200
        assert download.body == data
