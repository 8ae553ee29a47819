"""Revocation and rotation reach the queue: what waits for a revoked participant, or is sealed to a revoked key
it may already hold, is never pushed to it (the officer sees ``undeliverable (revoked_key)``); what is sealed to
a key the recipient rotated away from and never left this node is sealed again to its current key, and arrives
once."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta

from aiohttp import web

from keys.identity import Identity
from keys.roster import revoke, rotate
from protocol.envelope import Envelope
from protocol.models import Receipt
from protocol.receipts import verify_receipt
from tests.node.support import Federation, wait_for


async def test_messages_queued_for_a_revoked_participant_end_undeliverable(
    federation: Callable[..., Federation],
) -> None:
    fed = federation(["TH", "MY", "ID"])
    th = await fed.start("TH")
    created = await th.call(
        "POST",
        "/v1/enquiries",
        body={"recipients": ["MY", "ID"], "area": "other", "subject": "s", "text": "t"},
    )
    to_my, to_id = (m["id"] for m in created["messages"])
    await wait_for(lambda: th.worker.peers["MY"].failures >= 1, what="MY unreachable")
    assert fed.body is not None
    fed.body = revoke(fed.body, "MY", None, datetime.now(UTC))
    assert await th.service.offer_roster(fed.signed())
    th.worker.wake(["MY", "ID"])
    item = await wait_for(lambda: th.state_is(to_my, "sent", "undeliverable"), what="the revoked recipient")
    assert item["last_error"] == "revoked_key"
    # ID is still a member: its copy waits for it, and is delivered when it comes up.
    assert (await th.summary(to_id, "sent") or {})["state"] in ("queued", "sent")
    my = await fed.start("MY")
    await fed.start("ID")
    await wait_for(lambda: th.state_is(to_id, "sent", "delivered"), what="ID's copy")
    assert my.count() == 0  # nothing ever reached the revoked participant
    assert th.rows("SELECT count(*) AS n FROM outbox WHERE peer = 'MY'")[0]["n"] == 0


async def test_messages_sealed_to_a_revoked_key_end_undeliverable(
    federation: Callable[..., Federation],
) -> None:
    fed = federation(["TH", "MY"])
    th = await fed.start("TH")
    created = await th.call(
        "POST", "/v1/enquiries", body={"recipients": ["MY"], "area": "other", "subject": "s", "text": "t"}
    )
    message_id = created["messages"][0]["id"]
    await wait_for(lambda: th.worker.peers["MY"].failures >= 1, what="MY unreachable")
    assert fed.body is not None
    kid = fed.identities["MY"].encryption_kid
    fed.body = revoke(fed.body, "MY", kid, datetime.now(UTC))
    assert await th.service.offer_roster(fed.signed())
    th.worker.wake(["MY"])
    item = await wait_for(lambda: th.state_is(message_id, "sent", "undeliverable"), what="the revoked key")
    assert item["last_error"] == "revoked_key"
    assert th.count("outbox") == 0


def rotate_keys(fed: Federation, pid: str) -> tuple[str, Identity]:
    """``pid``'s operator rotates its keys (in its node folder) and the authority signs the new roster; returns
    the old encryption key id."""
    identity = fed.identities[pid]
    old = identity.encryption_kid
    fed.config(pid)  # the node folder with the current keys, then rotate them in place
    identity.rotate()
    identity.save(fed.root / pid / "keys")
    assert fed.body is not None
    fed.body = rotate(fed.body, identity.card(), timedelta(days=7), datetime.now(UTC))
    return old, identity


def sealed_to(payload: bytes) -> str:
    return str(json.loads(payload)["header"]["recipient_key"])


async def test_a_message_queued_for_a_rotated_key_is_sealed_again_and_arrives_once(
    federation: Callable[..., Federation],
) -> None:
    fed = federation(["TH", "MY"])
    th = await fed.start("TH")
    body = {"recipients": ["MY"], "area": "other", "subject": "s", "text": "queued across a rotation"}
    message_id = (await th.call("POST", "/v1/enquiries", body=body))["messages"][0]["id"]
    await wait_for(lambda: th.worker.peers["MY"].failures >= 1, what="MY unreachable")
    # Nothing got past the connection: still queued, so no copy sealed to the old key can be at MY.
    assert (await th.summary(message_id, "sent") or {})["state"] == "queued"

    old_kid, identity = rotate_keys(fed, "MY")
    assert fed.body is not None
    fed.body = revoke(fed.body, "MY", old_kid, datetime.now(UTC))  # retired at once: nothing may use it
    assert await th.service.offer_roster(fed.signed())
    my = await fed.start("MY")
    await wait_for(lambda: th.state_is(message_id, "sent", "delivered"), what="delivery to the new key")

    [kept] = th.rows("SELECT envelope, receipt FROM messages WHERE id = ?", (message_id,))
    [arrived] = my.rows("SELECT envelope FROM messages WHERE id = ? AND folder = 'inbox'", (message_id,))
    assert sealed_to(arrived["envelope"]) == identity.encryption_kid != old_kid
    assert arrived["envelope"] == kept["envelope"]  # the sender's record is what was sealed again and sent
    verify_receipt(
        Receipt.model_validate_json(kept["receipt"]),
        Envelope.model_validate_json(kept["envelope"]),
        fed.roster(),
    )
    opened = await my.call("GET", f"/v1/messages/{message_id}")
    assert opened["message"]["text"] == "queued across a rotation"
    mine = await th.call("GET", f"/v1/messages/{message_id}")  # the sender's own copy follows
    assert mine["message"]["text"] == "queued across a rotation"
    assert th.count("outbox") == 0
    assert my.count() == 1


@asynccontextmanager
async def failing_peer(fed: Federation, pid: str) -> AsyncIterator[list[bytes]]:
    """Something at ``pid``'s URL that reads every request and answers 503: envelopes get past the connection
    (so they may have been stored there) without a receipt. Yields the bodies it read."""
    bodies: list[bytes] = []

    async def answer(request: web.Request) -> web.Response:
        bodies.append(await request.read())
        return web.json_response({"code": "internal"}, status=503)

    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", answer)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", fed.ports[pid]).start()
    try:
        yield bodies
    finally:
        await runner.cleanup()


async def test_a_message_that_may_have_reached_a_revoked_key_ends_undeliverable(
    federation: Callable[..., Federation],
) -> None:
    fed = federation(["TH", "MY"])
    th = await fed.start("TH")
    async with failing_peer(fed, "MY") as bodies:
        created = await th.call(
            "POST", "/v1/enquiries", body={"recipients": ["MY"], "area": "other", "subject": "s", "text": "t"}
        )
        message_id = created["messages"][0]["id"]
        await wait_for(lambda: th.state_is(message_id, "sent", "sent"), what="an attempt past the connection")
        assert bodies
    old_kid, _ = rotate_keys(fed, "MY")
    assert fed.body is not None
    fed.body = revoke(fed.body, "MY", old_kid, datetime.now(UTC))
    assert await th.service.offer_roster(fed.signed())
    th.worker.wake(["MY"])
    item = await wait_for(lambda: th.state_is(message_id, "sent", "undeliverable"), what="the revoked key")
    assert item["last_error"] == "revoked_key"
    assert th.count("outbox") == 0


async def test_a_message_that_may_have_reached_a_superseded_key_goes_as_it_was(
    federation: Callable[..., Federation],
) -> None:
    fed = federation(["TH", "MY"])
    th = await fed.start("TH")
    async with failing_peer(fed, "MY"):
        created = await th.call(
            "POST", "/v1/enquiries", body={"recipients": ["MY"], "area": "other", "subject": "s", "text": "t"}
        )
        message_id = created["messages"][0]["id"]
        await wait_for(lambda: th.state_is(message_id, "sent", "sent"), what="an attempt past the connection")
    [before] = th.rows("SELECT envelope FROM messages WHERE id = ?", (message_id,))
    old_kid, _ = rotate_keys(fed, "MY")
    assert await th.service.offer_roster(fed.signed())
    my = await fed.start("MY")
    await wait_for(lambda: th.state_is(message_id, "sent", "delivered"), what="delivery as it was sealed")
    [arrived] = my.rows("SELECT envelope FROM messages WHERE id = ? AND folder = 'inbox'", (message_id,))
    assert arrived["envelope"] == before["envelope"]  # the bytes MY may already hold: never other ones
    assert sealed_to(arrived["envelope"]) == old_kid
