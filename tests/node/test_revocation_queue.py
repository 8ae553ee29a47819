"""Revocation reaches the queue: what waits for a revoked participant, or is sealed to a revoked key, is never
pushed to it; the officer sees the message as undeliverable (``revoked_key``) at the next attempt."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime

from keys.roster import revoke
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
