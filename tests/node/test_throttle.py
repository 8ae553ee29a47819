"""The failed-attempt limiter and the per-peer quota as plain calls, and against a real node: every failed
sign-in is audited, an address is let in again after the window, and one peer's quota leaves the others alone.

The refusals themselves (``too_many_attempts`` after forged signatures or guessed tokens, ``quota_exceeded``
by messages or bytes) are cases of ``test_attack_corpus.py``."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import aiohttp
import pytest

from node.config import Limits
from node.officer_api import OFFICERS
from node.throttle import FailureLimiter, PeerQuota
from protocol.errors import QuotaExceeded, TooManyAttempts
from tests.node.support import ENVELOPES, Federation, batch, post_signed, wait_for

T0 = datetime(2026, 11, 27, tzinfo=UTC)


def test_an_address_is_refused_past_its_failures_within_the_window() -> None:
    limiter = FailureLimiter(allowed=3, window=timedelta(seconds=60))
    for second in range(3):
        limiter.check("198.51.100.7", T0 + timedelta(seconds=second))
        limiter.failed("198.51.100.7", T0 + timedelta(seconds=second))
    with pytest.raises(TooManyAttempts):
        limiter.check("198.51.100.7", T0 + timedelta(seconds=10))
    limiter.check("203.0.113.9", T0 + timedelta(seconds=10))  # another address is not affected
    limiter.check("198.51.100.7", T0 + timedelta(seconds=61))  # the oldest failure has left the window


async def test_guessed_tokens_are_audited_then_slowed_down(federation: Callable[..., Federation]) -> None:
    fed = federation(["TH", "MY"])
    th = await fed.start("TH")
    for attempt in range(20):
        (await th.request("GET", "/v1/peers", token=f"ncpx_guess{attempt}")).problem("unauthorized", 401)
    (await th.request("GET", "/v1/peers")).problem("too_many_attempts", 429)  # even a good token, for now
    trail = await th.app[OFFICERS].audit_trail(50)
    refused = [entry for entry in trail if entry[2] == "sign_in" and entry[4] == "refused"]
    assert len(refused) == 20
    assert all(entry[1] == "address 127.0.0.1" for entry in refused)
    assert all("ncpx_guess" not in str(entry) for entry in trail)  # a guessed token is never written down
    th.clock.offset = timedelta(seconds=61)
    assert (await th.request("GET", "/v1/peers")).status == 200


def test_a_peer_quota_counts_messages_and_bytes_per_window() -> None:
    quota = PeerQuota(messages=5, size=1000, window=timedelta(seconds=60))
    quota.take("TH", 4, 100, T0)
    with pytest.raises(QuotaExceeded):
        quota.take("TH", 2, 100, T0 + timedelta(seconds=1))  # 6 messages
    with pytest.raises(QuotaExceeded):
        quota.take("TH", 1, 901, T0 + timedelta(seconds=1))  # 1001 bytes
    quota.take("TH", 1, 900, T0 + timedelta(seconds=2))  # what was refused was not counted
    quota.take("ID", 5, 1000, T0 + timedelta(seconds=2))  # each peer has its own quota
    quota.take("TH", 5, 1000, T0 + timedelta(seconds=63))  # the window moved on


async def test_a_noisy_peer_is_held_to_its_quota(
    federation: Callable[..., Federation], session: aiohttp.ClientSession
) -> None:
    fed = federation(["TH", "MY", "ID"])
    my = await fed.start("MY", limits=Limits(peer_messages_per_minute=5))
    noisy = batch(*(fed.envelope("TH", "MY") for _ in range(6)))
    refused = await post_signed(session, my, ENVELOPES, noisy, fed.identities["TH"])
    refused.problem("quota_exceeded", 429)
    assert my.count() == 0
    quiet = await post_signed(session, my, ENVELOPES, batch(fed.envelope("ID", "MY")), fed.identities["ID"])
    assert quiet.status == 200
    assert my.count() == 1


async def test_a_peer_s_unopened_messages_are_held_to_its_share_of_storage(
    federation: Callable[..., Federation],
) -> None:
    fed = federation(["TH", "MY"])
    th, my = await fed.start("TH"), await fed.start("MY")
    body = {"recipients": ["MY"], "area": "other", "subject": "s", "text": "x" * 20_000}

    async def send() -> str:
        return str((await th.call("POST", "/v1/enquiries", body=body))["messages"][0]["id"])

    first = await send()
    await wait_for(lambda: th.state_is(first, "sent", "delivered"), what="the first message")
    [row] = my.rows("SELECT length(envelope) AS n FROM messages WHERE id = ?", (first,))
    # Room for two such messages, not three; set on a restart, so the first one counts from its stored row.
    limit = 2 * row["n"] + row["n"] // 2
    await my.stop()
    my = await fed.start("MY", limits=Limits(peer_stored_bytes=limit))
    second, third = await send(), await send()
    await wait_for(lambda: th.state_is(second, "sent", "delivered"), what="the second message")

    async def refused_for_now() -> bool:
        item = await th.summary(third, "sent")
        return item is not None and item.get("last_error") == "storage_quota_exceeded; will retry"

    await wait_for(refused_for_now, what="MY to refuse the third for now, naming why")
    assert my.count() == 2  # nothing of the refused one was stored
    assert th.count("outbox") == 1  # ...and the sender keeps it

    await my.call("POST", f"/v1/messages/{first}/read")  # an officer opens one: room for another
    th.worker.peer_alive("MY")
    await wait_for(lambda: th.state_is(third, "sent", "delivered"), what="the third message")
    assert sorted(r["id"] for r in my.rows("SELECT id FROM messages")) == sorted([first, second, third])
