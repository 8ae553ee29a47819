"""A node stays responsive while it checks a maximal batch: the checks run off the event loop, so its health
check keeps answering promptly while hundreds of envelopes are verified and opened."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable

import aiohttp

from tests.node.support import ENVELOPES, Federation, batch, http, post_signed


async def test_livez_answers_while_a_large_batch_is_checked(
    federation: Callable[..., Federation], session: aiohttp.ClientSession
) -> None:
    fed = federation(["TH", "MY"])
    my = await fed.start("MY")
    envelopes = [fed.envelope("TH", "MY") for _ in range(400)]
    body = batch(*envelopes)
    latencies: list[float] = []
    done = asyncio.Event()

    async def probe() -> None:
        while not done.is_set():
            started = time.perf_counter()
            assert (await http(session, "GET", my.url + "/livez")).status == 200
            latencies.append(time.perf_counter() - started)
            await asyncio.sleep(0.01)

    prober = asyncio.create_task(probe())
    started = time.perf_counter()
    response = await post_signed(session, my, ENVELOPES, body, fed.identities["TH"])
    took = time.perf_counter() - started
    done.set()
    await prober
    assert response.status == 200
    assert my.count() == 400
    assert len(latencies) >= 5, (took, latencies)
    # The batch keeps the node busy for a while; a health check never waits for it.
    assert max(latencies) < max(0.25, took / 3), (took, max(latencies))
