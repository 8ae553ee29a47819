"""The delivery worker between real nodes: backlogs, backoff reset by hello, giving up, exactly-once."""

from __future__ import annotations

import base64
import os
import sqlite3
import time
from collections.abc import Callable
from datetime import timedelta
from typing import Any

from node.config import Delivery, Limits
from protocol.envelope import Envelope
from protocol.models import Receipt
from protocol.receipts import verify_receipt
from tests.node.support import FAST_DELIVERY, Federation, Node, TestClock, wait_for


def enquiry(to: str, **extra: Any) -> dict[str, Any]:
    return {"recipients": [to], "area": "other", "subject": "s", "text": "backlog", **extra}


async def send(node: Node, to: str, **extra: Any) -> str:
    created = await node.call("POST", "/v1/enquiries", body=enquiry(to, **extra))
    return str(created["messages"][0]["id"])


async def all_in_state(node: Node, ids: list[str], state: str) -> bool:
    states = {i["id"]: i["state"] for i in await node.listing(folder="sent")}
    return all(states.get(m) == state for m in ids)


async def test_backlog_drains_when_peer_comes_up(federation: Callable[..., Federation]) -> None:
    fed = federation(["TH", "MY"])
    th = await fed.start("TH")
    ids = [await send(th, "MY") for _ in range(6)]
    await wait_for(lambda: th.worker.peers["MY"].failures >= 2, what="failed attempts at MY")
    for item in await th.listing(folder="sent"):
        assert item["state"] in ("queued", "sent")
        assert item.get("delivered_at") is None
    assert th.count("outbox") == 6
    assert {i["id"] for i in await th.listing(folder="outbox")} == set(ids)

    my = await fed.start("MY")
    await wait_for(lambda: all_in_state(th, ids, "delivered"), what="the backlog to drain")
    assert th.count("outbox") == 0
    received = [r["id"] for r in my.rows("SELECT id FROM messages WHERE folder = 'inbox'")]
    assert sorted(received) == sorted(ids)  # each exactly once
    for row in th.rows("SELECT envelope, receipt FROM messages"):
        verify_receipt(
            Receipt.model_validate_json(row["receipt"]),
            Envelope.model_validate_json(row["envelope"]),
            fed.roster(),
        )


async def test_hello_resets_backoff(federation: Callable[..., Federation]) -> None:
    fed = federation(["TH", "MY"])
    slow = Delivery(backoff_initial_s=60, backoff_cap_s=300, request_timeout_s=5)
    th = await fed.start("TH", delivery=slow)
    message_id = await send(th, "MY")
    await wait_for(lambda: th.worker.peers["MY"].failures == 1, what="the first failed attempt")
    assert th.worker.peers["MY"].next_attempt - time.time() > 20  # the next try is far away...

    await fed.start("MY")  # ...but MY's hello on start makes TH retry at once
    await wait_for(
        lambda: th.state_is(message_id, "sent", "delivered"), within=5, what="delivery after hello"
    )
    assert th.worker.peers["MY"].failures == 0
    assert th.worker.peers["MY"].last_seen is not None


async def test_outbox_survives_a_restart_of_the_sender(federation: Callable[..., Federation]) -> None:
    fed = federation(["TH", "MY"])
    th = await fed.start("TH")
    message_id = await send(th, "MY")
    await wait_for(lambda: th.worker.peers["MY"].failures >= 1, what="a failed attempt")
    await th.stop()

    th = await fed.start("TH")
    assert th.count("outbox") == 1
    await fed.start("MY")
    await wait_for(lambda: th.state_is(message_id, "sent", "delivered"), what="delivery after restart")
    assert th.count("outbox") == 0


