"""The failed-attempt limiter as plain calls, and against a real node: guessing tokens or signatures is slowed
down per address, every failed sign-in is audited, and the address is let in again after the window."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import aiohttp
import pytest

from node.officer_api import OFFICERS
from node.throttle import FailureLimiter
from protocol.errors import TooManyAttempts
from tests.node.support import ENVELOPES, Federation, batch, post_signed

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


async def test_forged_federation_requests_are_slowed_down(
    federation: Callable[..., Federation], session: aiohttp.ClientSession
) -> None:
    fed = federation(["TH", "MY", "ID"])
    my = await fed.start("MY")
    envelope = fed.envelope("TH", "MY")
    for _ in range(20):
        forged = await post_signed(
            session,
            my,
            ENVELOPES,
            batch(envelope),
            fed.identities["TH"],
            tweak=lambda h: h.pop("Ncpx-Signature"),
        )
        forged.problem("bad_signature", 401)
    late = await post_signed(session, my, ENVELOPES, batch(envelope), fed.identities["TH"])
    late.problem("too_many_attempts", 429)
    assert my.count() == 0
