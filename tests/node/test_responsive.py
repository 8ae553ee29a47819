"""A node stays responsive while it checks a maximal batch: the checks run off the event loop, so its health
check keeps answering promptly while envelopes of several MiB each are verified and opened."""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import aiohttp

from node.intake import Bounds, check_envelopes
from protocol.encoding import canonical
from protocol.models import Attachment, EnquiryBody
from tests.node.support import ENVELOPES, Federation, batch, http, post_signed


async def test_livez_answers_while_a_large_batch_is_checked(
    federation: Callable[..., Federation], session: aiohttp.ClientSession
) -> None:
    fed = federation(["TH", "MY"])
    my = await fed.start("MY", verify_workers=2)
    large = EnquiryBody(
        subject="large",
        text="large",
        attachments=[
            Attachment(name="big.bin", media_type="application/octet-stream", data=os.urandom(4 << 20))
        ],
    )
    envelopes = [fed.envelope("TH", "MY", body=large) for _ in range(4)]
    # How long checking one of them holds whoever does it, on this machine now: a health check waiting for a
    # check would wait about that long.
    bounds = Bounds(datetime.now(UTC), timedelta(minutes=5), timedelta(days=1), 10 << 20, 32 << 20)
    started = time.perf_counter()
    check_envelopes("TH", [canonical(envelopes[0].wire())], fed.roster(), fed.identities["MY"], bounds)
    one = time.perf_counter() - started
    latencies: list[float] = []
    done = asyncio.Event()

    async def probe() -> None:
        """A health check every 10 ms, its latency counted from when it was due: client and node share this
        event loop, so a loop blocked while the prober waits to send counts as well."""
        while not done.is_set():
            due = time.perf_counter() + 0.01
            await asyncio.sleep(0.01)
            assert (await http(session, "GET", my.url + "/livez")).status == 200
            latencies.append(time.perf_counter() - due)

    prober = asyncio.create_task(probe())
    response = await post_signed(session, my, ENVELOPES, batch(*envelopes), fed.identities["TH"])
    done.set()
    await prober
    assert response.status == 200
    assert my.count() == 4
    assert len(latencies) >= 5, (one, latencies)
    assert max(latencies) < max(0.1, one / 2), (one, max(latencies))