async def test_gives_up_on_an_unreachable_peer(federation: Callable[..., Federation]) -> None:
    fed = federation(["TH", "MY"])
    impatient = Delivery(backoff_initial_s=0.05, backoff_cap_s=0.1, give_up_after_s=0.3)
    th = await fed.start("TH", delivery=impatient)
    message_id = await send(th, "MY", urgency="urgent_direct")
    item = await wait_for(
        lambda: th.state_is(message_id, "sent", "undeliverable"), what="the worker to give up"
    )
    assert item["last_error"] == "gave_up"
    assert item.get("delivered_at") is None
    assert th.count("outbox") == 0
    assert [i["id"] for i in await th.listing(folder="sent", state="undeliverable")] == [message_id]
    assert await th.listing(folder="outbox") == []

    # If the peer comes back, nothing is sent any more and the state stays terminal.
    my = await fed.start("MY")
    await wait_for(lambda: th.worker.peers.get("MY") and th.worker.peers["MY"].last_seen, what="MY's hello")
    assert my.count() == 0
    assert (await th.summary(message_id, "sent") or {})["state"] == "undeliverable"


async def test_permanent_refusal_makes_a_message_undeliverable(federation: Callable[..., Federation]) -> None:
    fed = federation(["TH", "MY"])
    th = await fed.start("TH")
    my = await fed.start("MY", limits=Limits(max_attachment_bytes=1000))
    attachment = {
        "name": "big.bin",
        "media_type": "application/octet-stream",
        "data": base64.urlsafe_b64encode(os.urandom(2000)).rstrip(b"=").decode(),
    }
    big = await send(th, "MY", attachments=[attachment])
    small = await send(th, "MY")
    item = await wait_for(lambda: th.state_is(big, "sent", "undeliverable"), what="the refusal")
    assert item["last_error"] == "too_large"
    await wait_for(lambda: th.state_is(small, "sent", "delivered"), what="the other message")
    assert [r["id"] for r in my.rows("SELECT id FROM messages")] == [small]
    assert th.count("outbox") == 0


async def test_resend_after_lost_receipt_is_acknowledged_with_the_original_receipt(
    federation: Callable[..., Federation],
) -> None:
    fed = federation(["TH", "MY"])
    th = await fed.start("TH")
    my = await fed.start("MY")
    message_id = await send(th, "MY")
    await wait_for(lambda: th.state_is(message_id, "sent", "delivered"), what="delivery")
    [first] = th.rows("SELECT envelope, receipt FROM messages WHERE id = ?", (message_id,))

    # As if TH had crashed before deleting the outbox row: the same envelope goes out again.
    async with th.service.mailbox.db.transaction() as conn:
        await conn.execute(
            "INSERT INTO outbox (peer, item, ref, payload, queued_at) VALUES ('MY', 'envelope', ?, ?, ?)",
            (message_id, bytes(first["envelope"]), time.time()),
        )
    th.worker.wake(["MY"])
    await wait_for(lambda: th.count("outbox") == 0, what="the resend to settle")
    [again] = th.rows("SELECT state, receipt FROM messages WHERE id = ?", (message_id,))
    assert again["state"] == "delivered"
    assert bytes(again["receipt"]) == bytes(first["receipt"])
    assert my.count() == 1


async def test_backlog_larger_than_one_request_still_drains(federation: Callable[..., Federation]) -> None:
    """Queued envelopes that together exceed the peer's request size limit go in several requests."""
    fed = federation(["TH", "MY"])
    limits = Limits(max_request_bytes=65536, max_attachment_bytes=30000)
    th = await fed.start("TH", limits=limits)
    attachment = {
        "name": "scan.bin",
        "media_type": "application/octet-stream",
        "data": base64.urlsafe_b64encode(os.urandom(30000)).rstrip(b"=").decode(),
    }
    ids = [await send(th, "MY", attachments=[attachment]) for _ in range(4)]
    await wait_for(lambda: th.worker.peers["MY"].failures >= 1, what="a failed attempt at MY")

    my = await fed.start("MY", limits=limits)
    await wait_for(lambda: all_in_state(th, ids, "delivered"), what="the large backlog to drain")
    assert sorted(r["id"] for r in my.rows("SELECT id FROM messages")) == sorted(ids)
    assert th.count("outbox") == 0


