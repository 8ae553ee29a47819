"""What ``/federation/v1`` does beyond refusing a request: identical copies acknowledged with the original
receipt, a mixed batch storing only its good envelopes, read notices bound to the peer they were sent to and
dated no later than now, and peers' bodies read a few at a time.

Each single refusal, with its code and nothing stored, is in ``test_attack_corpus.py``. MY is the node under test;
TH and ID are played by this test with real keys.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import aiohttp
import pytest

from node.config import Limits
from node.federation_api import BODIES
from protocol.encoding import canonical, format_time
from protocol.envelope import Envelope
from protocol.requests import sign_request
from tests.node.support import (
    ENVELOPES,
    STATUS,
    Federation,
    Node,
    Response,
    batch,
    post_signed,
    wait_for,
)


@dataclass
class Bench:
    fed: Federation
    my: Node
    session: aiohttp.ClientSession

    async def send(self, *envelopes: Envelope) -> Response:
        return await post_signed(
            self.session, self.my, ENVELOPES, batch(*envelopes), self.fed.identities["TH"]
        )

    async def notices(self, signer: str, *statuses: dict[str, Any]) -> Response:
        body = canonical({"statuses": list(statuses)})
        return await post_signed(self.session, self.my, STATUS, body, self.fed.identities[signer])


@pytest.fixture
async def bench(federation: Callable[..., Federation], session: aiohttp.ClientSession) -> Bench:
    fed = federation(["TH", "MY", "ID"])
    my = await fed.start("MY")
    return Bench(fed, my, session)


async def test_identical_copy_returns_the_original_receipt(bench: Bench) -> None:
    envelope = bench.fed.envelope("TH", "MY")
    first = await bench.send(envelope)
    assert first.status == 200
    again = await bench.send(envelope)
    assert again.status == 200
    assert again.json()["results"][0]["receipt"] == first.json()["results"][0]["receipt"]
    # and inside one batch, the repeat is acknowledged with the same receipt too
    both = await bench.send(envelope, envelope)
    receipts = [r["receipt"] for r in both.json()["results"]]
    assert receipts == [first.json()["results"][0]["receipt"]] * 2
    assert bench.my.count() == 1


async def test_mixed_batch_stores_only_the_good_envelope(bench: Bench) -> None:
    good = bench.fed.envelope("TH", "MY")
    bad = bench.fed.envelope("TH", "ID")
    response = await bench.send(bad, good)
    assert response.status == 200
    bad_result, good_result = response.json()["results"]
    assert bad_result["id"] == bad.header.id
    assert bad_result["problem"]["code"] == "not_for_us"
    assert good_result["id"] == good.header.id
    assert "receipt" in good_result
    assert [r["id"] for r in bench.my.rows("SELECT id FROM messages")] == [good.header.id]


async def test_status_notices_are_bound_to_their_peer(bench: Bench) -> None:
    # MY sends TH an enquiry (TH is down, so it stays in MY's outbox). ID cannot mark it read.
    created = await bench.my.call(
        "POST", "/v1/enquiries", body={"recipients": ["TH"], "area": "other", "subject": "s", "text": "t"}
    )
    message_id = created["messages"][0]["id"]
    notice = {"message_id": message_id, "state": "read", "at": format_time(datetime.now(UTC))}
    assert (await bench.notices("ID", notice)).json() == {"applied": 0}
    [row] = bench.my.rows("SELECT state, read_at FROM messages WHERE id = ?", (message_id,))
    assert row["state"] in ("queued", "sent")
    assert row["read_at"] is None
    # TH (the actual recipient) can.
    ok = await bench.notices("TH", notice)
    assert ok.status == 200
    assert ok.json() == {"applied": 1}
    [row] = bench.my.rows("SELECT state FROM messages WHERE id = ?", (message_id,))
    assert row["state"] == "read"


async def test_a_read_notice_a_little_ahead_is_taken_as_now(bench: Bench) -> None:
    created = await bench.my.call(
        "POST", "/v1/enquiries", body={"recipients": ["TH"], "area": "other", "subject": "s", "text": "t"}
    )
    message_id = created["messages"][0]["id"]
    ahead = format_time(datetime.now(UTC) + timedelta(minutes=2))  # within the skew: taken as now
    ok = await bench.notices("TH", {"message_id": message_id, "state": "read", "at": ahead})
    assert ok.json() == {"applied": 1}
    [row] = bench.my.rows("SELECT read_at FROM messages WHERE id = ?", (message_id,))
    assert row["read_at"] < ahead


async def test_bodies_are_read_a_few_at_a_time(
    federation: Callable[..., Federation], session: aiohttp.ClientSession
) -> None:
    """With one turn for bodies, a member trickling its body makes the next one wait its turn (memory held for
    bodies stays bounded however many send at once); the turn passes on when the trickle is cut off."""
    fed = federation(["TH", "MY", "ID"])
    my = await fed.start("MY", limits=Limits(concurrent_bodies=1, body_timeout_s=1.0))
    body = batch(fed.envelope("TH", "MY"))
    headers = sign_request("POST", ENVELOPES, "MY", body, fed.identities["TH"], datetime.now(UTC))
    stalled = asyncio.Event()

    async def trickle() -> Any:
        yield body[:10]
        await stalled.wait()
        yield body[10:]

    async def slow() -> int:
        async with session.post(my.url + ENVELOPES, data=trickle(), headers=headers) as raw:
            return raw.status

    slow_task = asyncio.create_task(slow())
    try:
        await wait_for(lambda: my.app[BODIES].locked(), what="TH's body to take the only turn")
        started = time.perf_counter()
        waited = await post_signed(
            session, my, ENVELOPES, batch(fed.envelope("ID", "MY")), fed.identities["ID"]
        )
        assert time.perf_counter() - started >= 0.5  # it waited for the turn
        assert waited.status == 200
    finally:
        stalled.set()
    assert await asyncio.wait_for(slow_task, 10) == 408
    assert my.count() == 1