async def test_envelope_too_large_for_the_peer_does_not_block_the_queue(
    federation: Callable[..., Federation],
) -> None:
    """An unsigned 413 is no proof: the envelope waits on its own until its give-up age, the rest goes."""
    fed = federation(["TH", "MY"])
    # TH accepts 10 MiB attachments; MY takes requests of 64 KiB at most
    th = await fed.start("TH", delivery=FAST_DELIVERY.model_copy(update={"give_up_after_s": 3.0}))
    my = await fed.start("MY", limits=Limits(max_request_bytes=65536))
    attachment = {
        "name": "video.bin",
        "media_type": "application/octet-stream",
        "data": base64.urlsafe_b64encode(os.urandom(60000)).rstrip(b"=").decode(),
    }
    huge = await send(th, "MY", attachments=[attachment])
    small = await send(th, "MY")
    await wait_for(lambda: th.state_is(small, "sent", "delivered"), what="the message queued behind it")
    waiting = await th.summary(huge, "sent")
    assert waiting is not None
    assert waiting["state"] == "sent"
    assert waiting["last_error"] == "too_large; will retry"
    item = await wait_for(lambda: th.state_is(huge, "sent", "undeliverable"), what="the give-up")
    assert item["last_error"] == "gave_up"
    assert [r["id"] for r in my.rows("SELECT id FROM messages")] == [small]


async def test_a_storage_fault_in_the_delivery_loop_is_survived(
    federation: Callable[..., Federation],
) -> None:
    """The outbox cannot be read for a while (here: taken away under the running node): the peer's loop logs
    it, backs off and goes on, and the queued message is delivered once the outbox is back."""
    fed = federation(["TH", "MY"])
    th = await fed.start("TH")
    message_id = await send(th, "MY")
    await wait_for(lambda: th.worker.peers["MY"].failures >= 1, what="MY unreachable")
    conn = sqlite3.connect(th.db_path)
    try:
        conn.execute("ALTER TABLE outbox RENAME TO outbox_away")
        conn.commit()
        th.worker.peer_alive("MY")  # its next turn reads the outbox at once, and fails
        await wait_for(lambda: th.worker.peers["MY"].last_error == "internal error", what="the failed turn")
        assert not th.worker._tasks["MY"].done()  # the loop lives on
        conn.execute("ALTER TABLE outbox_away RENAME TO outbox")
        conn.commit()
    finally:
        conn.close()
    await fed.start("MY")
    await wait_for(lambda: th.state_is(message_id, "sent", "delivered"), what="delivery after the fault")


async def test_a_node_whose_clock_is_off_is_told_so(federation: Callable[..., Federation]) -> None:
    """TH's clock runs 10 minutes fast: MY refuses its requests as stale. The officer reads why the message
    waits, and TH's readiness is red with the offset, taken from the Date of MY's answers."""
    fed = federation(["TH", "MY"])
    th = await fed.start("TH")
    th.clock.offset = timedelta(minutes=10)
    await fed.start("MY")
    message_id = await send(th, "MY")

    async def told() -> dict[str, Any] | None:
        item = await th.summary(message_id, "sent")
        return item if item and "clock" in (item.get("last_error") or "") else None

    item = await wait_for(told, what="the clock explanation")
    assert item["state"] in ("queued", "sent")
    ready = await th.request("GET", "/readyz", token=None)
    assert ready.status == 503
    assert "clock" in ready.json()["reason"]
    assert abs(ready.json()["clock_offsets_s"]["MY"] + 600) <= 2
    th.clock.offset = timedelta(0)  # the operator sets the clock right: the next answer shows it
    th.worker.peer_alive("MY")

    async def green() -> bool:
        return (await th.request("GET", "/readyz", token=None)).status == 200

    await wait_for(green, what="readiness once the clock is right")


async def test_peers_read_the_clock_a_node_signs_with(federation: Callable[..., Federation]) -> None:
    """Both nodes run six hours ahead of the wall clock (a demo's compressed time): they agree with each other,
    so the exchange works and readiness stays green, because the Date of an answer is the node's own clock."""
    fed = federation(["TH", "MY"])
    ahead = TestClock()
    ahead.offset = timedelta(hours=6)
    th = await fed.start("TH", clock=ahead)
    await fed.start("MY", clock=ahead)
    message_id = await send(th, "MY")
    await wait_for(lambda: th.state_is(message_id, "sent", "delivered"), what="delivery")
    ready = await th.request("GET", "/readyz", token=None)
    assert ready.status == 200, ready.json()
    assert abs(th.worker.clock_offsets()["MY"]) <= 2
